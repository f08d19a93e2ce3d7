// The guided VBQ protocol as plain data: which level is current, what each level holds, and the
// spec `vbq.rois/1` document that results. Pure (no DOM, no Cornerstone), tested in Node.
//
// Decisions (docs/viewer.md): the protocol walks L1 -> L2 -> L3 -> L4 -> CSF and moves on to the
// next open level after each ROI; drawing again on a level replaces its ROI (a level may hold
// several ROIs only when a saved set already has them: they are kept and pooled, as the server
// pools them); an exclusion replaces the level's ROIs; the CSF cannot be excluded.
//
// The words (levels, the CSF label, exclusion reasons, the default CSF level) are not defined
// here: they are defined once, in Python (`studies/vocabulary.py`), and reach the viewer in the
// page's payload (`vocabulary` in #viewer-config, `readers.views.viewer_payload`). A Protocol
// is given them: `new Protocol(seriesInstanceUid, vocabulary)`.

const VERTEBRAL_LEVEL = /^(?:C[1-7]|T[1-9]|T1[0-2]|L[1-6]|S[1-5])(?:-(?:C[1-7]|T[1-9]|T1[0-2]|L[1-6]|S[1-5]))?$/;

export function isVertebralLevel(text) {
  return VERTEBRAL_LEVEL.test(text);
}

export class Protocol {
  /** `vocabulary` is the page's: {levels, csf, reasons, default_csf_level} (studies/vocabulary.py). */
  constructor(seriesInstanceUid, vocabulary) {
    const { levels, csf, reasons, default_csf_level: defaultCsfLevel } = vocabulary ?? {};
    if (!levels?.length || !csf || !reasons?.length || !defaultCsfLevel) {
      throw new Error("the vocabulary needs levels, csf, reasons and default_csf_level");
    }
    this.levels = [...levels]; // the vertebral levels, in protocol order
    this.csf = csf; // the CSF label
    this.labels = [...levels, csf]; // every label, in protocol order
    this.reasons = [...reasons]; // why a level may be excluded
    this.seriesInstanceUid = seriesInstanceUid;
    this.rois = new Map(this.labels.map((label) => [label, []])); // label -> [{id, sop_instance_uid, shape...}]
    this.exclusions = new Map(); // level -> {reason, note}
    this.csfLevel = defaultCsfLevel;
    this.current = this.labels[0];
  }

  /** A protocol from a saved `vbq.rois/1` document (ids are made up: "saved-0", ...). */
  static fromJson(doc, seriesInstanceUid, vocabulary) {
    const p = new Protocol(seriesInstanceUid, vocabulary);
    if (!doc) return p;
    (doc.rois || []).forEach((item, i) => {
      if (item.excluded) {
        p.exclusions.set(item.label, { reason: item.reason, note: item.note ?? "" });
        return;
      }
      const { label, level, excluded, ...roi } = item; // eslint-disable-line no-unused-vars
      if (label === p.csf && level) p.csfLevel = level;
      p.rois.get(label)?.push({ id: `saved-${i}`, ...roi });
    });
    p.current = p.nextOpen() ?? p.labels[0];
    return p;
  }

  status(label) {
    if (this.exclusions.has(label)) return "excluded";
    return this.rois.get(label).length ? "measured" : "todo";
  }

  missing() {
    return this.labels.filter((label) => this.status(label) === "todo");
  }

  isComplete() {
    return this.missing().length === 0;
  }

  /** The first level still to do, in protocol order, starting after `after` and wrapping. */
  nextOpen(after = null) {
    const labels = this.labels;
    const start = after ? labels.indexOf(after) + 1 : 0;
    for (let k = 0; k < labels.length; k++) {
      const label = labels[(start + k) % labels.length];
      if (this.status(label) === "todo") return label;
    }
    return null;
  }

  select(label) {
    if (!this.labels.includes(label)) throw new Error(`unknown level ${label}`);
    this.current = label;
  }

  /** Put an ROI on a level. A new id replaces the level's ROIs (returned, for the caller to
   *  remove their drawings); the id of an existing ROI updates it in place. */
  setRoi(label, id, roi) {
    const list = this.rois.get(label);
    const index = list.findIndex((r) => r.id === id);
    if (index >= 0) {
      list[index] = { id, ...roi };
      return [];
    }
    const replaced = list.splice(0, list.length);
    list.push({ id, ...roi });
    this.exclusions.delete(label);
    return replaced;
  }

  labelOf(id) {
    for (const [label, list] of this.rois) if (list.some((r) => r.id === id)) return label;
    return null;
  }

  removeRoi(id) {
    for (const list of this.rois.values()) {
      const index = list.findIndex((r) => r.id === id);
      if (index >= 0) return list.splice(index, 1)[0];
    }
    return null;
  }

  /** Clear a level (ROIs and exclusion); returns the removed ROIs. */
  clear(label) {
    this.exclusions.delete(label);
    return this.rois.get(label).splice(0);
  }

  /** Exclude a level with a reason (spec list); returns the ROIs it replaces. */
  exclude(label, reason, note = "") {
    const { levels, reasons } = this;
    if (!levels.includes(label)) throw new Error(`only ${levels[0]}-${levels.at(-1)} can be excluded: the score needs a CSF ROI`);
    if (!reasons.includes(reason)) throw new Error(`reason must be one of ${reasons.join(", ")}`);
    const removed = this.rois.get(label).splice(0);
    this.exclusions.set(label, { reason, note: note.trim() });
    return removed;
  }

  setCsfLevel(level) {
    if (!isVertebralLevel(level)) throw new Error(`${level} is not a vertebral level such as L2, L3 or L4`);
    this.csfLevel = level;
  }

  /** The spec `vbq.rois/1` document: ROIs in protocol order, then exclusions. */
  toJson() {
    const items = [];
    for (const label of this.labels) {
      for (const { id, sop_instance_uid, ...shape } of this.rois.get(label)) {
        const item = { label };
        if (label === this.csf) item.level = this.csfLevel;
        items.push({ ...item, sop_instance_uid, ...shape });
      }
    }
    for (const label of this.levels) {
      const exclusion = this.exclusions.get(label);
      if (!exclusion) continue;
      const item = { label, excluded: true, reason: exclusion.reason };
      if (exclusion.note) item.note = exclusion.note;
      items.push(item);
    }
    return { schema: "vbq.rois/1", series_instance_uid: this.seriesInstanceUid, rois: items };
  }
}

// The guided VBQ protocol as plain data: which level is current, what each level holds, and the
// spec `vbq.rois/1` document that results. Pure (no DOM, no Cornerstone), tested in Node.
//
// Decisions (docs/viewer.md): the protocol walks L1 -> L2 -> L3 -> L4 -> CSF and moves on to the
// next open level after each ROI; drawing again on a level replaces its ROI (a level may hold
// several ROIs only when a saved set already has them: they are kept and pooled, as the server
// pools them); an exclusion replaces the level's ROIs; the CSF cannot be excluded.

export const LEVELS = ["L1", "L2", "L3", "L4"];
export const LABELS = [...LEVELS, "CSF"];
export const REASONS = ["fracture", "hemangioma", "instrumentation", "modic", "other"];
export const CSF_LEVELS = ["L3", "L2", "L4"];
export const DEFAULT_CSF_LEVEL = "L3";
const VERTEBRAL_LEVEL = /^(?:C[1-7]|T[1-9]|T1[0-2]|L[1-6]|S[1-5])(?:-(?:C[1-7]|T[1-9]|T1[0-2]|L[1-6]|S[1-5]))?$/;

export function isVertebralLevel(text) {
  return VERTEBRAL_LEVEL.test(text);
}

export class Protocol {
  constructor(seriesInstanceUid) {
    this.seriesInstanceUid = seriesInstanceUid;
    this.rois = new Map(LABELS.map((label) => [label, []])); // label -> [{id, sop_instance_uid, shape...}]
    this.exclusions = new Map(); // level -> {reason, note}
    this.csfLevel = DEFAULT_CSF_LEVEL;
    this.current = "L1";
  }

  /** A protocol from a saved `vbq.rois/1` document (ids are made up: "saved-0", ...). */
  static fromJson(doc, seriesInstanceUid) {
    const p = new Protocol(seriesInstanceUid);
    if (!doc) return p;
    (doc.rois || []).forEach((item, i) => {
      if (item.excluded) {
        p.exclusions.set(item.label, { reason: item.reason, note: item.note ?? "" });
        return;
      }
      const { label, level, excluded, ...roi } = item; // eslint-disable-line no-unused-vars
      if (label === "CSF" && level) p.csfLevel = level;
      p.rois.get(label)?.push({ id: `saved-${i}`, ...roi });
    });
    p.current = p.nextOpen() ?? "L1";
    return p;
  }

  status(label) {
    if (this.exclusions.has(label)) return "excluded";
    return this.rois.get(label).length ? "measured" : "todo";
  }

  missing() {
    return LABELS.filter((label) => this.status(label) === "todo");
  }

  isComplete() {
    return this.missing().length === 0;
  }

  /** The first level still to do, in protocol order, starting after `after` and wrapping. */
  nextOpen(after = null) {
    const start = after ? LABELS.indexOf(after) + 1 : 0;
    for (let k = 0; k < LABELS.length; k++) {
      const label = LABELS[(start + k) % LABELS.length];
      if (this.status(label) === "todo") return label;
    }
    return null;
  }

  select(label) {
    if (!LABELS.includes(label)) throw new Error(`unknown level ${label}`);
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
    if (!LEVELS.includes(label)) throw new Error("only L1-L4 can be excluded: the score needs a CSF ROI");
    if (!REASONS.includes(reason)) throw new Error(`reason must be one of ${REASONS.join(", ")}`);
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
    for (const label of LABELS) {
      for (const { id, sop_instance_uid, ...shape } of this.rois.get(label)) {
        const item = { label };
        if (label === "CSF") item.level = this.csfLevel;
        items.push({ ...item, sop_instance_uid, ...shape });
      }
    }
    for (const label of LEVELS) {
      const exclusion = this.exclusions.get(label);
      if (!exclusion) continue;
      const item = { label, excluded: true, reason: exclusion.reason };
      if (exclusion.note) item.note = exclusion.note;
      items.push(item);
    }
    return { schema: "vbq.rois/1", series_instance_uid: this.seriesInstanceUid, rois: items };
  }
}

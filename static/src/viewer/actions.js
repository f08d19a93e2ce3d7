// What the reader does to the reading, whichever input asks (keys: keyboard.js; buttons and
// dialogs: controls.js): select a tool or a level, place, move, resize or remove the current
// level's ROI, exclude a level, open the submit dialog, and turn the viewer read-only. Separate
// so that the keyboard and the buttons call one set of actions, and neither knows how an
// action reaches the protocol, the annotations and the panel.
import { renderAnnotations, setRoiTool } from "./tools.js";
import { setStatus } from "./panel.js";
import * as ser from "./roi/serialize.js";

const $ = (id) => document.getElementById(id);

// Default ROI sizes for keyboard placement (semi-axes in mm, x then y).
const DEFAULT_SIZE_MM = { bone: [9, 6], csf: [2.5, 5] };

/**
 * @param state        the viewer's state (tool, writable)
 * @param protocol     the Protocol edited
 * @param toolGroup    Cornerstone's tool group (cornerstone.js)
 * @param bridge       the annotations bridge (annotations.js)
 * @param view         the view (view.js)
 * @param renderPanel  redraws the panel
 * @param changed      called with the labels whose ROIs changed (preview, panel, autosave)
 */
export function createActions({ state, protocol, toolGroup, bridge, view, renderPanel, changed }) {
  function selectTool(name) {
    state.tool = name;
    setRoiTool(toolGroup, name, state.writable);
    document.querySelectorAll("[data-tool]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === name)));
  }

  function placeDefaultRoi() {
    const { item, point } = view.viewCentre();
    const size = protocol.current === protocol.csf ? DEFAULT_SIZE_MM.csf : DEFAULT_SIZE_MM.bone;
    const shape = ser.defaultShape(state.tool, item.geometry, point, size);
    bridge.replaceCurrentRoi({ sop_instance_uid: item.sop, ...shape });
    return protocol.current;
  }

  function adjustCurrentRoi(transform) {
    const list = protocol.rois.get(protocol.current);
    if (list.length !== 1) return;
    const { id, sop_instance_uid, ...shape } = list[0];
    bridge.replaceCurrentRoi({ sop_instance_uid, ...transform(shape) });
    view.goToSop(sop_instance_uid);
  }

  function selectLevel(label) {
    protocol.select(label);
    const first = protocol.rois.get(label)[0];
    if (first) view.goToSop(first.sop_instance_uid);
    renderPanel();
  }

  function removeCurrent() {
    const label = protocol.current;
    for (const old of protocol.clear(label)) bridge.removeAnnotation(old.id);
    renderAnnotations();
    changed([label]);
  }

  function openExcludeDialog() {
    if (protocol.current === protocol.csf) {
      setStatus("The CSF cannot be excluded: the score needs a CSF ROI.", true);
      return;
    }
    const dialog = $("exclude-dialog");
    $("exclude-level").textContent = protocol.current;
    const existing = protocol.exclusions.get(protocol.current);
    $("exclude-reason").value = existing?.reason ?? protocol.reasons[0];
    $("exclude-note").value = existing?.note ?? "";
    dialog.showModal();
    $("exclude-reason").focus();
  }

  function confirmExclusion() {
    const label = protocol.current;
    for (const old of protocol.exclude(label, $("exclude-reason").value, $("exclude-note").value)) bridge.removeAnnotation(old.id);
    renderAnnotations();
    const next = protocol.nextOpen(label);
    if (next) protocol.select(next);
    changed([label]);
  }

  function openSubmitDialog() {
    const missing = protocol.missing();
    if (missing.length) {
      setStatus(`Not yet measured or excluded: ${missing.join(", ")}.`, true);
      return;
    }
    $("submit-summary").textContent = protocol.labels.map((l) => `${l}: ${protocol.status(l) === "excluded" ? `excluded (${protocol.exclusions.get(l).reason})` : "measured"}`).join(" · ");
    $("submit-dialog").showModal();
    $("submit-confirm").focus();
  }

  function becomeReadOnly() {
    state.writable = false;
    selectTool(state.tool);
    bridge.lockAll();
    document.body.classList.add("viewer-readonly");
    renderPanel();
  }

  return {
    selectTool,
    selectLevel,
    placeDefaultRoi,
    moveCurrentRoi: (dx, dy) => adjustCurrentRoi((shape) => ser.translateShape(shape, dx, dy)),
    growCurrentRoi: (pixels) => adjustCurrentRoi((shape) => ser.growShape(shape, pixels)),
    removeCurrent,
    openExcludeDialog,
    confirmExclusion,
    openSubmitDialog,
    becomeReadOnly,
  };
}

// The page's controls: toolbar and panel buttons, the CSF level, the level rows, the exclusion
// and submit dialogs, the keyboard handler and the save on leaving. Separate because it is the
// one place that attaches listeners to the page's controls (by their ids, which the browser
// tests drive); what each control does is in actions.js, view.js and persistence.js.
import { isVertebralLevel } from "./protocol.js";
import { setStatus } from "./panel.js";

const $ = (id) => document.getElementById(id);

/**
 * @param state        the viewer's state (writable, savedJson)
 * @param protocol     the Protocol edited
 * @param element      the viewport's element (it takes the keyboard focus back)
 * @param actions, view, persistence  what the controls call
 * @param onKey        the window keydown handler (keyboard.js)
 * @param changed      called with the labels whose ROIs changed
 */
export function wireControls({ state, protocol, element, actions, view, persistence, onKey, changed }) {
  document.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => actions.selectTool(b.dataset.tool)));
  $("wl-preset").addEventListener("change", (e) => view.applyPreset(Number(e.target.value)));
  $("zoom-in").addEventListener("click", () => view.zoom(1.25));
  $("zoom-out").addEventListener("click", () => view.zoom(0.8));
  $("reset-view").addEventListener("click", view.resetView);
  $("exclude-button").addEventListener("click", actions.openExcludeDialog);
  $("remove-button").addEventListener("click", actions.removeCurrent);
  $("submit-button").addEventListener("click", actions.openSubmitDialog);
  $("exclude-form").addEventListener("submit", (e) => {
    if (e.submitter?.value === "cancel") return;
    actions.confirmExclusion();
  });
  // A dialog that closes must hand the keyboard back to the viewer at once. Left alone, the
  // focus stays on the closed dialog's control until the browser's next focus fix-up, and a key
  // pressed before that (Enter, straight after confirming an exclusion) was taken for typing in
  // that control and ignored.
  for (const id of ["exclude-dialog", "submit-dialog"]) {
    $(id).addEventListener("close", () => element.focus({ preventScroll: true }));
  }
  // Enter confirms an exclusion from the reason list too (a <select> does not submit a form).
  $("exclude-dialog").addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || e.target instanceof HTMLButtonElement || !$("exclude-dialog").open) return;
    e.preventDefault();
    e.stopPropagation(); // the same Enter must not reach the viewer's keys (it would submit)
    actions.confirmExclusion();
    $("exclude-dialog").close();
  });
  $("submit-form").addEventListener("submit", (e) => {
    if (e.submitter?.value !== "cancel") persistence.submit();
  });
  const csfSelect = $("csf-level");
  const csfOther = $("csf-other");
  // The levels the list offers (the template's options), "other" aside.
  const known = [...csfSelect.options].some((o) => o.value !== "other" && o.value === protocol.csfLevel);
  csfSelect.value = known ? protocol.csfLevel : "other";
  csfOther.hidden = known;
  csfOther.value = known ? "" : protocol.csfLevel;
  csfSelect.addEventListener("change", () => {
    csfOther.hidden = csfSelect.value !== "other";
    if (csfSelect.value !== "other") {
      protocol.setCsfLevel(csfSelect.value);
      changed([protocol.csf]);
    } else csfOther.focus();
  });
  csfOther.addEventListener("change", () => {
    const value = csfOther.value.trim().toUpperCase();
    if (!isVertebralLevel(value)) {
      setStatus(`${value || "(empty)"} is not a vertebral level such as L2, L3 or L4.`, true);
      return;
    }
    protocol.setCsfLevel(value);
    changed([protocol.csf]);
  });
  $("levels").addEventListener("click", (e) => {
    const row = e.target.closest("[data-label]");
    if (row) actions.selectLevel(row.dataset.label);
  });
  csfSelect.disabled = csfOther.disabled = !state.writable;
  window.addEventListener("keydown", onKey);
  element.focus({ preventScroll: true });
  window.addEventListener("beforeunload", (e) => {
    if (state.writable && JSON.stringify(protocol.toJson()) !== state.savedJson) {
      persistence.saveNow();
      e.preventDefault();
    }
  });
}

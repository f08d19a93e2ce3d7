// The viewer's keys (the map is in docs/viewer.md and the page's "Keys and mouse" box): one
// window keydown handler that turns a key into an action of actions.js or view.js. Separate so
// that the whole key map reads in one place; keys typed into a dialog or a form control are
// left alone.
import { midsagittalIndex } from "./dicomweb.js";

/**
 * @param state     the viewer's state (items, writable, presetIndex)
 * @param protocol  the Protocol (its levels are keys 1, 2, ...; its CSF label is C)
 * @param actions   actions.js
 * @param view      view.js
 */
export function createKeyHandler({ state, protocol, actions, view }) {
  return function onKey(e) {
    const target = e.target;
    if (document.querySelector("dialog[open]") || target.closest?.("dialog")) return;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
    if (target instanceof HTMLButtonElement && (e.key === "Enter" || e.key === " ")) return;
    const key = e.key;
    const edit = state.writable;
    const handled = () => e.preventDefault();
    if (e.shiftKey && key.startsWith("Arrow") && edit) {
      const step = e.ctrlKey || e.metaKey ? 5 : 1;
      const [dx, dy] = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[key];
      actions.moveCurrentRoi(dx, dy);
      return handled();
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const level = /^[1-9]$/.test(key) ? protocol.levels[Number(key) - 1] : undefined;
    if (level) return handled(actions.selectLevel(level));
    switch (key.length === 1 ? key.toLowerCase() : key) {
      case "c":
        return handled(actions.selectLevel(protocol.csf));
      case "ArrowUp":
      case "ArrowLeft":
      case "PageUp":
        return handled(view.scrollBy(-1));
      case "ArrowDown":
      case "ArrowRight":
      case "PageDown":
        return handled(view.scrollBy(1));
      case "Home":
        return handled(view.goTo(0));
      case "End":
        return handled(view.goTo(state.items.length - 1));
      case "m":
        return handled(view.goTo(midsagittalIndex(state.items)));
      case "+":
      case "=":
        return handled(view.zoom(1.25));
      case "-":
        return handled(view.zoom(0.8));
      case "r":
        return handled(view.resetView());
      case "w":
        return handled(view.applyPreset(state.presetIndex + 1));
      case "?":
        document.getElementById("viewer-help").open = !document.getElementById("viewer-help").open;
        return handled();
    }
    if (!edit) return;
    switch (key.length === 1 ? key.toLowerCase() : key) {
      case "o":
        return handled(actions.selectTool("ellipse"));
      case "b":
        return handled(actions.selectTool("rectangle"));
      case "f":
        return handled(actions.selectTool("freehand"));
      case "p":
        return handled(actions.placeDefaultRoi());
      case "[":
        return handled(actions.growCurrentRoi(-1));
      case "]":
        return handled(actions.growCurrentRoi(1));
      case "e":
        return handled(actions.openExcludeDialog());
      case "Delete":
      case "Backspace":
        return handled(actions.removeCurrent());
      case "Enter":
        return handled(actions.openSubmitDialog());
    }
  };
}

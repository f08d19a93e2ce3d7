// The view of the stack: slices, window/level presets, zoom, the overlay text (series, slice,
// W/L, orientation markers) and the point where a placed ROI goes (the pointer, or the centre of
// the view). Separate because it drives the viewport's display only: it reads no ROI and
// changes nothing of the reading.
import { orientationMarkers } from "./orientation.js";
import * as ser from "./roi/serialize.js";

const $ = (id) => document.getElementById(id);

/**
 * @param state        the viewer's state (items, firstImageAt, presets, presetIndex)
 * @param viewport     the stack viewport, element its DOM element
 * @param renderPanel  called when the slice shown changes (the panel marks ROIs on other slices)
 */
export function createView({ state, viewport, element, renderPanel }) {
  // The pointer over the image, in canvas pixels (null when it is elsewhere): "P" places the
  // current level's ROI there, so the reader points and presses one key.
  let pointer = null;
  element.addEventListener("pointermove", (e) => {
    const rect = element.getBoundingClientRect();
    pointer = [e.clientX - rect.left, e.clientY - rect.top];
  });
  element.addEventListener("pointerleave", () => {
    pointer = null;
  });

  function onRendered() {
    if (state.firstImageAt === null && viewport.getCornerstoneImage?.()) {
      state.firstImageAt = performance.now();
      document.body.dataset.viewerReady = "1";
      state.presets = makePresets();
      updateOverlay();
    }
  }

  function goTo(index) {
    return viewport.setImageIdIndex(index);
  }

  function scrollBy(delta) {
    const index = Math.min(state.items.length - 1, Math.max(0, viewport.getCurrentImageIdIndex() + delta));
    viewport.setImageIdIndex(index);
  }

  function goToSop(sop) {
    const index = state.items.findIndex((i) => i.sop === sop);
    if (index >= 0 && index !== viewport.getCurrentImageIdIndex()) viewport.setImageIdIndex(index);
  }

  function makePresets() {
    const image = viewport.getCornerstoneImage();
    const presets = [];
    const voi = viewport.getProperties().voiRange;
    if (voi) presets.push({ name: "Image default", lower: voi.lower, upper: voi.upper });
    if (image) {
      const lo = image.minPixelValue * (image.slope ?? 1) + (image.intercept ?? 0);
      const hi = image.maxPixelValue * (image.slope ?? 1) + (image.intercept ?? 0);
      const span = hi - lo || 1;
      presets.push({ name: "Full range", lower: lo, upper: hi });
      presets.push({ name: "Marrow (bright)", lower: lo + 0.25 * span, upper: lo + 0.85 * span });
      presets.push({ name: "Fluid (dark)", lower: lo, upper: lo + 0.45 * span });
    }
    const select = $("wl-preset");
    select.replaceChildren(...presets.map((p, i) => new Option(p.name, String(i))));
    return presets;
  }

  function applyPreset(index) {
    if (!state.presets.length) return;
    state.presetIndex = (index + state.presets.length) % state.presets.length;
    const p = state.presets[state.presetIndex];
    viewport.setProperties({ voiRange: { lower: p.lower, upper: p.upper } });
    viewport.render();
    $("wl-preset").value = String(state.presetIndex);
  }

  function zoom(factor) {
    const camera = viewport.getCamera();
    viewport.setCamera({ parallelScale: camera.parallelScale / factor });
    viewport.render();
  }

  function resetView() {
    viewport.resetCamera();
    viewport.resetProperties();
    viewport.render();
    state.presetIndex = 0;
    $("wl-preset").value = "0";
  }

  function updateOverlay() {
    if (!viewport) return;
    const index = viewport.getCurrentImageIdIndex();
    const item = state.items[index];
    $("slice-indicator").textContent = `Slice ${index + 1} / ${state.items.length}${item?.instanceNumber ? ` · Im ${item.instanceNumber}` : ""}`;
    if (item) {
      const tag = (t) => item.json[t]?.Value?.[0];
      const number = tag("00200011");
      $("series-indicator").textContent = [number !== undefined ? `Se ${number}` : "", tag("0008103E") ?? ""].filter(Boolean).join(" · ");
      const markers = orientationMarkers([...item.geometry.rowDirection, ...item.geometry.columnDirection]);
      for (const edge of ["top", "bottom", "left", "right"]) $(`orient-${edge}`).textContent = markers[edge];
    }
    const voi = viewport.getProperties().voiRange;
    if (voi) {
      const width = voi.upper - voi.lower;
      $("wl-indicator").textContent = `W ${Math.round(width)} · L ${Math.round(voi.lower + width / 2)}`;
    }
    renderPanel();
  }

  /** Where a placed ROI goes, in spec coordinates on the slice shown: the image point under
   *  the pointer when it is over the image, else the one at the centre of the view. */
  function viewCentre() {
    const item = state.items[viewport.getCurrentImageIdIndex()];
    const { width, height } = element.getBoundingClientRect();
    const at = pointer && pointer[0] >= 0 && pointer[1] >= 0 && pointer[0] <= width && pointer[1] <= height ? pointer : [width / 2, height / 2];
    const world = viewport.canvasToWorld(at);
    return { item, point: ser.worldToImage(item.geometry, world) };
  }

  /** Page (CSS pixel) position of spec image point (x, y) on the displayed slice. */
  function imageToPage(x, y) {
    const item = state.items[viewport.getCurrentImageIdIndex()];
    const [cx, cy] = viewport.worldToCanvas(ser.imageToWorld(item.geometry, [x, y]));
    const rect = element.getBoundingClientRect();
    return [rect.left + cx, rect.top + cy];
  }

  const currentIndex = () => viewport.getCurrentImageIdIndex();

  return {
    onRendered,
    updateOverlay,
    currentIndex,
    goTo,
    goToSop,
    scrollBy,
    applyPreset,
    zoom,
    resetView,
    viewCentre,
    imageToPage,
  };
}

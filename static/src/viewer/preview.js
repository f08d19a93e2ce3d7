// Preview statistics: each level's count, median and mean, computed in the browser from the
// pixels the server decodes (dicomweb.js) with the server's own rules (roi/stats.js), shown
// in the panel before the server's score arrives. Separate because it is the one asynchronous
// reader of pixels: it caches them per instance and drops results that a newer edit superseded.
import { fetchModalityImage } from "./dicomweb.js";
import { RoiMeasureError, pooledStatistics } from "./roi/stats.js";

/**
 * @param state        the viewer's state (bySop, pixels: SOP UID -> Promise, preview: label -> result)
 * @param protocol     the Protocol whose ROIs are measured
 * @param renderPanel  called whenever a preview changes
 */
export function createPreview({ state, protocol, renderPanel }) {
  let previewFrame = null;
  const pendingLabels = new Set();

  function pixelsOf(sop) {
    if (!state.pixels.has(sop)) {
      const promise = fetchModalityImage(state.bySop.get(sop));
      promise.catch(() => state.pixels.delete(sop)); // try again next time
      state.pixels.set(sop, promise);
    }
    return state.pixels.get(sop);
  }

  async function refreshPreview(label) {
    const rois = protocol.rois.get(label).map(({ id, ...r }) => r);
    if (!rois.length) {
      state.preview.delete(label);
      renderPanel();
      return;
    }
    const token = JSON.stringify(rois);
    state.preview.set(label, { pending: true, token });
    renderPanel();
    try {
      const images = new Map();
      for (const roi of rois) images.set(roi.sop_instance_uid, await pixelsOf(roi.sop_instance_uid));
      if (state.preview.get(label)?.token !== token) return; // superseded
      state.preview.set(label, { token, ...pooledStatistics(rois, images) });
    } catch (error) {
      if (state.preview.get(label)?.token !== token) return;
      state.preview.set(label, { token, error: error instanceof RoiMeasureError ? error.message : String(error.message || error) });
    }
    renderPanel();
  }

  function refreshAllPreviews() {
    for (const label of protocol.labels) refreshPreview(label);
  }

  /** Refresh these levels' previews at the next frame (one refresh per level for a burst of edits). */
  function schedule(labels) {
    labels.forEach((l) => pendingLabels.add(l));
    if (previewFrame === null) {
      previewFrame = requestAnimationFrame(() => {
        previewFrame = null;
        const todo = [...pendingLabels];
        pendingLabels.clear();
        todo.forEach(refreshPreview);
      });
    }
  }

  return { refreshAllPreviews, schedule };
}

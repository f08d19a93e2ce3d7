// The reader's viewer: Cornerstone3D stack viewport over the case's reading series (DICOMweb),
// the guided VBQ protocol, live preview statistics, autosave, submission and the server's score.
// Decisions and the keyboard map: docs/viewer.md. Everything starts from the page's JSON payload
// (#viewer-config), which holds this reading alone and the vocabulary (levels, CSF label,
// exclusion reasons) defined once in studies/vocabulary.py.
//
// This module only wires the others together, passing each what it needs:
//   cornerstone.js  Cornerstone set-up for the first image: loader, rendering engine, viewport
//   tools.js        Cornerstone tools: tool group, mouse bindings, annotation events, prefetch
//   annotations.js  Cornerstone annotations <-> the protocol's spec ROIs
//   preview.js      preview statistics from the server's decoded pixels
//   persistence.js  autosave, submit, score polling (fetch and timers injected)
//   panel.js        the side panel, score, save state and status line (DOM)
//   view.js         slices, window/level, zoom, overlay
//   actions.js      what the reader does to the reading
//   keyboard.js     the key map
//   controls.js     the page's buttons, selects and dialogs
//
// Loading (issue 15 item 4), in the order the first image needs things: this entry is small (the
// page's own modules); it asks for the series' metadata at once, while cornerstone.js (the core
// and the image loader, most of the code) is fetched and evaluated by dynamic import; then the
// first image. tools.js, annotations.js and actions.js (Cornerstone's tools, about a quarter of
// the code) are imported once the image is shown, then everything is wired and the page is
// ready (`body[data-viewer-ready]`). The reader sees the image while the tools arrive.
import { wireControls } from "./controls.js";
import { loadSeries, midsagittalIndex } from "./dicomweb.js";
import { createKeyHandler } from "./keyboard.js";
import { createPanel, labelColors, markSubmitted, offerReload, renderScore, setSaveState, setStatus, showReadOnly } from "./panel.js";
import { createPersistence } from "./persistence.js";
import { createPreview } from "./preview.js";
import { Protocol } from "./protocol.js";
import { createView } from "./view.js";

const $ = (id) => document.getElementById(id);
// A page restored from the back-forward cache would show the reading as it was when left (a
// draft, after it was submitted): ask the server again (the page is no-store, so a reload is).
window.addEventListener("pageshow", (e) => {
  if (e.persisted) window.location.reload();
});
const config = JSON.parse($("viewer-config").textContent);
// First the series' metadata (a server round trip), then Cornerstone (its code): both at once.
const seriesPromise = loadSeries(config.dicomweb);
seriesPromise.catch(() => {}); // handled in start(); not an "unhandled rejection" before it awaits
const cornerstoneLoading = import("./cornerstone.js");
const reading = config.reading;
const protocol = Protocol.fromJson(reading.rois, config.dicomweb.series_instance_uid, config.vocabulary);
const state = {
  items: [], // instances in stack order
  bySop: new Map(),
  byImageId: new Map(),
  annotationLabel: new Map(), // Cornerstone annotation UID -> label
  pixels: new Map(), // SOP UID -> Promise<{rows, columns, values}>
  preview: new Map(), // label -> {n_pixels, median, mean} | {error}
  tool: "ellipse",
  writable: reading.writable,
  locked: reading.locked,
  // The loaded set in the form the viewer writes: opening a case and leaving saves nothing.
  savedJson: JSON.stringify(protocol.toJson()),
  saving: null,
  saveTimer: null,
  lastVersion: reading.roi_version,
  score: null,
  firstImageAt: null,
  presets: [],
  presetIndex: 0,
};
let viewer = null; // {view, bridge, persistence}, once start() has made them
let cs = null; // cornerstone.js, once imported
let firstPaintAt = null; // performance.now() when the first image was painted
// The tools are fetched once the image is shown, or after this long if it never is (a frame
// that fails to decode renders no image; the page must still start and say so).
const TOOLS_AFTER_MS = 3000;

async function start() {
  const element = $("viewport");
  element.addEventListener("contextmenu", (e) => e.preventDefault());
  setStatus("Loading the series…");
  cs = await cornerstoneLoading;
  const { addInstanceMetadata, createViewport, firstImageShown, initCornerstone, onViewportEvents } = cs;
  await initCornerstone(config.urls);

  const items = await seriesPromise;
  if (!items.length) throw new Error("this series has no instances to show");
  state.items = items;
  for (const item of items) {
    state.bySop.set(item.sop, item);
    state.byImageId.set(item.imageId, item);
  }
  addInstanceMetadata(items);

  // The first image: a reading with ROIs opens on the slice of its first one (a submitted
  // reading shows what was measured, a draft resumes where it was); an empty one on the
  // midsagittal slice.
  const viewport = createViewport(element);
  const first = protocol.labels.map((label) => protocol.rois.get(label)[0]).find(Boolean);
  const roiIndex = first ? items.findIndex((i) => i.sop === first.sop_instance_uid) : -1;
  const start = roiIndex >= 0 ? roiIndex : midsagittalIndex(items);
  const shown = firstImageShown(element, viewport).then((at) => (firstPaintAt = at));
  await viewport.setStack(items.map((i) => i.imageId), start);
  viewport.render();
  await Promise.race([shown, new Promise((resolve) => window.setTimeout(resolve, TOOLS_AFTER_MS))]);

  // Then the rest: the tools, the annotations and the reader's actions.
  const [{ onAnnotationEvents, prefetchSeries, setUpTools }, { createAnnotationBridge }, { createActions }] = await Promise.all([
    import("./tools.js"),
    import("./annotations.js"),
    import("./actions.js"),
  ]);
  const toolGroup = setUpTools();
  const colors = labelColors(config.vocabulary);
  const { renderPanel } = createPanel({ state, protocol, colors, viewport });
  const view = createView({ state, viewport, element, renderPanel });
  const bridge = createAnnotationBridge({ state, protocol, viewport, element, colors, changed });
  const preview = createPreview({ state, protocol, renderPanel });
  const actions = createActions({ state, protocol, toolGroup, bridge, view, renderPanel, changed });
  const persistence = createPersistence({
    state,
    protocol,
    urls: config.urls,
    csrfToken: config.csrf_token,
    fetch: window.fetch.bind(window),
    setTimeout: window.setTimeout.bind(window),
    clearTimeout: window.clearTimeout.bind(window),
    ui: {
      setSaveState,
      setStatus: (text, isError) => {
        setStatus(text, isError);
        if (isError && /reload/i.test(text)) offerReload(); // the server's "already submitted — reload"
      },
      renderScore: (payload) => renderScore(payload, { missing: protocol.missing() }),
      renderPanel,
      becomeReadOnly: () => {
        const refused = !state.locked; // not our own submit: the server refused a save
        actions.becomeReadOnly();
        showReadOnly(protocol.csfLevel);
        if (refused) offerReload();
      },
      markSubmitted: () => {
        markSubmitted();
        goToNextCase();
      },
    },
  });
  viewer = { view, bridge, persistence };

  /** The ROIs of these levels changed: refresh their previews, redraw the panel, save soon. */
  function changed(labels) {
    preview.schedule(labels);
    renderPanel();
    persistence.scheduleSave();
  }

  actions.selectTool("ellipse");
  onAnnotationEvents({
    completed: (annotation) => bridge.onAnnotation(annotation, true),
    modified: (annotation) => bridge.onAnnotation(annotation, false),
    removed: (annotation) => bridge.onRemoved(annotation),
  });
  onViewportEvents(element, { rendered: view.onRendered, changed: view.updateOverlay });
  prefetchSeries(element);
  bridge.drawSavedRois();
  const onKey = createKeyHandler({ state, protocol, actions, view });
  wireControls({ state, protocol, element, actions, view, persistence, onKey, changed });
  renderPanel();
  preview.refreshAllPreviews();
  if (reading.rois) persistence.pollScore(reading.roi_version);
  else renderScore({ status: "empty" });
  if (!state.writable) showReadOnly(protocol.csfLevel);
  setStatus(state.writable ? "Ready" : "Read-only: this reading is submitted");
  // The view's first render marks the page ready (its presets and overlay made): everything
  // above is wired by then.
  viewport.render();
}

/** Save and next: once submitted, the next case of the session not yet submitted opens (or the
 *  worklist, once the session is complete): readers/views.py `reading_next`. */
function goToNextCase() {
  const form = $("next-form");
  if (!form) return;
  setStatus("Submitted · opening the next case…");
  $("after-submit").hidden = false;
  form.requestSubmit();
}

// --- for tests and benchmarks (no effect on the page) ------------------------------------------

window.vbqViewer = {
  /** performance.now() when the first image was painted (bench/viewer.py: time to first image). */
  get firstImageAt() {
    return firstPaintAt;
  },
  /** performance.now() when the page was ready: the tools wired, the view's first render. */
  get readyAt() {
    return state.firstImageAt;
  },
  roiJson: () => protocol.toJson(),
  preview: () => Object.fromEntries([...state.preview].map(([k, v]) => [k, { ...v }])),
  score: () => state.score,
  saveState: () => $("save-state").dataset.state,
  version: () => state.lastVersion,
  currentIndex: () => viewer.view.currentIndex(),
  sopAt: (index) => state.items[index]?.sop,
  indexOf: (sop) => state.items.findIndex((i) => i.sop === sop),
  goTo: (index) => viewer.view.goTo(index),
  /** Page (CSS pixel) position of spec image point (x, y) on the displayed slice. */
  imageToPage: (x, y) => viewer.view.imageToPage(x, y),
  /** Cornerstone's own statistics of a level's annotation (count and median), if computed. */
  cornerstoneStats: (label) => viewer.bridge.cornerstoneStats(label),
  flush: () => viewer.persistence.saveNow(),
  /** How many of the series' images are decoded in the cache (the prefetch's progress). */
  cached: () => cs.cachedImageCount(state.items.map((i) => i.imageId)),
  imageCount: () => state.items.length,
};

start().catch((error) => {
  console.error(error);
  setStatus(`The viewer could not start: ${error.message || error}`, true);
  document.body.dataset.viewerError = String(error.message || error);
});

// The reader's viewer: Cornerstone3D stack viewport over the case's reading series (DICOMweb),
// the guided VBQ protocol, live preview statistics, autosave, submission and the server's score.
// Decisions and the keyboard map: docs/viewer.md. Everything starts from the page's JSON payload
// (#viewer-config), which holds this reading alone.
import {
  Enums as CoreEnums,
  RenderingEngine,
  eventTarget,
  getWebWorkerManager,
  init as coreInit,
} from "@cornerstonejs/core";
import * as csTools from "@cornerstonejs/tools";
import dicomImageLoader from "@cornerstonejs/dicom-image-loader";

import { fetchModalityImage, loadSeries, midsagittalIndex } from "./dicomweb.js";
import { CSF_LEVELS, LABELS, Protocol, REASONS, isVertebralLevel } from "./protocol.js";
import * as ser from "./roi/serialize.js";
import { RoiMeasureError, pooledStatistics } from "./roi/stats.js";

const {
  ToolGroupManager,
  EllipticalROITool,
  RectangleROITool,
  PlanarFreehandROITool,
  WindowLevelTool,
  PanTool,
  ZoomTool,
  StackScrollTool,
  annotation: annotationApi,
  Enums: ToolEnums,
} = csTools;
const { MouseBindings, KeyboardBindings } = ToolEnums;

const TOOLS = { ellipse: EllipticalROITool, rectangle: RectangleROITool, freehand: PlanarFreehandROITool };
const ROI_TOOL_NAMES = new Set(Object.values(TOOLS).map((T) => T.toolName));
// Saturated, distinct hues that stand out on a grey image.
const COLORS = { L1: "#ffe119", L2: "#ff7f0e", L3: "#f032e6", L4: "#3cd070", CSF: "#42c8f5" };
// Default ROI sizes for keyboard placement (semi-axes in mm, x then y).
const DEFAULT_SIZE_MM = { bone: [9, 6], CSF: [2.5, 5] };
const VIEWPORT_ID = "vbq-stack";
const SAVE_DELAY_MS = 700;

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("viewer-config").textContent);
const reading = config.reading;
const protocol = Protocol.fromJson(reading.rois, config.dicomweb.series_instance_uid);
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
let viewport;
let element;
let toolGroup;
let quiet = 0; // >0 while the viewer itself adds or removes annotations

// --- start-up ----------------------------------------------------------------------------------

async function start() {
  element = $("viewport");
  element.addEventListener("contextmenu", (e) => e.preventDefault());
  setStatus("Loading the series…");
  const seriesPromise = loadSeries(config.dicomweb);
  await coreInit();
  csTools.init();
  // 5.14 has no webWorkerFactory: register the worker under its static URL before init().
  getWebWorkerManager().registerWorker(
    "dicomImageLoader",
    () => new Worker(config.urls.worker, { type: "module" }),
    { maxWorkerInstances: Math.max(1, Math.min(2, Math.floor((navigator.hardwareConcurrency || 2) / 2))) },
  );
  dicomImageLoader.init({ wasmBasePath: config.urls.wasm, maxWebWorkers: 2 });

  const items = await seriesPromise;
  if (!items.length) throw new Error("this series has no instances to show");
  state.items = items;
  for (const item of items) {
    state.bySop.set(item.sop, item);
    state.byImageId.set(item.imageId, item);
    dicomImageLoader.wadors.metaDataManager.add(item.imageId, item.json);
  }

  const engine = new RenderingEngine("vbq-engine");
  engine.enableElement({ viewportId: VIEWPORT_ID, type: CoreEnums.ViewportType.STACK, element });
  viewport = engine.getViewport(VIEWPORT_ID);
  setUpTools();
  element.addEventListener(CoreEnums.Events.IMAGE_RENDERED, onRendered);
  element.addEventListener(CoreEnums.Events.STACK_NEW_IMAGE, updateOverlay);
  element.addEventListener(CoreEnums.Events.VOI_MODIFIED, updateOverlay);
  new ResizeObserver(() => engine.resize(true, true)).observe(element);

  const start = midsagittalIndex(items);
  await viewport.setStack(items.map((i) => i.imageId), start);
  viewport.render();
  drawSavedRois();
  wireUi();
  renderPanel();
  refreshAllPreviews();
  if (reading.rois) pollScore(reading.roi_version);
  else renderScore({ status: "empty" });
  setStatus(state.writable ? "Ready" : "Read-only: this reading is submitted");
}

function onRendered() {
  if (state.firstImageAt === null && viewport.getCornerstoneImage?.()) {
    state.firstImageAt = performance.now();
    document.body.dataset.viewerReady = "1";
    state.presets = makePresets();
    updateOverlay();
  }
}

// --- tools -------------------------------------------------------------------------------------

function setUpTools() {
  for (const T of [EllipticalROITool, RectangleROITool, PlanarFreehandROITool, WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) {
    csTools.addTool(T);
  }
  toolGroup = ToolGroupManager.createToolGroup("vbq-tools");
  const label = { getTextLines: (data) => (data.label ? [data.label] : []) };
  toolGroup.addTool(EllipticalROITool.toolName, { ...label, centerPointRadius: 0 });
  toolGroup.addTool(RectangleROITool.toolName, label);
  toolGroup.addTool(PlanarFreehandROITool.toolName, { ...label, allowOpenContours: false, calculateStats: true });
  toolGroup.addTool(WindowLevelTool.toolName);
  toolGroup.addTool(PanTool.toolName);
  toolGroup.addTool(ZoomTool.toolName);
  toolGroup.addTool(StackScrollTool.toolName);
  toolGroup.addViewport(VIEWPORT_ID, "vbq-engine");
  toolGroup.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  toolGroup.setToolActive(PanTool.toolName, {
    bindings: [{ mouseButton: MouseBindings.Auxiliary }, { mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Shift }],
  });
  toolGroup.setToolActive(ZoomTool.toolName, {
    bindings: [{ mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Ctrl }],
  });
  toolGroup.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  selectTool("ellipse");

  eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_COMPLETED, (evt) => onAnnotation(evt.detail.annotation, true));
  eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_MODIFIED, (evt) => onAnnotation(evt.detail.annotation, false));
  eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_REMOVED, (evt) => onRemoved(evt.detail.annotation));
}

function selectTool(name) {
  state.tool = name;
  for (const [key, T] of Object.entries(TOOLS)) {
    if (!state.writable) toolGroup.setToolEnabled(T.toolName);
    else if (key === name) toolGroup.setToolActive(T.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
    else toolGroup.setToolPassive(T.toolName);
  }
  document.querySelectorAll("[data-tool]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === name)));
}

// --- annotations <-> protocol ------------------------------------------------------------------

function itemOf(annotation) {
  return state.byImageId.get(annotation.metadata?.referencedImageId);
}

function specFromAnnotation(annotation) {
  const item = itemOf(annotation);
  if (!item) return null;
  const shape = ser.shapeFromAnnotation(item.geometry, annotation.metadata.toolName, annotation.data);
  return { sop_instance_uid: item.sop, ...shape };
}

function onAnnotation(annotation, completed) {
  if (quiet || !ROI_TOOL_NAMES.has(annotation.metadata?.toolName)) return;
  const uid = annotation.annotationUID;
  if (!state.writable) return;
  let label = state.annotationLabel.get(uid);
  if (!label && !completed) return; // still being drawn
  let roi;
  try {
    roi = specFromAnnotation(annotation);
  } catch {
    roi = null;
  }
  if (!roi || (roi.shape === "polygon" && roi.points.length < 3)) {
    if (completed && !label) removeAnnotation(uid);
    return;
  }
  if (!label) {
    label = protocol.current;
    state.annotationLabel.set(uid, label);
    annotation.data.label = label;
    styleAnnotation(uid, label);
    for (const old of protocol.setRoi(label, uid, roi)) removeAnnotation(old.id);
    const next = protocol.nextOpen(label);
    if (next) protocol.select(next);
  } else {
    protocol.setRoi(label, uid, roi);
  }
  changed([label]);
}

function onRemoved(annotation) {
  if (quiet) return;
  const uid = annotation.annotationUID;
  const label = state.annotationLabel.get(uid);
  if (!label) return;
  state.annotationLabel.delete(uid);
  protocol.removeRoi(uid);
  changed([label]);
}

function removeAnnotation(uid) {
  quiet++;
  try {
    annotationApi.state.removeAnnotation(uid);
  } finally {
    quiet--;
  }
  state.annotationLabel.delete(uid);
}

function styleAnnotation(uid, label) {
  try {
    const c = COLORS[label];
    annotationApi.config.style.setAnnotationStyles(uid, {
      color: c,
      colorHighlighted: "#ffffff",
      colorSelected: c,
      colorLocked: c,
      lineWidth: "2",
      textBoxColor: c,
      textBoxColorHighlighted: "#ffffff",
      textBoxColorSelected: c,
      textBoxColorLocked: c,
      textBoxFontSize: "15px",
    });
  } catch {
    /* styling is cosmetic */
  }
}

/** Draw a spec ROI as a Cornerstone annotation; returns its UID. */
function addAnnotationFor(label, roi) {
  const item = state.bySop.get(roi.sop_instance_uid);
  if (!item) return null;
  const drawn = ser.annotationFromShape(item.geometry, roi);
  const camera = viewport.getCamera();
  const uid = crypto.randomUUID();
  const data =
    drawn.toolName === "PlanarFreehandROI"
      ? { contour: { polyline: drawn.polyline, closed: true }, handles: { points: [], activeHandleIndex: null, textBox: textBox() }, label, cachedStats: {} }
      : { handles: { points: drawn.handles, activeHandleIndex: null, textBox: textBox() }, label, cachedStats: {} };
  const annotation = {
    annotationUID: uid,
    highlighted: false,
    invalidated: true,
    isLocked: !state.writable,
    isVisible: true,
    metadata: {
      toolName: drawn.toolName,
      referencedImageId: item.imageId,
      FrameOfReferenceUID: viewport.getFrameOfReferenceUID(),
      viewPlaneNormal: [...camera.viewPlaneNormal],
      viewUp: [...camera.viewUp],
    },
    data,
  };
  quiet++;
  try {
    annotationApi.state.addAnnotation(annotation, element);
  } finally {
    quiet--;
  }
  state.annotationLabel.set(uid, label);
  styleAnnotation(uid, label);
  return uid;
}

function textBox() {
  return { hasMoved: false, worldPosition: [0, 0, 0], worldBoundingBox: { topLeft: [0, 0, 0], topRight: [0, 0, 0], bottomLeft: [0, 0, 0], bottomRight: [0, 0, 0] } };
}

function drawSavedRois() {
  for (const [label, list] of protocol.rois) {
    for (const roi of [...list]) {
      const { id, ...spec } = roi;
      const uid = addAnnotationFor(label, spec);
      if (uid) {
        protocol.removeRoi(id);
        protocol.rois.get(label).push({ id: uid, ...spec });
      }
    }
  }
  rerender();
}

function rerender() {
  csTools.utilities.triggerAnnotationRenderForViewportIds([VIEWPORT_ID]);
}

/** Replace the current level's ROI with `roi` (keyboard placement and nudging). */
function replaceCurrentRoi(roi) {
  const label = protocol.current;
  for (const old of protocol.clear(label)) removeAnnotation(old.id);
  const uid = addAnnotationFor(label, roi);
  protocol.setRoi(label, uid, roi);
  rerender();
  changed([label]);
}

// --- preview statistics ------------------------------------------------------------------------

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
  for (const label of LABELS) refreshPreview(label);
}

// --- changes, autosave, submit, score ----------------------------------------------------------

let previewFrame = null;
const pendingLabels = new Set();

function changed(labels) {
  labels.forEach((l) => pendingLabels.add(l));
  if (previewFrame === null) {
    previewFrame = requestAnimationFrame(() => {
      previewFrame = null;
      const todo = [...pendingLabels];
      pendingLabels.clear();
      todo.forEach(refreshPreview);
    });
  }
  renderPanel();
  scheduleSave();
}

function scheduleSave() {
  if (!state.writable) return;
  clearTimeout(state.saveTimer);
  setSaveState("pending", "Unsaved changes…");
  state.saveTimer = setTimeout(() => saveNow(), SAVE_DELAY_MS);
}

async function saveNow() {
  clearTimeout(state.saveTimer);
  if (!state.writable) return true;
  if (state.saving) {
    await state.saving.catch(() => {});
  }
  const doc = protocol.toJson();
  const body = JSON.stringify(doc);
  if (body === state.savedJson) {
    setSaveState("saved", `Saved · version ${state.lastVersion}`);
    return true;
  }
  setSaveState("saving", "Saving…");
  state.saving = postJson(config.urls.save, body);
  try {
    const { ok, status, payload } = await state.saving;
    if (!ok) {
      setSaveState("error", `Not saved: ${payload.error || `HTTP ${status}`}`);
      if (status === 403) becomeReadOnly();
      return false;
    }
    state.savedJson = body;
    state.lastVersion = payload.roi_version;
    pollScore(payload.roi_version);
    // Changes made while this save was in flight have their own save scheduled.
    if (JSON.stringify(protocol.toJson()) !== body) setSaveState("pending", "Unsaved changes…");
    else setSaveState("saved", `Saved · version ${payload.roi_version}`);
    return true;
  } catch (error) {
    setSaveState("error", `Not saved: ${error.message || error} (retrying)`);
    state.saveTimer = setTimeout(() => saveNow(), 3000);
    return false;
  } finally {
    state.saving = null;
  }
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrf_token, Accept: "application/json" },
    body,
  });
  let payload = {};
  try {
    payload = await response.json();
  } catch {
    /* an HTML error page */
  }
  return { ok: response.ok, status: response.status, payload };
}

async function submit() {
  const missing = protocol.missing();
  if (missing.length) {
    setStatus(`Not yet measured or excluded: ${missing.join(", ")}.`, true);
    return;
  }
  setStatus("Submitting…");
  if (!(await saveNow())) {
    setStatus("Not submitted: the ROIs could not be saved.", true);
    return;
  }
  const { ok, payload, status } = await postJson(config.urls.submit, "{}");
  if (!ok) {
    setStatus(`Not submitted: ${payload.error || `HTTP ${status}`}`, true);
    return;
  }
  state.locked = true;
  becomeReadOnly();
  $("reading-status").textContent = "Submitted";
  $("reading-status").className = "status submitted";
  setStatus("Submitted. The reading is locked.");
  pollScore(state.lastVersion);
}

function becomeReadOnly() {
  state.writable = false;
  selectTool(state.tool);
  for (const uid of state.annotationLabel.keys()) {
    try {
      annotationApi.locking.setAnnotationLocked(uid, true);
    } catch {
      /* older API */
    }
  }
  document.body.classList.add("viewer-readonly");
  renderPanel();
}

let pollToken = 0;
async function pollScore(version) {
  const token = ++pollToken;
  let delay = 300;
  renderScore({ status: "pending" });
  for (;;) {
    if (token !== pollToken) return;
    try {
      const response = await fetch(config.urls.score, { credentials: "same-origin" });
      if (response.ok) {
        const payload = await response.json();
        if (token !== pollToken) return;
        if (payload.status !== "pending" && payload.roi_version >= version) {
          state.score = payload;
          renderScore(payload);
          renderPanel();
          return;
        }
      }
    } catch {
      /* offline for a moment: keep polling */
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 1.5, 4000);
  }
}

// --- view: slices, window/level, zoom ----------------------------------------------------------

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
  const voi = viewport.getProperties().voiRange;
  if (voi) {
    const width = voi.upper - voi.lower;
    $("wl-indicator").textContent = `W ${Math.round(width)} · L ${Math.round(voi.lower + width / 2)}`;
  }
  renderPanel();
}

/** The image point at the centre of the view, in spec coordinates. */
function viewCentre() {
  const item = state.items[viewport.getCurrentImageIdIndex()];
  const { width, height } = element.getBoundingClientRect();
  const world = viewport.canvasToWorld([width / 2, height / 2]);
  return { item, point: ser.worldToImage(item.geometry, world) };
}

function placeDefaultRoi() {
  const { item, point } = viewCentre();
  const size = protocol.current === "CSF" ? DEFAULT_SIZE_MM.CSF : DEFAULT_SIZE_MM.bone;
  const shape = ser.defaultShape(state.tool, item.geometry, point, size);
  replaceCurrentRoi({ sop_instance_uid: item.sop, ...shape });
  return protocol.current;
}

function adjustCurrentRoi(transform) {
  const list = protocol.rois.get(protocol.current);
  if (list.length !== 1) return;
  const { id, sop_instance_uid, ...shape } = list[0];
  replaceCurrentRoi({ sop_instance_uid, ...transform(shape) });
  goToSop(sop_instance_uid);
}

// --- levels: select, exclude, remove -----------------------------------------------------------

function selectLevel(label) {
  protocol.select(label);
  const first = protocol.rois.get(label)[0];
  if (first) goToSop(first.sop_instance_uid);
  renderPanel();
}

function removeCurrent() {
  const label = protocol.current;
  for (const old of protocol.clear(label)) removeAnnotation(old.id);
  rerender();
  changed([label]);
}

function openExcludeDialog() {
  if (protocol.current === "CSF") {
    setStatus("The CSF cannot be excluded: the score needs a CSF ROI.", true);
    return;
  }
  const dialog = $("exclude-dialog");
  $("exclude-level").textContent = protocol.current;
  const existing = protocol.exclusions.get(protocol.current);
  $("exclude-reason").value = existing?.reason ?? REASONS[0];
  $("exclude-note").value = existing?.note ?? "";
  dialog.showModal();
  $("exclude-reason").focus();
}

function confirmExclusion() {
  const label = protocol.current;
  for (const old of protocol.exclude(label, $("exclude-reason").value, $("exclude-note").value)) removeAnnotation(old.id);
  rerender();
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
  $("submit-summary").textContent = LABELS.map((l) => `${l}: ${protocol.status(l) === "excluded" ? `excluded (${protocol.exclusions.get(l).reason})` : "measured"}`).join(" · ");
  $("submit-dialog").showModal();
  $("submit-confirm").focus();
}

// --- DOM ---------------------------------------------------------------------------------------

function wireUi() {
  document.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => selectTool(b.dataset.tool)));
  $("wl-preset").addEventListener("change", (e) => applyPreset(Number(e.target.value)));
  $("zoom-in").addEventListener("click", () => zoom(1.25));
  $("zoom-out").addEventListener("click", () => zoom(0.8));
  $("reset-view").addEventListener("click", resetView);
  $("exclude-button").addEventListener("click", openExcludeDialog);
  $("remove-button").addEventListener("click", removeCurrent);
  $("submit-button").addEventListener("click", openSubmitDialog);
  $("exclude-form").addEventListener("submit", (e) => {
    if (e.submitter?.value === "cancel") return;
    confirmExclusion();
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
    confirmExclusion();
    $("exclude-dialog").close();
  });
  $("submit-form").addEventListener("submit", (e) => {
    if (e.submitter?.value !== "cancel") submit();
  });
  const csfSelect = $("csf-level");
  const csfOther = $("csf-other");
  const known = CSF_LEVELS.includes(protocol.csfLevel);
  csfSelect.value = known ? protocol.csfLevel : "other";
  csfOther.hidden = known;
  csfOther.value = known ? "" : protocol.csfLevel;
  csfSelect.addEventListener("change", () => {
    csfOther.hidden = csfSelect.value !== "other";
    if (csfSelect.value !== "other") {
      protocol.setCsfLevel(csfSelect.value);
      changed(["CSF"]);
    } else csfOther.focus();
  });
  csfOther.addEventListener("change", () => {
    const value = csfOther.value.trim().toUpperCase();
    if (!isVertebralLevel(value)) {
      setStatus(`${value || "(empty)"} is not a vertebral level such as L2, L3 or L4.`, true);
      return;
    }
    protocol.setCsfLevel(value);
    changed(["CSF"]);
  });
  $("levels").addEventListener("click", (e) => {
    const row = e.target.closest("[data-label]");
    if (row) selectLevel(row.dataset.label);
  });
  csfSelect.disabled = csfOther.disabled = !state.writable;
  window.addEventListener("keydown", onKey);
  element.focus({ preventScroll: true });
  window.addEventListener("beforeunload", (e) => {
    if (state.writable && JSON.stringify(protocol.toJson()) !== state.savedJson) {
      saveNow();
      e.preventDefault();
    }
  });
}

function onKey(e) {
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
    adjustCurrentRoi((shape) => ser.translateShape(shape, dx, dy));
    return handled();
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (["1", "2", "3", "4"].includes(key)) return handled(selectLevel(`L${key}`));
  switch (key.length === 1 ? key.toLowerCase() : key) {
    case "c":
      return handled(selectLevel("CSF"));
    case "ArrowUp":
    case "ArrowLeft":
    case "PageUp":
      return handled(scrollBy(-1));
    case "ArrowDown":
    case "ArrowRight":
    case "PageDown":
      return handled(scrollBy(1));
    case "Home":
      return handled(viewport.setImageIdIndex(0));
    case "End":
      return handled(viewport.setImageIdIndex(state.items.length - 1));
    case "m":
      return handled(viewport.setImageIdIndex(midsagittalIndex(state.items)));
    case "+":
    case "=":
      return handled(zoom(1.25));
    case "-":
      return handled(zoom(0.8));
    case "r":
      return handled(resetView());
    case "w":
      return handled(applyPreset(state.presetIndex + 1));
    case "?":
      $("viewer-help").open = !$("viewer-help").open;
      return handled();
  }
  if (!edit) return;
  switch (key.length === 1 ? key.toLowerCase() : key) {
    case "o":
      return handled(selectTool("ellipse"));
    case "b":
      return handled(selectTool("rectangle"));
    case "f":
      return handled(selectTool("freehand"));
    case "p":
      return handled(placeDefaultRoi());
    case "[":
      return handled(adjustCurrentRoi((shape) => ser.growShape(shape, -1)));
    case "]":
      return handled(adjustCurrentRoi((shape) => ser.growShape(shape, 1)));
    case "e":
      return handled(openExcludeDialog());
    case "Delete":
    case "Backspace":
      return handled(removeCurrent());
    case "Enter":
      return handled(openSubmitDialog());
  }
}

const fmt = (v, digits = 1) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "—");

function renderPanel() {
  const list = $("levels");
  if (!list) return;
  const currentIndex = viewport?.getCurrentImageIdIndex?.() ?? -1;
  const serverLevels = state.score?.status === "ok" || state.score?.status === "not_computed" ? state.score.detail : null;
  const rows = LABELS.map((label) => {
    const status = protocol.status(label);
    const preview = state.preview.get(label);
    const li = document.createElement("li");
    li.dataset.label = label;
    li.className = `level ${status}${protocol.current === label && state.writable ? " current" : ""}`;
    li.style.setProperty("--level-color", COLORS[label]);
    const key = label === "CSF" ? "C" : label.slice(1);
    const head = document.createElement("div");
    head.className = "level-head";
    const name = label === "CSF" ? `CSF (${protocol.csfLevel})` : label;
    const rois = protocol.rois.get(label);
    const where = rois
      .map((r) => state.items.findIndex((i) => i.sop === r.sop_instance_uid))
      .filter((k) => k >= 0)
      .map((k) => `slice ${k + 1}${k === currentIndex ? "" : " ↗"}`);
    const statusText =
      status === "excluded"
        ? `excluded: ${protocol.exclusions.get(label).reason}`
        : status === "measured"
          ? `${rois[0].shape}${rois.length > 1 ? ` ×${rois.length}` : ""} · ${where.join(", ")}`
          : "to do";
    head.innerHTML = `<kbd>${key}</kbd><strong>${name}</strong><span class="level-status">${statusText}</span>`;
    li.append(head);
    if (status === "measured") {
      const stats = document.createElement("div");
      stats.className = "level-stats";
      if (!preview || preview.pending) stats.textContent = "computing preview…";
      else if (preview.error) {
        stats.textContent = preview.error;
        stats.classList.add("error");
      } else {
        stats.innerHTML = `n <b>${preview.n_pixels}</b> · median <b>${fmt(preview.median)}</b> · mean ${fmt(preview.mean)}`;
        const server = serverLevels && (label === "CSF" ? serverLevels.csf : serverLevels.levels?.[label]);
        if (server && !server.excluded && JSON.stringify(protocol.toJson()) === state.savedJson) {
          const agree = server.n_pixels === preview.n_pixels && server.median === preview.median;
          const title = `server: n ${server.n_pixels}, median ${server.median}`;
          stats.innerHTML += ` <span class="${agree ? "agree" : "error"}" title="${title}">${agree ? "✓ server" : "≠ server"}</span>`;
        }
      }
      li.append(stats);
    }
    return li;
  });
  list.replaceChildren(...rows);
  const missing = protocol.missing();
  $("submit-button").disabled = !state.writable || missing.length > 0;
  $("submit-button").title = missing.length ? `To do: ${missing.join(", ")}` : "Submit (Enter)";
  $("exclude-button").disabled = $("remove-button").disabled = !state.writable;
  $("current-level").textContent = state.writable ? `Now: ${protocol.current}` : "";
  document.body.dataset.roiJson = JSON.stringify(protocol.toJson());
}

function renderScore(payload) {
  const body = $("score-body");
  const p = (cls, text) => Object.assign(document.createElement("p"), { className: cls, textContent: text });
  if (payload.status === "pending") body.replaceChildren(p("pending", "Server score: computing…"));
  else if (payload.status === "empty") body.replaceChildren(p("muted", "No ROIs saved yet."));
  else if (payload.status === "ok") {
    const big = p("big", payload.vbq.toFixed(3));
    big.id = "server-vbq";
    const m = payload.detail.method;
    body.replaceChildren(big, p("muted small", `${m.roi_statistic} SI, ${m.level_aggregate} of levels · ROI version ${payload.roi_version}`));
  } else if (payload.status === "not_computed") body.replaceChildren(p("error", `Not computed: ${payload.message}`));
  else body.replaceChildren(p("error", `Error: ${payload.message}`));
  body.dataset.status = payload.status;
}

function setSaveState(kind, text) {
  const el = $("save-state");
  el.textContent = text;
  el.dataset.state = kind;
}

function setStatus(text, isError = false) {
  const el = $("viewer-status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// --- for tests and benchmarks (no effect on the page) ------------------------------------------

window.vbqViewer = {
  get firstImageAt() {
    return state.firstImageAt;
  },
  roiJson: () => protocol.toJson(),
  preview: () => Object.fromEntries([...state.preview].map(([k, v]) => [k, { ...v }])),
  score: () => state.score,
  saveState: () => $("save-state").dataset.state,
  version: () => state.lastVersion,
  currentIndex: () => viewport.getCurrentImageIdIndex(),
  sopAt: (index) => state.items[index]?.sop,
  indexOf: (sop) => state.items.findIndex((i) => i.sop === sop),
  goTo: (index) => viewport.setImageIdIndex(index),
  /** Page (CSS pixel) position of spec image point (x, y) on the displayed slice. */
  imageToPage(x, y) {
    const item = state.items[viewport.getCurrentImageIdIndex()];
    const [cx, cy] = viewport.worldToCanvas(ser.imageToWorld(item.geometry, [x, y]));
    const rect = element.getBoundingClientRect();
    return [rect.left + cx, rect.top + cy];
  },
  /** Cornerstone's own statistics of a level's annotation (count and median), if computed. */
  cornerstoneStats(label) {
    const uid = [...state.annotationLabel].find(([, l]) => l === label)?.[0];
    const ann = uid && annotationApi.state.getAnnotation(uid);
    const stats = ann && Object.values(ann.data.cachedStats || {})[0];
    if (!stats) return null;
    const named = Object.fromEntries((stats.statsArray || []).map((s) => [s.name, s.value]));
    return { count: named.count ?? stats.count ?? null, median: named.median ?? stats.median ?? null, mean: stats.mean };
  },
  flush: () => saveNow(),
};

start().catch((error) => {
  console.error(error);
  setStatus(`The viewer could not start: ${error.message || error}`, true);
  document.body.dataset.viewerError = String(error.message || error);
});

// Cornerstone3D set-up: the core, the tools and the DICOM image loader (its decode worker and
// codecs), the rendering engine with its one stack viewport, and the tool group with its mouse
// bindings. Separate because it is the one module that knows how Cornerstone is initialised and
// wired (facts: ../shared/CORNERSTONE.md, docs/viewer.md); it holds no state of its own: what it
// creates is returned to the caller.
import {
  Enums as CoreEnums,
  RenderingEngine,
  cache,
  eventTarget,
  getWebWorkerManager,
  init as coreInit,
} from "@cornerstonejs/core";
import * as csTools from "@cornerstonejs/tools";
import dicomImageLoader from "@cornerstonejs/dicom-image-loader";

const {
  ToolGroupManager,
  EllipticalROITool,
  RectangleROITool,
  PlanarFreehandROITool,
  WindowLevelTool,
  PanTool,
  ZoomTool,
  StackScrollTool,
  Enums: ToolEnums,
} = csTools;
const { MouseBindings, KeyboardBindings } = ToolEnums;

export const TOOLS = { ellipse: EllipticalROITool, rectangle: RectangleROITool, freehand: PlanarFreehandROITool };
export const ROI_TOOL_NAMES = new Set(Object.values(TOOLS).map((T) => T.toolName));
export const VIEWPORT_ID = "vbq-stack";

/** Initialise the core, the tools and the image loader (worker at `urls.worker`, codecs at `urls.wasm`). */
export async function initCornerstone(urls) {
  await coreInit();
  csTools.init();
  // 5.14 has no webWorkerFactory: register the worker under its static URL before init().
  getWebWorkerManager().registerWorker(
    "dicomImageLoader",
    () => new Worker(urls.worker, { type: "module" }),
    { maxWorkerInstances: Math.max(1, Math.min(2, Math.floor((navigator.hardwareConcurrency || 2) / 2))) },
  );
  dicomImageLoader.init({ wasmBasePath: urls.wasm, maxWebWorkers: 2 });
}

/** Give the loader each instance's WADO-RS header, so that it asks for no metadata itself. */
export function addInstanceMetadata(items) {
  for (const item of items) dicomImageLoader.wadors.metaDataManager.add(item.imageId, item.json);
}

/** The rendering engine and its stack viewport on `element` (resized with the element). */
export function createViewport(element) {
  const engine = new RenderingEngine("vbq-engine");
  engine.enableElement({ viewportId: VIEWPORT_ID, type: CoreEnums.ViewportType.STACK, element });
  new ResizeObserver(() => engine.resize(true, true)).observe(element);
  return engine.getViewport(VIEWPORT_ID);
}

/** Listen to the viewport: `rendered` on every render, `changed` when the slice or the VOI changes. */
export function onViewportEvents(element, { rendered, changed }) {
  element.addEventListener(CoreEnums.Events.IMAGE_RENDERED, rendered);
  element.addEventListener(CoreEnums.Events.STACK_NEW_IMAGE, changed);
  element.addEventListener(CoreEnums.Events.VOI_MODIFIED, changed);
}

/** The tool group of the viewport: ROI tools, window/level (right), pan (middle, Shift+left),
 *  zoom (Ctrl+left), stack scroll (wheel). The ROI tools' modes are set by `setRoiTool`. */
export function setUpTools() {
  for (const T of [EllipticalROITool, RectangleROITool, PlanarFreehandROITool, WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) {
    csTools.addTool(T);
  }
  const toolGroup = ToolGroupManager.createToolGroup("vbq-tools");
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
  return toolGroup;
}

/** The ROI tool `name` draws with the left button; the others only edit (all only show when read-only). */
export function setRoiTool(toolGroup, name, writable) {
  for (const [key, T] of Object.entries(TOOLS)) {
    if (!writable) toolGroup.setToolEnabled(T.toolName);
    else if (key === name) toolGroup.setToolActive(T.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
    else toolGroup.setToolPassive(T.toolName);
  }
}

/** Listen to annotations drawn (`completed`), edited (`modified`) and removed (`removed`). */
export function onAnnotationEvents({ completed, modified, removed }) {
  eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_COMPLETED, (evt) => completed(evt.detail.annotation));
  eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_MODIFIED, (evt) => modified(evt.detail.annotation));
  eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_REMOVED, (evt) => removed(evt.detail.annotation));
}

/** Redraw the annotations of the viewport. */
export function renderAnnotations() {
  csTools.utilities.triggerAnnotationRenderForViewportIds([VIEWPORT_ID]);
}

/** Fetch and decode the whole series in the background once the first image is shown, nearest
 *  slices first (Cornerstone's stack prefetch, with no limit): scrolling then never waits for
 *  the network. The frames are cached privately by the browser too (docs/viewer.md). */
export function prefetchSeries(element) {
  csTools.utilities.stackPrefetch.setConfiguration({ maxImagesToPrefetch: Infinity, preserveExistingPool: true });
  csTools.utilities.stackPrefetch.enable(element);
}

/** How many of `imageIds` are decoded in Cornerstone's cache (tests: the prefetch's progress). */
export function cachedImageCount(imageIds) {
  return imageIds.filter((id) => cache.isLoaded(id)).length;
}

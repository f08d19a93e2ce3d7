// Cornerstone3D tools: the tool group with its mouse bindings, the ROI tools, annotation events
// and the series prefetch. Separate from cornerstone.js because the first image needs none of
// it: the viewer imports this module (and Cornerstone's tools, about a quarter of the code) by
// dynamic import once the image is shown (issue 15 item 4). The tools may therefore start after
// the viewport exists; `setUpTools` enables them on it then.
import * as csTools from "@cornerstonejs/tools";
import { eventTarget, getRenderingEngine } from "@cornerstonejs/core";
import { ENGINE_ID, VIEWPORT_ID } from "./cornerstone.js";

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

/** Start the tools. They attach to viewports as these are enabled (ELEMENT_ENABLED); a viewport
 *  enabled before (the first image came first) is attached here, as that event would have. */
function initTools() {
  csTools.init();
  const viewport = getRenderingEngine(ENGINE_ID)?.getViewport(VIEWPORT_ID);
  if (viewport && !csTools.store.state.enabledElements.includes(viewport.element)) {
    csTools.store.addEnabledElement({
      detail: { element: viewport.element, viewportId: VIEWPORT_ID, renderingEngineId: ENGINE_ID },
    });
  }
}

/** The tool group of the viewport: ROI tools, window/level (right), pan (middle, Shift+left),
 *  zoom (Ctrl+left), stack scroll (wheel). The ROI tools' modes are set by `setRoiTool`. */
export function setUpTools() {
  initTools();
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
  toolGroup.addViewport(VIEWPORT_ID, ENGINE_ID);
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

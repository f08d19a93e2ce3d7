// The bridge between Cornerstone's annotations and our ROI model (protocol.js, roi/serialize.js):
// an annotation drawn or edited becomes a spec ROI on a level of the protocol, a saved ROI is
// drawn as an annotation, and each annotation's level is remembered (`state.annotationLabel`).
// Separate because it is the one module that knows Cornerstone's annotation data model; the
// rest of the viewer speaks spec ROIs only.
import { annotation as annotationApi } from "@cornerstonejs/tools";

import { ROI_TOOL_NAMES, renderAnnotations } from "./tools.js";
import * as ser from "./roi/serialize.js";

/**
 * @param state     the viewer's state (items by SOP UID and image id, annotationLabel, writable)
 * @param protocol  the Protocol the ROIs go to
 * @param viewport  the stack viewport, element its DOM element
 * @param colors    label -> colour
 * @param changed   called with the labels whose ROIs changed
 */
export function createAnnotationBridge({ state, protocol, viewport, element, colors, changed }) {
  let quiet = 0; // >0 while the viewer itself adds or removes annotations

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
      const c = colors[label];
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
    renderAnnotations();
  }

  /** Replace the current level's ROI with `roi` (keyboard placement and nudging). */
  function replaceCurrentRoi(roi) {
    const label = protocol.current;
    for (const old of protocol.clear(label)) removeAnnotation(old.id);
    const uid = addAnnotationFor(label, roi);
    protocol.setRoi(label, uid, roi);
    renderAnnotations();
    changed([label]);
  }

  /** Lock every annotation (the reading turned read-only). */
  function lockAll() {
    for (const uid of state.annotationLabel.keys()) {
      try {
        annotationApi.locking.setAnnotationLocked(uid, true);
      } catch {
        /* older API */
      }
    }
  }

  /** Cornerstone's own statistics of a level's annotation (count and median), if computed. */
  function cornerstoneStats(label) {
    const uid = [...state.annotationLabel].find(([, l]) => l === label)?.[0];
    const ann = uid && annotationApi.state.getAnnotation(uid);
    const stats = ann && Object.values(ann.data.cachedStats || {})[0];
    if (!stats) return null;
    const named = Object.fromEntries((stats.statsArray || []).map((s) => [s.name, s.value]));
    return { count: named.count ?? stats.count ?? null, median: named.median ?? stats.median ?? null, mean: stats.mean };
  }

  return { onAnnotation, onRemoved, removeAnnotation, drawSavedRois, replaceCurrentRoi, lockAll, cornerstoneStats };
}

function textBox() {
  return { hasMoved: false, worldPosition: [0, 0, 0], worldBoundingBox: { topLeft: [0, 0, 0], topRight: [0, 0, 0], bottomLeft: [0, 0, 0], bottomRight: [0, 0, 0] } };
}

// serialize.js: Cornerstone world points <-> spec vbq.rois/1 shapes, with the half-pixel shift.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  annotationFromShape,
  defaultShape,
  ellipseFromWorld,
  fromCornerstoneImage,
  geometryFromDicomJson,
  imageToWorld,
  makeGeometry,
  polygonFromWorld,
  rectangleFromWorld,
  shapeFromAnnotation,
  toCornerstoneImage,
  translateShape,
  worldToImage,
} from "./serialize.js";

// The phantom's sagittal geometry: rows go down (-z), columns go anterior (+y).
const sagittal = makeGeometry({
  rows: 256,
  columns: 256,
  pixelSpacing: [1.2, 1.2],
  imagePosition: [3.5, -150, 120],
  imageOrientation: [0, 1, 0, 0, 0, -1],
});
// Flipped rows and oblique (rotated 20° about the left-right axis), non-square pixels.
const c = Math.cos((20 * Math.PI) / 180);
const s = Math.sin((20 * Math.PI) / 180);
const oblique = makeGeometry({
  rows: 200,
  columns: 180,
  pixelSpacing: [0.9, 1.1],
  imagePosition: [-2, 80, -40],
  imageOrientation: [0, -c, s, 0, -s, -c],
});

const close = (a, b, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test("image -> world follows spec §2 and world -> image inverts it", () => {
  for (const g of [sagittal, oblique]) {
    const w = imageToWorld(g, [0, 0]);
    assert.deepEqual(w, g.imagePosition);
    const p = imageToWorld(g, [10, 0]);
    close(Math.hypot(p[0] - w[0], p[1] - w[1], p[2] - w[2]), 10 * g.pixelSpacing[1]);
    const q = imageToWorld(g, [0, 10]);
    close(Math.hypot(q[0] - w[0], q[1] - w[1], q[2] - w[2]), 10 * g.pixelSpacing[0]);
    for (const pt of [[12.25, 40.5], [-0.5, -0.5], [179.5, 199.5]]) {
      const back = worldToImage(g, imageToWorld(g, pt));
      close(back[0], pt[0]);
      close(back[1], pt[1]);
    }
  }
});

test("the first pixel's centre is (0, 0) here and (0.5, 0.5) in Cornerstone", () => {
  assert.deepEqual(fromCornerstoneImage([0.5, 0.5]), [0, 0]);
  assert.deepEqual(toCornerstoneImage([0, 0]), [0.5, 0.5]);
  // Cornerstone 5.14's worldToImageCoords, transcribed: origin moved half a pixel back.
  const g = sagittal;
  const corner = imageToWorld(g, [-0.5, -0.5]);
  const world = imageToWorld(g, [7, 9]);
  const rel = world.map((v, i) => v - corner[i]);
  const cs = [
    (rel[0] * g.rowDirection[0] + rel[1] * g.rowDirection[1] + rel[2] * g.rowDirection[2]) / g.pixelSpacing[0],
    (rel[0] * g.columnDirection[0] + rel[1] * g.columnDirection[1] + rel[2] * g.columnDirection[2]) / g.pixelSpacing[1],
  ];
  const ours = fromCornerstoneImage(cs);
  close(ours[0], 7);
  close(ours[1], 9);
});

test("a DICOM JSON header gives the geometry", () => {
  const g = geometryFromDicomJson({
    "00280010": { vr: "US", Value: [256] },
    "00280011": { vr: "US", Value: [128] },
    "00280030": { vr: "DS", Value: [0.5, 0.7] },
    "00200032": { vr: "DS", Value: [1, 2, 3] },
    "00200037": { vr: "DS", Value: [1, 0, 0, 0, 1, 0] },
  });
  assert.equal(g.rows, 256);
  assert.equal(g.columns, 128);
  assert.deepEqual(g.pixelSpacing, [0.5, 0.7]);
  assert.deepEqual(g.normal, [0, 0, 1]);
  assert.throws(() => geometryFromDicomJson({}));
});

test("ellipses survive world and back, on straight, flipped and oblique images", () => {
  for (const g of [sagittal, oblique]) {
    for (const angle of [0, 30, -45, 90]) {
      const roi = { shape: "ellipse", center: [60.25, 80.5], radii: [9.5, 6.25], angle_deg: angle };
      const { toolName, handles } = annotationFromShape(g, roi);
      assert.equal(toolName, "EllipticalROI");
      const back = ellipseFromWorld(g, handles);
      assert.deepEqual(back.center, roi.center);
      assert.deepEqual(back.radii, roi.radii);
      close(back.angle_deg, angle === 90 ? 90 : angle, 1e-4);
    }
  }
});

test("an ellipse turned by 180 degrees is normalised into (-90, 90]", () => {
  const roi = { shape: "ellipse", center: [50, 50], radii: [8, 4], angle_deg: 0 };
  const [top, bottom, left, right] = annotationFromShape(sagittal, roi).handles;
  const back = ellipseFromWorld(sagittal, [bottom, top, right, left]);
  assert.equal(back.angle_deg, 0);
  assert.deepEqual(back.radii, [8, 4]);
});

test("rectangles: axis-aligned stays a rectangle (corners in order), rotated becomes a polygon", () => {
  for (const g of [sagittal, oblique]) {
    const roi = { shape: "rectangle", corners: [[10.5, 20], [30, 44.75]] };
    const a = annotationFromShape(g, roi);
    assert.deepEqual(rectangleFromWorld(g, a.handles), roi);
    const swapped = rectangleFromWorld(g, [a.handles[3], a.handles[2], a.handles[1], a.handles[0]]);
    assert.deepEqual(swapped, roi);
  }
  const diamond = [[10, 0], [20, 10], [0, 10], [10, 20]].map((p) => imageToWorld(sagittal, p));
  const poly = rectangleFromWorld(sagittal, diamond);
  assert.equal(poly.shape, "polygon");
  assert.deepEqual(poly.points, [[10, 0], [20, 10], [10, 20], [0, 10]]);
});

test("freehand polylines become polygons without repeated or closing points", () => {
  const pts = [[10, 10], [10, 10], [20, 10], [20, 20.00001], [10, 10]];
  const polyline = pts.map((p) => imageToWorld(oblique, p));
  const roi = polygonFromWorld(oblique, polyline);
  assert.deepEqual(roi, { shape: "polygon", points: [[10, 10], [20, 10], [20, 20]] });
  const a = annotationFromShape(oblique, roi);
  assert.deepEqual(shapeFromAnnotation(oblique, "PlanarFreehandROI", { contour: { polyline: a.polyline } }), roi);
});

test("coordinates are rounded to 1e-4 pixel and never -0", () => {
  const roi = ellipseFromWorld(sagittal, annotationFromShape(sagittal, { shape: "ellipse", center: [1e-7, 3.123456], radii: [2, 2], angle_deg: 0 }).handles);
  assert.deepEqual(roi.center, [0, 3.1235]);
  assert.ok(!Object.is(roi.center[0], -0));
});

test("keyboard helpers move and size shapes in pixels", () => {
  const e = defaultShape("ellipse", sagittal, [100, 120], [12, 6]);
  assert.deepEqual(e, { shape: "ellipse", center: [100, 120], radii: [10, 5], angle_deg: 0 });
  assert.deepEqual(translateShape(e, 1, -2).center, [101, 118]);
  const r = defaultShape("rectangle", sagittal, [100, 120], [6, 6]);
  assert.deepEqual(r.corners, [[95, 115], [105, 125]]);
  const f = defaultShape("freehand", sagittal, [100, 120], [6, 6]);
  assert.equal(f.points.length, 24);
});

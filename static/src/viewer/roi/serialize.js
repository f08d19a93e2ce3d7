// Cornerstone world points <-> spec `vbq.rois/1` shapes, through the image geometry. Pure.
//
// Spec §2: image coordinates are (x, y) = (column, row) with the centre of the first pixel at
// (0, 0), and
//     world = IPP + x · PixelSpacing[1] · IOP[0:3] + y · PixelSpacing[0] · IOP[3:6]
// Cornerstone's world coordinates are DICOM patient coordinates (its vtk image data puts pixel
// centres at IPP + i · spacing), so this module maps world points with the spec's formula
// directly. Cornerstone's own `utilities.worldToImageCoords` instead puts (0, 0) at the first
// pixel's top-left *corner* (its first centre is (0.5, 0.5)), and in 5.14 it also divides the
// row distance by the row spacing, which is wrong for non-square pixels; `fromCornerstoneImage`
// and `toCornerstoneImage` apply the half-pixel shift for code that starts from its numbers.
//
// Coordinates are rounded to 1e-4 pixel: a ten-thousandth of a pixel changes no pixel's
// membership in practice, keeps the JSON short, and the preview statistics are computed from
// the rounded shape (the JSON the server receives), so browser and server count the same pixels.

export const DECIMALS = 4;
const SCALE = 10 ** DECIMALS;

export function round(value) {
  const r = Math.round(value * SCALE) / SCALE;
  return Object.is(r, -0) ? 0 : r;
}

/** The geometry of one image from its DICOM JSON header (WADO-RS metadata). */
export function geometryFromDicomJson(json) {
  const values = (tag) => json[tag]?.Value ?? null;
  const numbers = (tag, n) => {
    const v = values(tag);
    if (!v || v.length !== n) throw new Error(`missing or malformed ${tag}`);
    return v.map(Number);
  };
  return makeGeometry({
    rows: Number(values("00280010")?.[0]),
    columns: Number(values("00280011")?.[0]),
    pixelSpacing: numbers("00280030", 2),
    imagePosition: numbers("00200032", 3),
    imageOrientation: numbers("00200037", 6),
  });
}

/** Validate and freeze a geometry: {rows, columns, pixelSpacing: [row, column] mm, imagePosition,
 *  imageOrientation (row direction then column direction)}. */
export function makeGeometry({ rows, columns, pixelSpacing, imagePosition, imageOrientation }) {
  if (!(rows >= 1 && columns >= 1)) throw new Error("rows and columns must be positive");
  if (!(pixelSpacing[0] > 0 && pixelSpacing[1] > 0)) throw new Error("pixel spacing must be positive");
  const row = imageOrientation.slice(0, 3);
  const col = imageOrientation.slice(3, 6);
  return Object.freeze({
    rows,
    columns,
    pixelSpacing: [...pixelSpacing],
    imagePosition: [...imagePosition],
    rowDirection: row,
    columnDirection: col,
    normal: normalise(cross(row, col)),
  });
}

function cross(a, b) {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}
function dot(a, b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}
function normalise(v) {
  const n = Math.hypot(v[0], v[1], v[2]);
  return [v[0] / n, v[1] / n, v[2] / n];
}

/** World (mm) -> spec image coordinates [x, y] (unrounded), projected onto the image plane. */
export function worldToImage(geometry, world) {
  const p = geometry.imagePosition;
  const rel = [world[0] - p[0], world[1] - p[1], world[2] - p[2]];
  return [
    dot(rel, geometry.rowDirection) / geometry.pixelSpacing[1],
    dot(rel, geometry.columnDirection) / geometry.pixelSpacing[0],
  ];
}

/** Spec image coordinates [x, y] -> world (mm). */
export function imageToWorld(geometry, [x, y]) {
  const sx = x * geometry.pixelSpacing[1];
  const sy = y * geometry.pixelSpacing[0];
  const p = geometry.imagePosition;
  const r = geometry.rowDirection;
  const c = geometry.columnDirection;
  return [p[0] + sx * r[0] + sy * c[0], p[1] + sx * r[1] + sy * c[1], p[2] + sx * r[2] + sy * c[2]];
}

/** Cornerstone image coordinates (origin at the first pixel's corner) -> ours. */
export function fromCornerstoneImage([x, y]) {
  return [x - 0.5, y - 0.5];
}

/** Our image coordinates -> Cornerstone's. */
export function toCornerstoneImage([x, y]) {
  return [x + 0.5, y + 0.5];
}

const roundPoint = ([x, y]) => [round(x), round(y)];

// --- ellipse: Cornerstone's EllipticalROI handles are [top, bottom, left, right] ---------------

/** An EllipticalROI's four world handles -> {shape: "ellipse", center, radii, angle_deg}. */
export function ellipseFromWorld(geometry, handles) {
  const [top, bottom, left, right] = handles.map((p) => worldToImage(geometry, p));
  const center = [(left[0] + right[0] + top[0] + bottom[0]) / 4, (left[1] + right[1] + top[1] + bottom[1]) / 4];
  const a = [(right[0] - left[0]) / 2, (right[1] - left[1]) / 2];
  const b = [(bottom[0] - top[0]) / 2, (bottom[1] - top[1]) / 2];
  let angle = (Math.atan2(a[1], a[0]) * 180) / Math.PI;
  // An ellipse turned by 180° is the same ellipse: keep the angle in (-90, 90].
  if (angle > 90) angle -= 180;
  if (angle <= -90) angle += 180;
  const roundedAngle = Math.abs(angle) < 1e-6 ? 0 : round(angle);
  return {
    shape: "ellipse",
    center: roundPoint(center),
    radii: [round(Math.hypot(a[0], a[1])), round(Math.hypot(b[0], b[1]))],
    angle_deg: roundedAngle,
  };
}

/** A spec ellipse -> EllipticalROI world handles [top, bottom, left, right]. */
export function ellipseToWorld(geometry, roi) {
  const t = (roi.angle_deg ?? 0) * (Math.PI / 180);
  const [cx, cy] = roi.center;
  const [rx, ry] = roi.radii;
  const a = [rx * Math.cos(t), rx * Math.sin(t)];
  const b = [-ry * Math.sin(t), ry * Math.cos(t)];
  const points = [
    [cx - b[0], cy - b[1]],
    [cx + b[0], cy + b[1]],
    [cx - a[0], cy - a[1]],
    [cx + a[0], cy + a[1]],
  ];
  return points.map((p) => imageToWorld(geometry, p));
}

// --- rectangle: Cornerstone's RectangleROI handles are [topLeft, topRight, bottomLeft, bottomRight]

const ALIGNED = 1e-6;

/** A RectangleROI's world handles -> a spec rectangle, or a polygon when it is not aligned with
 *  the image axes (a rotated view), so that the pixels measured are the ones drawn. */
export function rectangleFromWorld(geometry, handles) {
  const pts = handles.map((p) => worldToImage(geometry, p));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const distinct = (vs) => vs.filter((v, i) => vs.findIndex((w) => Math.abs(w - v) < ALIGNED) === i).length;
  if (distinct(xs) <= 2 && distinct(ys) <= 2) {
    return {
      shape: "rectangle",
      corners: [
        [round(Math.min(...xs)), round(Math.min(...ys))],
        [round(Math.max(...xs)), round(Math.max(...ys))],
      ],
    };
  }
  const [tl, tr, bl, br] = pts;
  return { shape: "polygon", points: [tl, tr, br, bl].map(roundPoint) };
}

/** A spec rectangle -> RectangleROI world handles [topLeft, topRight, bottomLeft, bottomRight]. */
export function rectangleToWorld(geometry, roi) {
  const [[x0, y0], [x1, y1]] = roi.corners;
  const [l, r, t, b] = [Math.min(x0, x1), Math.max(x0, x1), Math.min(y0, y1), Math.max(y0, y1)];
  return [
    [l, t],
    [r, t],
    [l, b],
    [r, b],
  ].map((p) => imageToWorld(geometry, p));
}

// --- polygon: PlanarFreehandROI's contour polyline --------------------------------------------

/** A freehand contour (world polyline) -> a spec polygon (consecutive repeats and a repeated
 *  closing point dropped: the spec closes polygons implicitly). */
export function polygonFromWorld(geometry, polyline) {
  const points = [];
  for (const world of polyline) {
    const p = roundPoint(worldToImage(geometry, world));
    const last = points[points.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) points.push(p);
  }
  if (points.length > 1) {
    const [first, last] = [points[0], points[points.length - 1]];
    if (first[0] === last[0] && first[1] === last[1]) points.pop();
  }
  return { shape: "polygon", points };
}

/** A spec polygon -> a world polyline. */
export function polygonToWorld(geometry, roi) {
  return roi.points.map((p) => imageToWorld(geometry, p));
}

// --- whole shapes ------------------------------------------------------------------------------

/** The shape part of a spec ROI (no label, no instance) from a Cornerstone tool's world data. */
export function shapeFromAnnotation(geometry, toolName, data) {
  if (toolName === "EllipticalROI") return ellipseFromWorld(geometry, data.handles.points);
  if (toolName === "RectangleROI") return rectangleFromWorld(geometry, data.handles.points);
  if (toolName === "PlanarFreehandROI") return polygonFromWorld(geometry, data.contour.polyline);
  throw new Error(`not an ROI tool: ${toolName}`);
}

/** The Cornerstone tool and world data that draw a spec shape. */
export function annotationFromShape(geometry, roi) {
  if (roi.shape === "ellipse") {
    return { toolName: "EllipticalROI", handles: ellipseToWorld(geometry, roi) };
  }
  if (roi.shape === "rectangle") {
    return { toolName: "RectangleROI", handles: rectangleToWorld(geometry, roi) };
  }
  if (roi.shape === "polygon") {
    return { toolName: "PlanarFreehandROI", polyline: polygonToWorld(geometry, roi) };
  }
  throw new Error(`unknown shape ${roi.shape}`);
}

/** Move a spec shape by (dx, dy) pixels. */
export function translateShape(roi, dx, dy) {
  const move = ([x, y]) => [round(x + dx), round(y + dy)];
  if (roi.shape === "ellipse") return { ...roi, center: move(roi.center) };
  if (roi.shape === "rectangle") return { ...roi, corners: roi.corners.map(move) };
  return { ...roi, points: roi.points.map(move) };
}

/** Grow (d > 0) or shrink a spec shape by d pixels on every side; never below 1 pixel across. */
export function growShape(roi, d) {
  if (roi.shape === "ellipse") {
    return { ...roi, radii: roi.radii.map((r) => round(Math.max(0.5, r + d))) };
  }
  if (roi.shape === "rectangle") {
    const [[x0, y0], [x1, y1]] = roi.corners;
    const [l, r, t, b] = [Math.min(x0, x1), Math.max(x0, x1), Math.min(y0, y1), Math.max(y0, y1)];
    const dx = Math.max(d, (1 - (r - l)) / 2);
    const dy = Math.max(d, (1 - (b - t)) / 2);
    return { ...roi, corners: [[round(l - dx), round(t - dy)], [round(r + dx), round(b + dy)]] };
  }
  const n = roi.points.length;
  const cx = roi.points.reduce((s, p) => s + p[0], 0) / n;
  const cy = roi.points.reduce((s, p) => s + p[1], 0) / n;
  const size = Math.max(...roi.points.map(([x, y]) => Math.hypot(x - cx, y - cy)));
  const k = Math.max(0.1, (size + d) / size);
  return { ...roi, points: roi.points.map(([x, y]) => [round(cx + (x - cx) * k), round(cy + (y - cy) * k)]) };
}

/** A default shape centred on (x, y): radii in mm become pixels through the spacing. */
export function defaultShape(tool, geometry, [x, y], [rxMm, ryMm]) {
  const rx = rxMm / geometry.pixelSpacing[1];
  const ry = ryMm / geometry.pixelSpacing[0];
  if (tool === "rectangle") {
    return { shape: "rectangle", corners: [[round(x - rx), round(y - ry)], [round(x + rx), round(y + ry)]] };
  }
  if (tool === "freehand") {
    const points = [];
    for (let k = 0; k < 24; k++) {
      const t = (2 * Math.PI * k) / 24;
      points.push([round(x + rx * Math.cos(t)), round(y + ry * Math.sin(t))]);
    }
    return { shape: "polygon", points };
  }
  return { shape: "ellipse", center: [round(x), round(y)], radii: [round(rx), round(ry)], angle_deg: 0 };
}

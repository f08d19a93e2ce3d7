// Which pixels a spec ROI holds, and their statistics: the browser's preview. Pure.
//
// This is `readers/measurement/measure.py` (`roi_mask`, `_statistics`) transcribed operation by operation,
// so that the browser and the server count the same pixels and find the same median, for every
// shape: a pixel belongs to an ROI when its centre (x, y) = (column, row) lies inside the shape
// or on its boundary, within EPS; polygons use the even-odd rule with half-open crossings. The
// order of floating-point operations follows the Python, so that the two agree bit for bit and
// not merely within a tolerance (tested against fixtures written by the Python code).
//
// The mean is a plain sum (numpy sums pairwise), so it may differ from the server's in the last
// digits; the preview shows it rounded. The server recomputes every number that is stored.

export const EPS = 1e-9;

export class RoiMeasureError extends Error {}

/** The tight axis-aligned bounding box [xMin, yMin, xMax, yMax] of a spec shape. */
export function shapeExtent(roi) {
  if (roi.shape === "ellipse") {
    const [cx, cy] = roi.center;
    const [rx, ry] = roi.radii;
    const t = (roi.angle_deg ?? 0) * (Math.PI / 180);
    const c = Math.cos(t);
    const s = Math.sin(t);
    const halfW = Math.hypot(rx * c, ry * s);
    const halfH = Math.hypot(rx * s, ry * c);
    return [cx - halfW, cy - halfH, cx + halfW, cy + halfH];
  }
  if (roi.shape === "rectangle") {
    const [[x0, y0], [x1, y1]] = roi.corners;
    return [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
  }
  const xs = roi.points.map((p) => p[0]);
  const ys = roi.points.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

const fmt = (v) => String(Number(v.toPrecision(6)));

/** The ROI's pixels on a rows x columns image: {r0, c0, height, width, mask (Uint8Array,
 *  row-major over the box)}. Throws RoiMeasureError when it leaves the image or is empty. */
export function roiMask(roi, rows, columns) {
  const [xMin, yMin, xMax, yMax] = shapeExtent(roi);
  const insideX = xMin >= -0.5 - EPS && xMax <= columns - 0.5 + EPS;
  const insideY = yMin >= -0.5 - EPS && yMax <= rows - 0.5 + EPS;
  if (!(insideX && insideY)) {
    throw new RoiMeasureError(
      `the ROI leaves the image: it spans x ${fmt(xMin)} to ${fmt(xMax)} and y ${fmt(yMin)} to ${fmt(yMax)}`,
    );
  }
  const c0 = Math.max(0, Math.ceil(xMin - EPS));
  const c1 = Math.min(columns - 1, Math.floor(xMax + EPS));
  const r0 = Math.max(0, Math.ceil(yMin - EPS));
  const r1 = Math.min(rows - 1, Math.floor(yMax + EPS));
  const width = Math.max(0, c1 - c0 + 1);
  const height = Math.max(0, r1 - r0 + 1);
  const xs = Float64Array.from({ length: width }, (_, j) => c0 + j);
  const ys = Float64Array.from({ length: height }, (_, i) => r0 + i);
  let mask;
  if (roi.shape === "ellipse") mask = ellipseMask(roi, xs, ys);
  else if (roi.shape === "rectangle") mask = new Uint8Array(width * height).fill(1);
  else mask = polygonMask(roi, xs, ys);
  if (!mask.some((v) => v)) throw new RoiMeasureError("the ROI is empty: no pixel centre lies inside it");
  return { r0, c0, height, width, mask };
}

function ellipseMask(roi, xs, ys) {
  const t = (roi.angle_deg ?? 0) * (Math.PI / 180);
  const c = Math.cos(t);
  const s = Math.sin(t);
  const [cx, cy] = roi.center;
  const [rx, ry] = roi.radii;
  const mask = new Uint8Array(xs.length * ys.length);
  for (let i = 0; i < ys.length; i++) {
    const dy = ys[i] - cy;
    for (let j = 0; j < xs.length; j++) {
      const dx = xs[j] - cx;
      const along = (dx * c + dy * s) / rx;
      const across = (dy * c - dx * s) / ry;
      mask[i * xs.length + j] = along * along + across * across <= 1.0 + EPS ? 1 : 0;
    }
  }
  return mask;
}

// numpy.searchsorted on an ascending array: "left" counts values < v, "right" values <= v.
function searchLeft(a, v) {
  let k = 0;
  while (k < a.length && a[k] < v) k++;
  return k;
}
function searchRight(a, v) {
  let k = 0;
  while (k < a.length && a[k] <= v) k++;
  return k;
}

function polygonMask(roi, xs, ys) {
  const w = xs.length;
  const inside = new Uint8Array(w * ys.length);
  const boundary = new Uint8Array(w * ys.length);
  const pts = roi.points;
  for (let e = 0; e < pts.length; e++) {
    const [x0, y0] = pts[e];
    const [x1, y1] = pts[(e + 1) % pts.length];
    if (y0 !== y1) {
      const i0 = searchLeft(ys, Math.min(y0, y1));
      const i1 = searchLeft(ys, Math.max(y0, y1));
      for (let i = i0; i < i1; i++) {
        const xCross = x0 + ((ys[i] - y0) / (y1 - y0)) * (x1 - x0);
        for (let j = 0; j < w; j++) if (xs[j] < xCross) inside[i * w + j] ^= 1;
      }
    }
    const j0 = searchLeft(xs, Math.min(x0, x1) - EPS);
    const j1 = searchRight(xs, Math.max(x0, x1) + EPS);
    const i0 = searchLeft(ys, Math.min(y0, y1) - EPS);
    const i1 = searchRight(ys, Math.max(y0, y1) + EPS);
    if (j1 <= j0 || i1 <= i0) continue;
    const ex = x1 - x0;
    const ey = y1 - y0;
    const length2 = ex * ex + ey * ey;
    for (let i = i0; i < i1; i++) {
      const py = ys[i] - y0;
      for (let j = j0; j < j1; j++) {
        const px = xs[j] - x0;
        let t = 0;
        if (length2 !== 0) t = Math.min(1, Math.max(0, (px * ex + py * ey) / length2));
        const qx = px - t * ex;
        const qy = py - t * ey;
        if (qx * qx + qy * qy <= EPS * EPS) boundary[i * w + j] = 1;
      }
    }
  }
  for (let k = 0; k < inside.length; k++) inside[k] |= boundary[k];
  return inside;
}

/** Pixel indices (row * columns + column) of the ROI on the image. */
export function roiIndices(roi, rows, columns) {
  const { r0, c0, height, width, mask } = roiMask(roi, rows, columns);
  const out = [];
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) if (mask[i * width + j]) out.push((r0 + i) * columns + c0 + j);
  }
  return out;
}

/** numpy.median: the middle value, or the mean of the two middle values. */
export function median(values) {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (!n) return NaN;
  const h = n >> 1;
  return n % 2 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
}

/** Statistics of values, as the server reports them (sd is the population sd). */
export function statistics(values) {
  const n = values.length;
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / n;
  let ss = 0;
  for (const v of values) ss += (v - mean) * (v - mean);
  return { n_pixels: n, mean, median: median(values), sd: Math.sqrt(ss / n) };
}

/**
 * Pool the ROIs of one label, as the server does: ROIs on one instance are united (a pixel
 * counts once), ROIs on different instances add their pixels.
 * `images` maps SOP Instance UID -> {rows, columns, values (modality values, row-major)}.
 */
export function pooledStatistics(rois, images) {
  const byInstance = new Map();
  for (const roi of rois) {
    const image = images.get(roi.sop_instance_uid);
    if (!image) throw new RoiMeasureError(`no pixels for instance ${roi.sop_instance_uid}`);
    const set = byInstance.get(roi.sop_instance_uid) ?? new Set();
    for (const k of roiIndices(roi, image.rows, image.columns)) set.add(k);
    byInstance.set(roi.sop_instance_uid, set);
  }
  const values = [];
  for (const [uid, set] of byInstance) {
    const image = images.get(uid);
    for (const k of [...set].sort((a, b) => a - b)) values.push(image.values[k]);
  }
  return statistics(values);
}

/** Stored pixel values (a typed array) -> modality values, as readers/measurement/dicomio.py computes them:
 *  stored · slope + intercept, in float64. */
export function modalityValues(stored, slope = 1, intercept = 0) {
  const out = new Float64Array(stored.length);
  for (let k = 0; k < stored.length; k++) out[k] = stored[k] * slope + intercept;
  return out;
}

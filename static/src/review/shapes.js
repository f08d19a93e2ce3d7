// Pure helpers of the review viewer: a spec ROI's outline as image points, and the slice the
// viewer opens on. No DOM, no Cornerstone: tested with `node --test`.

/** The outline of a spec `vbq.rois/1` shape as image points [x, y] (ellipses sampled). */
export function outline(roi, steps = 48) {
  if (roi.shape === "ellipse") {
    const t = ((roi.angle_deg ?? 0) * Math.PI) / 180;
    const [cx, cy] = roi.center;
    const [rx, ry] = roi.radii;
    const points = [];
    for (let k = 0; k < steps; k++) {
      const a = (2 * Math.PI * k) / steps;
      const x = rx * Math.cos(a);
      const y = ry * Math.sin(a);
      points.push([cx + x * Math.cos(t) - y * Math.sin(t), cy + x * Math.sin(t) + y * Math.cos(t)]);
    }
    return points;
  }
  if (roi.shape === "rectangle") {
    const [[x0, y0], [x1, y1]] = roi.corners;
    return [
      [x0, y0],
      [x1, y0],
      [x1, y1],
      [x0, y1],
    ];
  }
  if (roi.shape === "polygon") return roi.points.map(([x, y]) => [x, y]);
  return [];
}

/** The drawn ROIs (not exclusions) of every reading, each with its reading's index. */
export function drawnRois(readings) {
  const out = [];
  readings.forEach((reading, index) => {
    for (const roi of reading.rois?.rois ?? []) {
      if (!roi.excluded && roi.sop_instance_uid) out.push({ index, roi });
    }
  });
  return out;
}

/** The slice to open on: the instance holding most ROIs of the focused reading (or of all
 *  readings when none is focused); ties go to the one nearest the middle of the stack. */
export function openingIndex(sops, readings) {
  const focused = readings.filter((r) => r.focus);
  const counts = new Map();
  for (const { roi } of drawnRois(focused.length ? focused : readings)) {
    counts.set(roi.sop_instance_uid, (counts.get(roi.sop_instance_uid) ?? 0) + 1);
  }
  const middle = Math.floor((sops.length - 1) / 2);
  let best = middle;
  let bestCount = 0;
  sops.forEach((sop, i) => {
    const n = counts.get(sop) ?? 0;
    if (n > bestCount || (n === bestCount && n > 0 && Math.abs(i - middle) < Math.abs(best - middle))) {
      best = i;
      bestCount = n;
    }
  });
  return Math.max(0, best);
}

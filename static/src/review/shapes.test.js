import assert from "node:assert/strict";
import { test } from "node:test";
import { drawnRois, openingIndex, outline } from "./shapes.js";

test("an ellipse's outline lies on the ellipse, turned by its angle", () => {
  const points = outline({ shape: "ellipse", center: [10, 20], radii: [4, 2], angle_deg: 90 }, 8);
  assert.equal(points.length, 8);
  // first axis turned to +y: the first point is 4 px below the centre
  assert.ok(Math.abs(points[0][0] - 10) < 1e-9 && Math.abs(points[0][1] - 24) < 1e-9);
  for (const [x, y] of points) {
    const u = (y - 20) / 4;
    const v = -(x - 10) / 2;
    assert.ok(Math.abs(u * u + v * v - 1) < 1e-9);
  }
});

test("rectangles and polygons keep their corners", () => {
  assert.deepEqual(outline({ shape: "rectangle", corners: [[1, 2], [3, 4]] }), [[1, 2], [3, 2], [3, 4], [1, 4]]);
  assert.deepEqual(outline({ shape: "polygon", points: [[0, 0], [1, 0], [0, 1]] }), [[0, 0], [1, 0], [0, 1]]);
});

test("exclusions are not drawn", () => {
  const readings = [{ rois: { rois: [{ label: "L4", excluded: true, reason: "fracture" }, { label: "L1", sop_instance_uid: "a", shape: "polygon", points: [] }] } }];
  assert.deepEqual(drawnRois(readings).map((d) => d.roi.label), ["L1"]);
});

test("the viewer opens on the slice of the focused reading's ROIs", () => {
  const roi = (sop) => ({ label: "L1", sop_instance_uid: sop, shape: "ellipse", center: [0, 0], radii: [1, 1] });
  const readings = [
    { focus: false, rois: { rois: [roi("s0"), roi("s0"), roi("s0")] } },
    { focus: true, rois: { rois: [roi("s3"), roi("s3"), roi("s1")] } },
  ];
  assert.equal(openingIndex(["s0", "s1", "s2", "s3", "s4"], readings), 3);
  readings[1].focus = false;
  assert.equal(openingIndex(["s0", "s1", "s2", "s3", "s4"], readings), 0);
  assert.equal(openingIndex(["s0", "s1", "s2"], []), 1);
});

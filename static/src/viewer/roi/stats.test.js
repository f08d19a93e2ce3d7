// stats.js against the Python measurement (fixtures/masks.json, written by
// tests/readers/measurement/test_viewer_fixtures.py from readers.measurement.measure.roi_mask): the same pixels, the same
// count and the same median for every shape, exactly.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { median, modalityValues, pooledStatistics, RoiMeasureError, roiIndices, statistics } from "./stats.js";

const fixture = JSON.parse(readFileSync(new URL("./fixtures/masks.json", import.meta.url), "utf8"));
const { rows, columns } = fixture;
const values = Float64Array.from({ length: rows * columns }, (_, k) => ((k * 7919) % 1009) * 0.37 + 12);

test("every fixture shape selects exactly the Python's pixels", () => {
  for (const [i, c] of fixture.cases.entries()) {
    const where = `case ${i} ${JSON.stringify(c.roi)}`;
    if (c.error) {
      assert.throws(() => roiIndices(c.roi, rows, columns), (e) => e instanceof RoiMeasureError && e.message.includes(c.error === "leaves" ? "leaves" : "empty"), where);
      continue;
    }
    const indices = roiIndices(c.roi, rows, columns).sort((a, b) => a - b);
    assert.deepEqual(indices, c.indices, where);
    const stats = statistics(indices.map((k) => values[k]));
    assert.equal(stats.n_pixels, c.n_pixels, where);
    assert.equal(stats.median, c.median, where);
    assert.ok(Math.abs(stats.mean - c.mean) <= 1e-9 * Math.abs(c.mean), where);
  }
});

test("the fixture exercises every shape and both errors", () => {
  const shapes = new Set(fixture.cases.map((c) => c.roi.shape));
  assert.deepEqual([...shapes].sort(), ["ellipse", "polygon", "rectangle"]);
  const errors = new Set(fixture.cases.map((c) => c.error ?? "ok"));
  assert.deepEqual([...errors].sort(), ["empty", "leaves", "ok"]);
});

test("median averages the two middle values, as numpy does", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test("pooling unites ROIs on one instance and adds ROIs on others", () => {
  const image = { rows, columns, values };
  const images = new Map([["a", image], ["b", image]]);
  const r = { shape: "rectangle", corners: [[2, 2], [4, 4]] }; // 3 x 3 pixels
  const same = pooledStatistics([{ ...r, sop_instance_uid: "a" }, { ...r, sop_instance_uid: "a" }], images);
  assert.equal(same.n_pixels, 9);
  const two = pooledStatistics([{ ...r, sop_instance_uid: "a" }, { ...r, sop_instance_uid: "b" }], images);
  assert.equal(two.n_pixels, 18);
});

test("modality values are stored * slope + intercept", () => {
  assert.deepEqual([...modalityValues(Uint16Array.from([0, 10]), 0.5, -3)], [-3, 2]);
});

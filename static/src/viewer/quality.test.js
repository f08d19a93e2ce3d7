import assert from "node:assert/strict";
import { test } from "node:test";
import { TITLES, describeWarnings, qualityCodes, warningsOf } from "./quality.js";

const overlap = { code: "overlapping_rois", message: "L1 and L2 overlap.", labels: ["L1", "L2"] };

test("only a 409 with warnings asks the reader", () => {
  assert.deepEqual(warningsOf(409, { warnings: [overlap] }), [overlap]);
  assert.equal(warningsOf(409, { error: "already submitted" }), null);
  assert.equal(warningsOf(409, { warnings: [] }), null);
  assert.equal(warningsOf(400, { warnings: [overlap] }), null);
  assert.deepEqual(warningsOf(409, { warnings: [overlap, null, { message: "no code" }] }), [overlap]);
});

test("the codes confirmed are the distinct codes, in order", () => {
  assert.deepEqual(qualityCodes([overlap, { code: "csf_not_dark" }, overlap]), ["overlapping_rois", "csf_not_dark"]);
});

test("every server code has a title; an unknown one shows its code", () => {
  const codes = ["overlapping_rois", "csf_not_dark", "small_bone_roi", "levels_out_of_order", "vbq_out_of_range", "not_measurable"];
  assert.deepEqual(Object.keys(TITLES), codes);
  assert.deepEqual(describeWarnings([overlap, { code: "new_check", message: "m" }]), [
    { code: "overlapping_rois", title: "Overlapping ROIs", message: "L1 and L2 overlap." },
    { code: "new_check", title: "new_check", message: "m" },
  ]);
});

import assert from "node:assert/strict";
import { test } from "node:test";

import { directionLetters, orientationMarkers } from "./orientation.js";

test("a sagittal image (rows anterior to posterior, columns head to feet)", () => {
  assert.deepEqual(orientationMarkers([0, 1, 0, 0, 0, -1]), { right: "P", left: "A", bottom: "F", top: "H" });
});

test("an axial image in the radiological convention", () => {
  assert.deepEqual(orientationMarkers([1, 0, 0, 0, 1, 0]), { right: "L", left: "R", bottom: "P", top: "A" });
});

test("a sagittal image whose rows are flipped", () => {
  assert.deepEqual(orientationMarkers([0, -1, 0, 0, 0, -1]), { right: "A", left: "P", bottom: "F", top: "H" });
});

test("an oblique direction names its two largest components, largest first", () => {
  assert.equal(directionLetters([0.1, 0.8, -0.59]), "PF");
  assert.equal(directionLetters([0.05, -0.2, 0.97]), "H");
});

test("values given as DICOM strings are read as numbers", () => {
  assert.deepEqual(orientationMarkers(["0", "1", "0", "0", "0", "-1"]).right, "P");
});

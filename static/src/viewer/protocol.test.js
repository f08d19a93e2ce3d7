import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Protocol } from "./protocol.js";

// The vocabulary as the page gives it (`vocabulary` in #viewer-config, from studies/vocabulary.py;
// tests/readers/test_reading_page.py checks that this file is what the page carries).
const VOCABULARY = JSON.parse(readFileSync(new URL("./fixtures/vocabulary.json", import.meta.url), "utf8"));

const ellipse = (sop) => ({ sop_instance_uid: sop, shape: "ellipse", center: [10, 10], radii: [3, 2], angle_deg: 0 });

test("the protocol walks L1 -> CSF and writes the spec document", () => {
  const p = new Protocol("2.25.1", VOCABULARY);
  assert.equal(p.current, "L1");
  for (const label of ["L1", "L2", "L3"]) p.setRoi(label, `a-${label}`, ellipse("2.25.9"));
  assert.equal(p.nextOpen("L3"), "L4");
  p.exclude("L4", "fracture", " wedge ");
  assert.deepEqual(p.missing(), ["CSF"]);
  p.setCsfLevel("L2");
  p.setRoi("CSF", "a-csf", ellipse("2.25.9"));
  assert.ok(p.isComplete());
  const doc = p.toJson();
  assert.equal(doc.schema, "vbq.rois/1");
  assert.deepEqual(doc.rois.map((r) => r.label), ["L1", "L2", "L3", "CSF", "L4"]);
  assert.deepEqual(doc.rois[3], { label: "CSF", level: "L2", ...ellipse("2.25.9") });
  assert.deepEqual(doc.rois[4], { label: "L4", excluded: true, reason: "fracture", note: "wedge" });
  assert.deepEqual(Protocol.fromJson(doc, "2.25.1", VOCABULARY).toJson(), doc);
});

test("drawing again replaces a level's ROI; an exclusion replaces its ROIs", () => {
  const p = new Protocol("2.25.1", VOCABULARY);
  p.setRoi("L1", "a", ellipse("x"));
  assert.deepEqual(p.setRoi("L1", "a", { ...ellipse("x"), center: [11, 10] }), []);
  const replaced = p.setRoi("L1", "b", ellipse("y"));
  assert.deepEqual(replaced.map((r) => r.id), ["a"]);
  assert.equal(p.labelOf("b"), "L1");
  assert.deepEqual(p.exclude("L1", "modic").map((r) => r.id), ["b"]);
  assert.equal(p.status("L1"), "excluded");
  p.setRoi("L1", "c", ellipse("y"));
  assert.equal(p.status("L1"), "measured");
});

test("bad exclusions and CSF levels are refused", () => {
  const p = new Protocol("2.25.1", VOCABULARY);
  assert.throws(() => p.exclude("CSF", "other"));
  assert.throws(() => p.exclude("L1", "tired"));
  assert.throws(() => p.setCsfLevel("L9"));
  p.setCsfLevel("L3-L4");
  assert.equal(p.csfLevel, "L3-L4");
});

test("a saved set with two ROIs on one level keeps both (the server pools them)", () => {
  const doc = {
    schema: "vbq.rois/1",
    series_instance_uid: "s",
    rois: [
      { label: "L1", ...ellipse("a") },
      { label: "L1", excluded: false, ...ellipse("b") },
    ],
  };
  const p = Protocol.fromJson(doc, "s", VOCABULARY);
  assert.equal(p.rois.get("L1").length, 2);
  assert.equal(p.current, "L2");
  assert.deepEqual(p.toJson().rois.map((r) => r.sop_instance_uid), ["a", "b"]);
});

test("the levels, the CSF label and the reasons are the vocabulary's, not the module's", () => {
  const vocabulary = { levels: ["T12", "L1"], csf: "LIQ", reasons: ["tired"], shapes: [], default_csf_level: "L1" };
  const p = new Protocol("s", vocabulary);
  assert.deepEqual(p.labels, ["T12", "L1", "LIQ"]);
  assert.equal(p.current, "T12");
  assert.equal(p.csfLevel, "L1");
  p.exclude("T12", "tired");
  assert.throws(() => p.exclude("L1", "fracture"), /reason must be one of tired/);
  assert.throws(() => p.exclude("LIQ", "tired"), /only T12-L1 can be excluded/);
  p.setRoi("LIQ", "c", ellipse("x"));
  assert.deepEqual(p.missing(), ["L1"]);
  assert.deepEqual(p.toJson().rois, [
    { label: "LIQ", level: "L1", ...ellipse("x") },
    { label: "T12", excluded: true, reason: "tired" },
  ]);
});

test("a protocol without a vocabulary is refused", () => {
  assert.throws(() => new Protocol("s"), /vocabulary/);
  assert.throws(() => new Protocol("s", { ...VOCABULARY, levels: [] }), /vocabulary/);
});

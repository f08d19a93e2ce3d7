// The viewer's DICOMweb client: one WADO-RS metadata request for the whole series, `wadors:`
// image ids for Cornerstone, and the decoded pixels of one frame for the preview statistics.
import { geometryFromDicomJson } from "./roi/serialize.js";
import { modalityValues } from "./roi/stats.js";

const EXPLICIT_LE = "1.2.840.10008.1.2.1";

const value = (json, tag) => json[tag]?.Value?.[0];

/** The series' instances, sorted along the slice normal (then by instance number), each with
 *  its DICOM JSON header, geometry, frame URL and Cornerstone image id. */
export async function loadSeries({ root, study_instance_uid: study, series_instance_uid: series }) {
  const base = `${root}/studies/${study}/series/${series}`;
  const response = await fetch(`${base}/metadata`, {
    headers: { Accept: "application/dicom+json" },
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`the series could not be loaded (HTTP ${response.status})`);
  const items = (await response.json()).map((json) => {
    const sop = value(json, "00080018");
    const frameUrl = `${base}/instances/${sop}/frames/1`;
    const geometry = geometryFromDicomJson(json);
    const position = geometry.imagePosition;
    return {
      sop,
      json,
      frameUrl,
      imageId: `wadors:${frameUrl}`,
      geometry,
      instanceNumber: Number(value(json, "00200013") ?? 0),
      depth: position[0] * geometry.normal[0] + position[1] * geometry.normal[1] + position[2] * geometry.normal[2],
    };
  });
  items.sort((a, b) => a.depth - b.depth || a.instanceNumber - b.instanceNumber);
  return items;
}

/** The stack's middle slice: a sagittal series is planned around the midline. */
export function midsagittalIndex(items) {
  return Math.max(0, Math.floor((items.length - 1) / 2));
}

const TYPED = {
  "8,0": Uint8Array,
  "8,1": Int8Array,
  "16,0": Uint16Array,
  "16,1": Int16Array,
  "32,0": Uint32Array,
  "32,1": Int32Array,
};

/** The frame's modality values (stored · slope + intercept, float64) for the preview, from the
 *  server's decoded Explicit VR Little Endian representation: the very values it measures. */
export async function fetchModalityImage(item) {
  const { json } = item;
  if (json["00283000"]) throw new Error("this image uses a Modality LUT: no preview, the server computes");
  const response = await fetch(item.frameUrl, {
    headers: { Accept: `application/octet-stream; transfer-syntax=${EXPLICIT_LE}` },
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`pixels not available (HTTP ${response.status})`);
  const bits = Number(value(json, "00280100") ?? 16);
  const signed = Number(value(json, "00280103") ?? 0) ? 1 : 0;
  const Typed = TYPED[`${bits},${signed}`];
  if (!Typed) throw new Error(`${bits}-bit pixels: no preview`);
  const { rows, columns } = item.geometry;
  const buffer = await response.arrayBuffer();
  if (buffer.byteLength !== rows * columns * Typed.BYTES_PER_ELEMENT) {
    throw new Error("unexpected pixel data size: no preview");
  }
  const slope = Number(value(json, "00281053") ?? 1);
  const intercept = Number(value(json, "00281052") ?? 0);
  return { rows, columns, values: modalityValues(new Typed(buffer), slope, intercept) };
}

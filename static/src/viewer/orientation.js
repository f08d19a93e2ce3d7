// Orientation markers: which way the patient lies at each edge of the image, from the image's
// direction cosines (DICOM Image Orientation (Patient), LPS axes). Pure, so that the letters are
// tested under `node --test` (orientation.test.js). The viewer never rotates nor flips the
// image, so the right edge lies along the row direction and the bottom along the column one.

/** LPS axis -> [letter of the + direction, letter of the − direction]. H/F: head, feet. */
const LETTERS = [
  ["L", "R"],
  ["P", "A"],
  ["H", "F"],
];

/** The letters of a direction: its components of weight > 0.25, largest first, at most two
 *  (an oblique plane reads "PF", a pure sagittal row "P"). */
export function directionLetters(vector) {
  return vector
    .map((v, axis) => ({ v, axis }))
    .filter(({ v }) => Math.abs(v) > 0.25)
    .sort((a, b) => Math.abs(b.v) - Math.abs(a.v))
    .slice(0, 2)
    .map(({ v, axis }) => LETTERS[axis][v > 0 ? 0 : 1])
    .join("");
}

const negate = (vector) => vector.map((v) => -v);

/** {top, bottom, left, right} for an image whose rows run along `imageOrientation[0..2]` and
 *  columns along `imageOrientation[3..5]`. */
export function orientationMarkers(imageOrientation) {
  const row = imageOrientation.slice(0, 3).map(Number);
  const column = imageOrientation.slice(3, 6).map(Number);
  return {
    right: directionLetters(row),
    left: directionLetters(negate(row)),
    bottom: directionLetters(column),
    top: directionLetters(negate(column)),
  };
}

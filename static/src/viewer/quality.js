// The quality warnings before submit (issue 13 item 3): the server checks every submit
// (readers/measurement/quality.py, the one definition) and answers 409 with its warnings when
// the reader has not confirmed them; this module shows them in the page's #quality-dialog and
// says whether the reader chose "Submit anyway" or "Go back". persistence.js then submits again
// with the codes confirmed, which the server keeps with the reading.
//
// The words are the server's (each warning's `message`); this module only titles them by code.
// Pure apart from `askToConfirm` (the DOM is given to it), tested with `node --test`.

export const TITLES = {
  overlapping_rois: "Overlapping ROIs",
  csf_not_dark: "CSF not dark",
  small_bone_roi: "Small ROI",
  levels_out_of_order: "Levels out of order",
  vbq_out_of_range: "Implausible VBQ",
  not_measurable: "No score",
};

/** The warnings of a 409 answer, or null when the answer is another refusal. */
export function warningsOf(status, payload) {
  if (status !== 409 || !Array.isArray(payload?.warnings) || !payload.warnings.length) return null;
  return payload.warnings.filter((w) => w && typeof w.code === "string");
}

/** The distinct codes of some warnings, in their order: what a confirmed submit sends. */
export function qualityCodes(warnings) {
  return [...new Set(warnings.map((w) => w.code))];
}

/** One line per warning, for the dialog: {code, title, message}. */
export function describeWarnings(warnings) {
  return warnings.map((w) => ({ code: w.code, title: TITLES[w.code] ?? w.code, message: String(w.message ?? "") }));
}

/**
 * Show the warnings in #quality-dialog; resolves true for "Submit anyway", false for "Go back"
 * (or Escape). "Go back" has the focus, so that an Enter pressed out of habit does not submit.
 */
export function askToConfirm(warnings, doc = globalThis.document) {
  const dialog = doc.getElementById("quality-dialog");
  const list = doc.getElementById("quality-list");
  list.replaceChildren(
    ...describeWarnings(warnings).map(({ code, title, message }) => {
      const item = doc.createElement("li");
      item.dataset.code = code;
      const strong = doc.createElement("strong");
      strong.textContent = title;
      item.append(strong, doc.createTextNode(` — ${message}`));
      return item;
    }),
  );
  dialog.returnValue = "";
  return new Promise((resolve) => {
    const closed = () => {
      doc.getElementById("viewport")?.focus({ preventScroll: true }); // the keys go back to the image
      resolve(dialog.returnValue === "submit");
    };
    dialog.addEventListener("close", closed, { once: true });
    dialog.showModal();
    doc.getElementById("quality-back").focus();
  });
}

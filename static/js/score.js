// Shows the reading's score as the worker computes it: polls score.json while it is pending,
// then renders the VBQ and the per-level table without a page reload. A page restored from the
// back-forward cache is reloaded: it would show the reading as it was when left.
window.addEventListener("pageshow", (e) => {
  if (e.persisted) window.location.reload();
});
const card = document.getElementById("score");
const body = document.getElementById("score-body");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, attrs);
  node.append(...children);
  return node;
}

function fmt(value, digits = 1) {
  return typeof value === "number" ? value.toFixed(digits) : "—";
}

function levelsTable(detail) {
  const head = el("tr", {}, ...["Level", "Signal intensity", "Pixels", "Median", "Mean", "SD", "Area (mm²)"].map((h) => el("th", {}, h)));
  // The levels in the order the server's measurement lists them (studies.vocabulary.LEVELS).
  const rows = Object.keys(detail.levels).map((label) => {
    const level = detail.levels[label];
    if (level.excluded) {
      return el("tr", {}, el("td", {}, label), el("td", { colSpan: 6, className: "muted" }, `excluded: ${level.reason}`));
    }
    return el("tr", {}, el("td", {}, label), ...[level.si, level.n_pixels, level.median, level.mean, level.sd, level.area_mm2].map(
      (v, i) => el("td", {}, i === 1 ? String(v) : fmt(v)),
    ));
  });
  const csf = detail.csf;
  rows.push(el("tr", {}, el("td", {}, `CSF (${csf.level})`), ...[csf.si, csf.n_pixels, csf.median, csf.mean, csf.sd, csf.area_mm2].map(
    (v, i) => el("td", {}, i === 1 ? String(v) : fmt(v)),
  )));
  const method = detail.method;
  return [
    el("table", { className: "levels" }, el("thead", {}, head), el("tbody", {}, ...rows)),
    el("p", { className: "muted" }, `SI = ${method.roi_statistic} of each ROI; numerator = ${method.level_aggregate} of the measured levels (at least ${method.min_levels}).`),
  ];
}

function render(payload) {
  if (payload.status === "pending") {
    // Recorded but not yet picked up by a worker (the broker or every worker is down): say so.
    const words = payload.waiting_for_worker ? "Waiting for the worker…" : "Computing…";
    body.replaceChildren(el("p", { className: "pending" }, words));
  } else if (payload.status === "hidden") {
    body.replaceChildren(el("p", { className: "muted" }, payload.message));
  } else if (payload.status === "empty") {
    body.replaceChildren(el("p", { className: "muted" }, "No ROIs yet."));
  } else if (payload.status === "ok") {
    body.replaceChildren(el("p", { className: "big" }, payload.vbq.toFixed(3)), ...levelsTable(payload.detail));
  } else if (payload.status === "not_computed" && card.dataset.draft) {
    body.replaceChildren(el("p", { className: "muted" }, `Complete all levels for a score: ${payload.message}`));
  } else if (payload.status === "not_computed") {
    body.replaceChildren(el("p", { className: "error" }, `Not computed: ${payload.message}`), ...levelsTable(payload.detail));
  } else {
    body.replaceChildren(el("p", { className: "error" }, `Error: ${payload.message}`));
  }
}

async function poll(delay) {
  try {
    const response = await fetch(card.dataset.url, { credentials: "same-origin" });
    if (!response.ok) return;
    const payload = await response.json();
    render(payload);
    if (payload.status === "pending") setTimeout(() => poll(Math.min(delay * 1.5, 5000)), delay);
  } catch {
    setTimeout(() => poll(5000), 5000);
  }
}

if (card) poll(300);

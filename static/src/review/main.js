// The read-only review viewer (issue 13 item 7, issue 14): one case's image with several
// readings' ROIs drawn, one colour per reading, a legend, opening on the ROIs' slice, no
// editing. It reuses the reader's viewer for Cornerstone (cornerstone.js), DICOMweb
// (dicomweb.js) and the spec coordinates (roi/serialize.js, which applies the spec's pixel-
// centre origin, not Cornerstone's corner: ../shared/CORNERSTONE.md); the ROIs themselves are an
// SVG layer over the viewport, redrawn at every render, so no Cornerstone tool can edit them.
// Everything starts from the page's JSON (#review-config): labels ("Reader A" for an
// adjudicator, names for a manager), colours, scores and ROI sets, nothing else.
import { addInstanceMetadata, createViewport, initCornerstone, onViewportEvents } from "../viewer/cornerstone.js";
import { setUpTools } from "../viewer/tools.js";
import { loadSeries } from "../viewer/dicomweb.js";
import { imageToWorld } from "../viewer/roi/serialize.js";
import { drawnRois, openingIndex, outline } from "./shapes.js";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const config = JSON.parse($("review-config").textContent);
const readings = config.readings;

function setStatus(text, isError = false) {
  const status = $("viewer-status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function legend() {
  const list = $("review-legend");
  list.replaceChildren(
    ...readings.map((r) => {
      const item = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = r.color;
      const vbq = typeof r.vbq === "number" ? ` ${r.vbq.toFixed(3)}` : "";
      const excluded = (r.rois?.rois ?? []).filter((roi) => roi.excluded).map((roi) => `${roi.label} excluded`);
      item.append(swatch, `${r.label}${vbq}${excluded.length ? ` · ${excluded.join(", ")}` : ""}`);
      if (r.focus) item.classList.add("current");
      return item;
    }),
  );
  for (const swatch of document.querySelectorAll("[data-swatch]")) {
    swatch.style.background = readings[Number(swatch.dataset.swatch)]?.color ?? "transparent";
  }
}

async function start() {
  legend();
  const element = $("viewport");
  element.addEventListener("contextmenu", (e) => e.preventDefault());
  const seriesPromise = loadSeries(config.dicomweb);
  await initCornerstone(config.urls);
  const items = await seriesPromise;
  if (!items.length) throw new Error("this series has no instances to show");
  addInstanceMetadata(items);
  const viewport = createViewport(element);
  setUpTools(); // wheel: slices, right button: window/level; the ROI tools stay disabled
  const rois = drawnRois(readings);
  const anyFocus = readings.some((r) => r.focus);
  const svg = $("review-rois");

  function draw() {
    const index = viewport.getCurrentImageIdIndex();
    const item = items[index];
    const { width, height } = element.getBoundingClientRect();
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const shapes = [];
    for (const { index: which, roi } of rois) {
      if (roi.sop_instance_uid !== item.sop) continue;
      const reading = readings[which];
      const points = outline(roi).map((p) => viewport.worldToCanvas(imageToWorld(item.geometry, p)));
      const polygon = document.createElementNS(SVG, "polygon");
      polygon.setAttribute("points", points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "));
      polygon.setAttribute("fill", "none");
      polygon.setAttribute("stroke", reading.color);
      polygon.setAttribute("stroke-width", reading.focus ? "2.5" : "1.6");
      polygon.dataset.reading = String(which);
      polygon.dataset.label = roi.label;
      const text = document.createElementNS(SVG, "text");
      // Labels above the ROI for the focused reading (or every other reading when none is
      // focused), below for the rest, so that two readers' labels of one level do not overlap.
      const above = anyFocus ? reading.focus : which % 2 === 0;
      const pick = above ? (a, b) => (b[1] < a[1] ? b : a) : (a, b) => (b[1] > a[1] ? b : a);
      const at = points.reduce(pick, points[0]);
      text.setAttribute("x", at[0].toFixed(1));
      text.setAttribute("y", (above ? at[1] - 3 : at[1] + 11).toFixed(1));
      text.setAttribute("fill", reading.color);
      text.setAttribute("font-size", "11");
      text.setAttribute("text-anchor", "middle");
      text.textContent = roi.label;
      shapes.push(polygon, text);
    }
    svg.replaceChildren(...shapes);
    $("slice-indicator").textContent = `Slice ${index + 1} / ${items.length}${item.instanceNumber ? ` · Im ${item.instanceNumber}` : ""}`;
    const voi = viewport.getProperties().voiRange;
    if (voi) {
      const w = voi.upper - voi.lower;
      $("wl-indicator").textContent = `W ${Math.round(w)} · L ${Math.round(voi.lower + w / 2)}`;
    }
    const here = shapes.length / 2;
    setStatus(here ? `${here} ROIs on this slice` : "No ROI on this slice");
  }

  let ready = false;
  onViewportEvents(element, {
    rendered: () => {
      if (!viewport.getCornerstoneImage?.()) return;
      draw();
      if (!ready) {
        ready = true;
        document.body.dataset.viewerReady = "1";
      }
    },
    changed: draw,
  });
  const opening = openingIndex(
    items.map((i) => i.sop),
    readings,
  );
  await viewport.setStack(
    items.map((i) => i.imageId),
    opening,
  );
  viewport.render();

  const go = (delta) => {
    const next = Math.min(items.length - 1, Math.max(0, viewport.getCurrentImageIdIndex() + delta));
    viewport.setImageIdIndex(next);
  };
  $("prev-slice").addEventListener("click", () => go(-1));
  $("next-slice").addEventListener("click", () => go(1));
  $("roi-slice").addEventListener("click", () => viewport.setImageIdIndex(opening));
  element.addEventListener("keydown", (e) => {
    if (e.key === "ArrowUp") go(-1);
    else if (e.key === "ArrowDown") go(1);
    else if (e.key === "m" || e.key === "M") viewport.setImageIdIndex(opening);
    else return;
    e.preventDefault();
  });
  const select = $("wl-preset");
  select.replaceChildren(new Option("Image default", "0"));
  select.addEventListener("change", () => {
    viewport.resetProperties();
    viewport.render();
  });
  new ResizeObserver(() => draw()).observe(element);
  window.vbqReview = {
    currentIndex: () => viewport.getCurrentImageIdIndex(),
    sop: () => items[viewport.getCurrentImageIdIndex()].sop,
    opening,
    readings: () => readings.map((r) => ({ label: r.label, color: r.color })),
  };
}

start().catch((error) => {
  console.error(error);
  setStatus(`The viewer could not start: ${error.message || error}`, true);
  document.body.dataset.viewerError = String(error.message || error);
});

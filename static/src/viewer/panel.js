// The side panel's DOM: the list of levels (status, where each ROI is, preview statistics and
// their agreement with the server), the buttons' state, the server's score, the save state and
// the status line. Separate because it only writes the page: it reads the state and the
// protocol and changes neither, so every other module calls it after a change.

const $ = (id) => document.getElementById(id);

// Saturated, distinct hues that stand out on a grey image: the levels' in protocol order, the CSF's.
const LEVEL_COLORS = ["#ffe119", "#ff7f0e", "#f032e6", "#3cd070"];
const CSF_COLOR = "#42c8f5";

/** label -> colour, for the levels and the CSF label of the page's vocabulary. */
export function labelColors({ levels, csf }) {
  return { ...Object.fromEntries(levels.map((label, i) => [label, LEVEL_COLORS[i % LEVEL_COLORS.length]])), [csf]: CSF_COLOR };
}

const fmt = (v, digits = 1) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "—");

/**
 * @param state     the viewer's state (items, preview, score, writable, savedJson)
 * @param protocol  the Protocol shown
 * @param colors    label -> colour
 * @param viewport  the stack viewport (for the slice shown)
 */
export function createPanel({ state, protocol, colors, viewport }) {
  function renderPanel() {
    const list = $("levels");
    if (!list) return;
    const currentIndex = viewport?.getCurrentImageIdIndex?.() ?? -1;
    const serverLevels = state.score?.status === "ok" || state.score?.status === "not_computed" ? state.score.detail : null;
    const rows = protocol.labels.map((label) => {
      const status = protocol.status(label);
      const preview = state.preview.get(label);
      const li = document.createElement("li");
      li.dataset.label = label;
      li.className = `level ${status}${protocol.current === label && state.writable ? " current" : ""}`;
      li.style.setProperty("--level-color", colors[label]);
      const isCsf = label === protocol.csf;
      const key = isCsf ? "C" : String(protocol.levels.indexOf(label) + 1); // keyboard.js
      const head = document.createElement("div");
      head.className = "level-head";
      const name = isCsf ? `${label} (${protocol.csfLevel})` : label;
      const rois = protocol.rois.get(label);
      const where = rois
        .map((r) => state.items.findIndex((i) => i.sop === r.sop_instance_uid))
        .filter((k) => k >= 0)
        .map((k) => `slice ${k + 1}${k === currentIndex ? "" : " ↗"}`);
      const statusText =
        status === "excluded"
          ? `excluded: ${protocol.exclusions.get(label).reason}`
          : status === "measured"
            ? `${rois[0].shape}${rois.length > 1 ? ` ×${rois.length}` : ""} · ${where.join(", ")}`
            : "to do";
      head.innerHTML = `<kbd>${key}</kbd><strong>${name}</strong><span class="level-status">${statusText}</span>`;
      li.append(head);
      if (status === "measured") {
        const stats = document.createElement("div");
        stats.className = "level-stats";
        if (!preview || preview.pending) stats.textContent = "computing preview…";
        else if (preview.error) {
          stats.textContent = preview.error;
          stats.classList.add("error");
        } else {
          stats.innerHTML = `n <b>${preview.n_pixels}</b> · median <b>${fmt(preview.median)}</b> · mean ${fmt(preview.mean)}`;
          const server = serverLevels && (isCsf ? serverLevels.csf : serverLevels.levels?.[label]);
          if (server && !server.excluded && JSON.stringify(protocol.toJson()) === state.savedJson) {
            const agree = server.n_pixels === preview.n_pixels && server.median === preview.median;
            const title = `server: n ${server.n_pixels}, median ${server.median}`;
            stats.innerHTML += ` <span class="${agree ? "agree" : "error"}" title="${title}">${agree ? "✓ server" : "≠ server"}</span>`;
          }
        }
        li.append(stats);
      }
      return li;
    });
    list.replaceChildren(...rows);
    const missing = protocol.missing();
    $("submit-button").disabled = !state.writable || missing.length > 0;
    $("submit-button").title = missing.length ? `To do: ${missing.join(", ")}` : "Submit (Enter)";
    $("exclude-button").disabled = $("remove-button").disabled = !state.writable;
    $("current-level").textContent = state.writable ? `Now: ${protocol.current}` : "";
    document.body.dataset.roiJson = JSON.stringify(protocol.toJson());
  }

  return { renderPanel };
}

/** The server's score. `missing`: the labels still to measure or exclude; while any is, a score
 *  the server could not compute is no fault of the reader's yet ("complete all levels"), not
 *  a red error. `hidden`: the study shows no score to the reader now (after submit, or never). */
export function renderScore(payload, { missing = [] } = {}) {
  const body = $("score-body");
  const p = (cls, text) => Object.assign(document.createElement("p"), { className: cls, textContent: text });
  if (payload.status === "hidden") body.replaceChildren(p("muted", payload.message || "The score is not shown."));
  else if (missing.length && payload.status !== "ok" && payload.status !== "pending" && payload.status !== "empty") {
    body.replaceChildren(p("muted", `Complete all levels for a score (to do: ${missing.join(", ")}).`));
  } else if (payload.status === "pending") {
    // `waiting_for_worker`: recorded, but no worker has picked the scoring up yet.
    const words = payload.waiting_for_worker ? "Server score: waiting for the worker…" : "Server score: computing…";
    body.replaceChildren(p("pending", words));
  }
  else if (payload.status === "empty") body.replaceChildren(p("muted", "No ROIs saved yet."));
  else if (payload.status === "ok") {
    const big = p("big", payload.vbq.toFixed(3));
    big.id = "server-vbq";
    const m = payload.detail.method;
    body.replaceChildren(big, p("muted small", `${m.roi_statistic} SI, ${m.level_aggregate} of levels · ROI version ${payload.roi_version}`));
  } else if (payload.status === "not_computed") body.replaceChildren(p("error", `Not computed: ${payload.message}`));
  else body.replaceChildren(p("error", `Error: ${payload.message}`));
  body.dataset.status = payload.status;
}

/** Hide every editing control of a read-only reading (tools, exclude / remove / submit, the
 *  CSF-level menu, which becomes text), as the page does for one that opens read-only. */
export function showReadOnly(csfLevel) {
  for (const el of document.querySelectorAll(".tool-group, .panel-actions, #csf-level-edit")) el.hidden = true;
  const text = $("csf-level-text");
  if (text) {
    text.hidden = false;
    text.querySelector("strong").textContent = csfLevel;
  }
}

/** A page left open on what the server no longer lets change (submitted in another tab, or a
 *  page from history): one button reloads it as it is now. */
export function offerReload() {
  if ($("reload-button")) return;
  const button = Object.assign(document.createElement("button"), { type: "button", id: "reload-button", className: "primary", textContent: "Reload" });
  button.addEventListener("click", () => window.location.reload());
  $("save-state").append(" ", button);
}

/** The reading's status badge, once submitted. */
export function markSubmitted() {
  $("reading-status").textContent = "Submitted";
  $("reading-status").className = "status submitted";
}

/** `link` ({href, text}): shown after the text, opening in another tab (the sign-in link while
 *  signed out: this page, and the draft it holds, stay as they are). */
export function setSaveState(kind, text, link = null) {
  const el = $("save-state");
  el.textContent = text;
  if (link) {
    const a = Object.assign(document.createElement("a"), { href: link.href, textContent: link.text, target: "_blank", rel: "noopener" });
    el.append(" ", a);
  }
  el.dataset.state = kind;
}

export function setStatus(text, isError = false) {
  const el = $("viewer-status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

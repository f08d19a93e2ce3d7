// The case-set upload page: choose or drop a zip, a folder or many files; send them in chunks
// (resumable after a disconnect); then follow the worker's processing by polling status.json.
//
// Protocol (studies/uploads/transfer.py): POST create {name, files, bytes} -> the upload's URLs;
// POST chunk, a raw body with the header X-Upload-Pieces "index:offset:length:size,..." (at most
// data-chunk-bytes bytes and data-chunk-pieces pieces); 409 answers carry the server's state
// ({complete: [[first, last], ...], partial: {index: bytes}}) to resume from; POST finish;
// GET status.json until it says finished. File names stay in this page's memory: the server
// only ever hears positions.

const root = document.getElementById("uploader");
const CHUNK_BYTES = Number(root.dataset.chunkBytes);
const CHUNK_PIECES = Number(root.dataset.chunkPieces);
const MAX_FILES = Number(root.dataset.maxFiles);
const csrf = root.querySelector("input[name=csrfmiddlewaretoken]").value;

const $ = (id) => document.getElementById(id);
const ui = {
  drop: $("dropzone"), pickFiles: $("pick-files"), pickFolder: $("pick-folder"), name: $("upload-name"),
  selection: $("selection"), start: $("start"), progress: $("progress"), title: $("progress-title"),
  transferBar: $("transfer-bar"), transferText: $("transfer-text"),
  processingBar: $("processing-bar"), processingText: $("processing-text"),
  message: $("progress-message"), cancel: $("cancel"), resume: $("resume"), reportLink: $("report-link"),
  reportSlot: $("report-slot"),
};

let files = []; // [{file, path}] in a stable order (sorted by path): index = position sent
let current = JSON.parse($("current-upload").textContent); // the server's payload, or null
let controller = null;
let polling = false;

function size(n) {
  const units = [["GB", 2 ** 30], ["MB", 2 ** 20], ["kB", 2 ** 10]];
  for (const [unit, factor] of units) if (n >= factor) return `${(n / factor).toFixed(1)} ${unit}`;
  return `${n} bytes`;
}

function totalBytes(list) {
  return list.reduce((sum, f) => sum + f.file.size, 0);
}

function say(text, kind = "pending") {
  ui.message.hidden = false;
  ui.message.textContent = text;
  ui.message.className = kind;
}

// --- choosing files -----------------------------------------------------------------------------

function setFiles(list) {
  files = list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const bytes = totalBytes(files);
  if (!files.length) {
    ui.selection.textContent = "Nothing chosen: the selection is empty.";
    ui.start.disabled = true;
    return;
  }
  ui.selection.textContent = `${files.length} file${files.length === 1 ? "" : "s"}, ${size(bytes)} chosen.`;
  if (files.length > MAX_FILES) {
    ui.selection.textContent += ` More than ${MAX_FILES} files: split the case set.`;
    ui.start.disabled = true;
    return;
  }
  ui.start.disabled = false;
  ui.start.textContent = resumable() ? "Resume the upload" : "Upload";
}

function fromInput(input) {
  setFiles([...input.files].map((file) => ({ file, path: file.webkitRelativePath || file.name })));
  input.value = "";
}

async function readEntry(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: prefix + entry.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await readEntry(child, `${prefix}${entry.name}/`, out);
    }
  }
}

ui.pickFiles.addEventListener("change", () => fromInput(ui.pickFiles));
ui.pickFolder.addEventListener("change", () => fromInput(ui.pickFolder));
for (const type of ["dragenter", "dragover"]) {
  ui.drop.addEventListener(type, (event) => {
    event.preventDefault();
    ui.drop.classList.add("over");
  });
}
ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("over"));
ui.drop.addEventListener("drop", async (event) => {
  event.preventDefault();
  ui.drop.classList.remove("over");
  const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  const out = [];
  if (entries.length) {
    for (const entry of entries) await readEntry(entry, "", out);
  } else {
    for (const file of event.dataTransfer.files) out.push({ file, path: file.name });
  }
  setFiles(out);
});

// --- talking to the server ----------------------------------------------------------------------

async function call(url, options = {}) {
  const response = await fetch(url, {
    credentials: "same-origin",
    ...options,
    headers: { "X-CSRFToken": csrf, Accept: "application/json", ...(options.headers || {}) },
  });
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = { error: `The server answered ${response.status}.` };
  }
  return { ok: response.ok, status: response.status, body };
}

function resumable() {
  return (
    current && current.status === "receiving" &&
    files.length === current.files_total_expected && totalBytes(files) === current.bytes_total_expected
  );
}

ui.start.addEventListener("click", async () => {
  ui.start.disabled = true;
  if (current && current.status === "receiving" && !resumable()) {
    if (!confirm("An interrupted upload with other files exists. Cancel it and start this one?")) {
      ui.start.disabled = false;
      return;
    }
    await call(current.urls.cancel, { method: "POST" });
    current = null;
  }
  if (!current || current.status !== "receiving") {
    const created = await call(root.dataset.createUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: ui.name.value, files: files.length, bytes: totalBytes(files) }),
    });
    if (!created.ok) {
      ui.selection.textContent = created.body.error;
      ui.start.disabled = false;
      return;
    }
    current = created.body;
    refreshList();
  }
  ui.reportSlot.replaceChildren();
  render(current);
  transfer();
});

// Which byte of which file to send next, from the server's transfer state.
function positions(state) {
  const done = new Set();
  for (const [first, last] of state.complete || []) for (let i = first; i <= last; i++) done.add(i);
  const partial = state.partial || {};
  return { done, offsetOf: (i) => Number(partial[i] || 0) };
}

function* chunks(state) {
  const { done, offsetOf } = positions(state);
  let i = 0;
  let offset = null;
  while (i < files.length) {
    const pieces = [];
    const blobs = [];
    let budget = CHUNK_BYTES;
    while (i < files.length && pieces.length < CHUNK_PIECES && (budget > 0 || files[i].file.size === 0)) {
      if (done.has(i)) { i += 1; offset = null; continue; }
      const file = files[i].file;
      if (offset === null) offset = offsetOf(i);
      const take = Math.min(file.size - offset, budget);
      pieces.push(`${i}:${offset}:${take}:${file.size}`);
      blobs.push(file.slice(offset, offset + take));
      budget -= take;
      offset += take;
      if (offset >= file.size) { i += 1; offset = null; } else break;
    }
    if (pieces.length) yield { pieces, body: new Blob(blobs) };
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function transfer() {
  ui.cancel.hidden = false;
  ui.resume.hidden = true;
  controller = new AbortController();
  let state = current.transfer || { complete: [], partial: {} };
  let failures = 0;
  outer: for (;;) {
    for (const chunk of chunks(state)) {
      let result;
      try {
        const response = await fetch(current.urls.chunk, {
          method: "POST",
          credentials: "same-origin",
          signal: controller.signal,
          headers: { "X-CSRFToken": csrf, "X-Upload-Pieces": chunk.pieces.join(","), "Content-Type": "application/octet-stream" },
          body: chunk.body,
        });
        result = { ok: response.ok, status: response.status, body: await response.json() };
      } catch (error) {
        if (controller.signal.aborted) return;
        result = { ok: false, status: 0, body: { error: "The connection was lost." } };
      }
      if (result.ok) {
        failures = 0;
        current.bytes_received = result.body.bytes_received;
        current.files_received = result.body.files_received;
        render(current);
        continue;
      }
      if (result.status === 409 && result.body.state && result.body.state.complete) {
        state = result.body.state; // the server holds something else than we thought: resync
        continue outer;
      }
      if (result.status === 409 || result.status === 400 || result.status === 403 || result.status === 404) {
        say(result.body.error || "The upload was refused.", "error");
        if (result.body.state && result.body.state.status) await refresh();
        return;
      }
      failures += 1;
      if (failures > 8) {
        say("The connection is lost. Check it, then choose the same files again to resume.", "error");
        ui.resume.hidden = false;
        return;
      }
      say(`${result.body.error} Retrying in ${2 ** Math.min(failures, 5)} s…`);
      await sleep(1000 * 2 ** Math.min(failures, 5));
      const status = await call(current.urls.status).catch(() => null);
      if (status && status.ok) {
        current = status.body;
        state = current.transfer || state;
      }
      continue outer;
    }
    break;
  }
  say("All files sent; queueing them for processing…");
  const finished = await call(current.urls.finish, { method: "POST" });
  if (!finished.ok) {
    say(finished.body.error, "error");
    if (finished.status === 409 && finished.body.state && finished.body.state.complete) {
      current.transfer = finished.body.state;
      transfer();
    }
    return;
  }
  current = finished.body;
  render(current);
  poll();
}

async function refresh() {
  const status = await call(current.urls.status);
  if (status.ok) {
    current = status.body;
    render(current);
  }
}

async function poll() {
  if (polling) return;
  polling = true;
  let delay = 700;
  while (current && !current.finished) {
    await sleep(delay);
    try {
      const status = await call(current.urls.status);
      if (status.ok) {
        current = status.body;
        render(current);
      }
    } catch {
      // a failed poll is retried; the server keeps the state
    }
    delay = Math.min(delay * 1.3, 3000);
  }
  polling = false;
  if (current) showReport();
}

async function showReport() {
  const response = await fetch(`${current.urls.report}?partial=1`, { credentials: "same-origin" });
  if (!response.ok) return;
  ui.reportSlot.innerHTML = await response.text();
  ui.message.hidden = true; // the report says it, with the counts
  document.getElementById("latest")?.remove();
  fillNames(ui.reportSlot);
  refreshList();
}

// The list of uploads below, as the server now has it.
async function refreshList() {
  const response = await fetch(location.href, { credentials: "same-origin" });
  if (!response.ok) return;
  const html = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = html.getElementById("uploads-list");
  if (fresh) document.getElementById("uploads-list").replaceWith(fresh);
}

// Names exist only here, in memory, while the page still holds the files.
function fillNames(container) {
  for (const cell of container.querySelectorAll("td.src[data-file]")) {
    const entry = files[Number(cell.dataset.file)];
    if (!entry) continue;
    const member = cell.dataset.member;
    cell.textContent = member === undefined ? entry.path : `${entry.path} · item ${Number(member) + 1}`;
    cell.title = "Shown by this browser only; never sent to the server's records.";
  }
}

// --- showing the state --------------------------------------------------------------------------

function render(payload) {
  ui.progress.hidden = false;
  ui.title.textContent = payload.name;
  const total = payload.bytes_total_expected;
  ui.transferBar.max = Math.max(total, 1);
  ui.transferBar.value = payload.status === "receiving" ? payload.bytes_received : ui.transferBar.max;
  ui.transferText.textContent = `${size(payload.bytes_received)} of ${size(total)} · ${payload.files_received} of ${payload.files_total_expected} files`;
  if (payload.sources_total) {
    ui.processingBar.max = payload.sources_total;
    ui.processingBar.value = payload.files_processed;
  } else if (payload.status === "processing") {
    ui.processingBar.removeAttribute("value"); // indeterminate while the zip is listed
  } else {
    ui.processingBar.value = payload.finished && payload.status === "done" ? ui.processingBar.max : 0;
  }
  ui.processingText.textContent = payload.sources_total
    ? `${payload.files_processed} of ${payload.sources_total} read · ${payload.instances_stored} stored · ${payload.files_rejected} rejected`
    : "";
  ui.reportLink.href = payload.urls.report;
  ui.reportLink.hidden = false;
  ui.cancel.hidden = payload.finished;
  switch (payload.status) {
    case "receiving":
      if (!files.length) {
        say(`This upload was interrupted after ${payload.files_received} of ${payload.files_total_expected} files. Choose the same files again to resume it, or cancel it.`);
        ui.resume.hidden = false;
      } else {
        say("Sending files…");
      }
      break;
    case "queued":
      say(payload.dispatch_error
        ? "Waiting for the worker: the task queue cannot be reached right now. The upload is kept safely and will be processed once it is back."
        : "Waiting for the worker: the upload is kept safely and will be processed as soon as the worker is free.");
      break;
    case "processing":
      say("Processing: reading, checking and de-identifying every file…");
      break;
    case "done":
      say(payload.message, "ok");
      break;
    default:
      say(payload.message || payload.status_label, payload.status === "failed" ? "error" : "muted");
  }
}

ui.cancel.addEventListener("click", async () => {
  if (!current || !confirm("Cancel this upload? Its files are deleted from the server.")) return;
  controller?.abort();
  const result = await call(current.urls.cancel, { method: "POST" });
  if (result.ok) {
    current = result.body;
    render(current);
  }
});

ui.resume.addEventListener("click", () => {
  ui.drop.scrollIntoView({ behavior: "smooth" });
  ui.drop.focus();
});

if (current) {
  render(current);
  if (current.status === "queued" || current.status === "processing") poll();
}

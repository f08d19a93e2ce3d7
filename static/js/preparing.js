// The "preparing…" page of a generated download (PDF report, printable report, SR zip): polls the
// study's status JSON, shows "N of M", and opens the download once the worker has built the file.
const box = document.getElementById("preparing");

function show(file) {
  const state = box.querySelector(".state");
  const progress = box.querySelector(".progress");
  const bar = box.querySelector("progress");
  state.textContent = file.building ? "Preparing…" : "Waiting for the worker…";
  progress.textContent = `${file.progress} of ${file.total}`;
  bar.max = Math.max(file.total, 1);
  bar.value = file.progress;
}

async function poll() {
  try {
    const response = await fetch(box.dataset.statusUrl, { credentials: "same-origin" });
    if (!response.ok) {
      setTimeout(poll, 5000);
      return;
    }
    const file = (await response.json()).files[box.dataset.kind];
    if (file.ready) {
      box.querySelector(".ready").hidden = false;
      box.querySelector(".state").textContent = "Ready.";
      window.location.assign(box.dataset.downloadUrl);
      return;
    }
    show(file);
    if (file.failed) {
      // The worker gave up: say so (and offer the recomputation) instead of polling for ever.
      box.querySelector(".failed").hidden = false;
      box.querySelector(".waiting").hidden = true;
      return;
    }
    setTimeout(poll, 1000);
  } catch {
    setTimeout(poll, 5000);
  }
}

if (box && box.dataset.statusUrl) poll();

// The progress page of a case set being reused from another study: polls the attach's status
// JSON, shows "N of M cases copied", and reloads once the worker has finished (the page then
// says what was attached).
const box = document.getElementById("attach");

function show(state) {
  box.querySelector(".state").textContent = state.status_display;
  box.querySelector(".progress").textContent = state.text;
  const bar = box.querySelector("progress");
  bar.max = Math.max(state.cases_total, 1);
  bar.value = state.cases_done;
  const message = box.querySelector(".message");
  message.textContent = state.message;
  message.hidden = !state.message;
}

async function poll() {
  try {
    const response = await fetch(box.dataset.statusUrl, { credentials: "same-origin" });
    if (!response.ok) {
      setTimeout(poll, 5000);
      return;
    }
    const state = await response.json();
    show(state);
    if (state.finished) {
      window.location.reload();
      return;
    }
    setTimeout(poll, 1000);
  } catch {
    setTimeout(poll, 5000);
  }
}

if (box && box.dataset.statusUrl && box.dataset.finished !== "1") poll();

// Polls the reading's score until the worker has stored it, then shows it without a reload.
const card = document.getElementById("score");
const body = document.getElementById("score-body");

function render(payload) {
  if (payload.status === "ok") {
    body.innerHTML = "";
    const p = document.createElement("p");
    p.className = "big";
    p.textContent = payload.vbq.toFixed(3);
    body.append(p);
  } else if (payload.status === "pending") {
    body.innerHTML = '<p class="pending">Computing…</p>';
  } else if (payload.status === "empty") {
    body.innerHTML = '<p class="muted">No ROIs yet.</p>';
  } else {
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = `${payload.status === "error" ? "Error" : "Not computed"}: ${payload.message}`;
    body.replaceChildren(p);
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

if (card) poll(500);

// While the agreement is being recomputed, poll its status and reload once the new figures are in.
const box = document.getElementById("analysis-status");

async function poll() {
  try {
    const response = await fetch(box.dataset.url, { credentials: "same-origin" });
    if (!response.ok) return;
    const status = await response.json();
    if (status.computed_at && status.computed_at !== box.dataset.computed && !status.pending) {
      window.location.reload();
      return;
    }
    if (status.pending) setTimeout(poll, 2000);
  } catch {
    setTimeout(poll, 5000);
  }
}

if (box && box.querySelector(".banner:not(.ok)")) poll();

// While the agreement is being recomputed, poll its status and reload once the new figures are in;
// while the worker prepares the page's figures for the current analysis, reload once they are built.
const box = document.getElementById("analysis-status");
const figures = document.getElementById("figures");

async function poll() {
  try {
    const response = await fetch(box.dataset.url, { credentials: "same-origin" });
    if (!response.ok) return;
    const status = await response.json();
    if (status.computed_at && status.computed_at !== box.dataset.computed && !status.pending) {
      window.location.reload();
      return;
    }
    const page = status.files && status.files.page;
    if (figures && figures.dataset.preparing && page && page.ready) {
      window.location.reload();
      return;
    }
    if (page && figures) {
      const progress = figures.querySelector(".progress");
      if (progress) progress.textContent = `${page.progress} of ${page.total}`;
    }
    if (status.pending || (figures && figures.dataset.preparing)) setTimeout(poll, 2000);
  } catch {
    setTimeout(poll, 5000);
  }
}

if (box && (box.querySelector(".banner:not(.ok)") || (figures && figures.dataset.preparing))) poll();

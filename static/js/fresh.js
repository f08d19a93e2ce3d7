// Pages whose figures change as the reader works (the home page's "N to read", the worklist):
// one restored from the back-forward cache would show them as they were when left, so it is
// fetched again (the pages are no-store: the reload asks the server).
window.addEventListener("pageshow", (e) => {
  if (e.persisted) window.location.reload();
});

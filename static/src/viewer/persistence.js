// Persistence: the autosave of the ROI set (`rois.json`), the submission (`submit.json`) and
// the polling of the server's score (`score.json`). Separate, with `fetch` and the timers
// given to it and the page reached only through `ui` callbacks, so that its logic (what is
// posted, how a refusal is reported, when polling stops) runs and is tested under `node --test`
// (persistence.test.js).

export const SAVE_DELAY_MS = 700;

/**
 * @param state     the viewer's state: writable, locked, savedJson, saving, saveTimer, lastVersion, score
 * @param protocol  the Protocol whose `toJson()` is saved
 * @param urls      {save, submit, score}
 * @param csrfToken sent as X-CSRFToken
 * @param fetch, setTimeout, clearTimeout  the browser's (or a test's)
 * @param ui        {setSaveState(kind, text), setStatus(text, isError), renderScore(payload),
 *                   renderPanel(), becomeReadOnly(), markSubmitted()}
 */
export function createPersistence({ state, protocol, urls, csrfToken, fetch, setTimeout, clearTimeout, ui }) {
  const { setSaveState, setStatus, renderScore, renderPanel } = ui;

  function scheduleSave() {
    if (!state.writable) return;
    clearTimeout(state.saveTimer);
    setSaveState("pending", "Unsaved changes…");
    state.saveTimer = setTimeout(() => saveNow(), SAVE_DELAY_MS);
  }

  async function saveNow() {
    clearTimeout(state.saveTimer);
    if (!state.writable) return true;
    if (state.saving) {
      await state.saving.catch(() => {});
    }
    const doc = protocol.toJson();
    const body = JSON.stringify(doc);
    if (body === state.savedJson) {
      setSaveState("saved", `Saved · version ${state.lastVersion}`);
      return true;
    }
    setSaveState("saving", "Saving…");
    state.saving = postJson(urls.save, body);
    try {
      const { ok, status, payload } = await state.saving;
      if (!ok) {
        setSaveState("error", `Not saved: ${payload.error || `HTTP ${status}`}`);
        if (status === 403) ui.becomeReadOnly();
        return false;
      }
      state.savedJson = body;
      state.lastVersion = payload.roi_version;
      pollScore(payload.roi_version);
      // Changes made while this save was in flight have their own save scheduled.
      if (JSON.stringify(protocol.toJson()) !== body) setSaveState("pending", "Unsaved changes…");
      else setSaveState("saved", `Saved · version ${payload.roi_version}`);
      return true;
    } catch (error) {
      setSaveState("error", `Not saved: ${error.message || error} (retrying)`);
      state.saveTimer = setTimeout(() => saveNow(), 3000);
      return false;
    } finally {
      state.saving = null;
    }
  }

  async function postJson(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json" },
      body,
    });
    let payload = {};
    try {
      payload = await response.json();
    } catch {
      /* an HTML error page */
    }
    return { ok: response.ok, status: response.status, payload };
  }

  async function submit() {
    const missing = protocol.missing();
    if (missing.length) {
      setStatus(`Not yet measured or excluded: ${missing.join(", ")}.`, true);
      return;
    }
    setStatus("Submitting…");
    if (!(await saveNow())) {
      setStatus("Not submitted: the ROIs could not be saved.", true);
      return;
    }
    const { ok, payload, status } = await postJson(urls.submit, "{}");
    if (!ok) {
      setStatus(`Not submitted: ${payload.error || `HTTP ${status}`}`, true);
      return;
    }
    state.locked = true;
    ui.becomeReadOnly();
    ui.markSubmitted();
    setStatus("Submitted. The reading is locked.");
    pollScore(state.lastVersion);
  }

  let pollToken = 0;
  /** Poll the score until the server's result for ROI version `version` (or a later one) is in;
   *  a later call supersedes an earlier one. While it is pending, the score shows whether a
   *  worker has picked it up (`waiting_for_worker`), re-rendered only when that changes. */
  async function pollScore(version) {
    const token = ++pollToken;
    let delay = 300;
    let waiting = false;
    renderScore({ status: "pending" });
    for (;;) {
      if (token !== pollToken) return;
      try {
        const response = await fetch(urls.score, { credentials: "same-origin" });
        if (response.ok) {
          const payload = await response.json();
          if (token !== pollToken) return;
          if (payload.status !== "pending" && payload.roi_version >= version) {
            state.score = payload;
            renderScore(payload);
            renderPanel();
            return;
          }
          if (payload.status === "pending" && Boolean(payload.waiting_for_worker) !== waiting) {
            waiting = Boolean(payload.waiting_for_worker);
            renderScore(payload);
          }
        }
      } catch {
        /* offline for a moment: keep polling */
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 1.5, 4000);
    }
  }

  return { scheduleSave, saveNow, submit, pollScore };
}

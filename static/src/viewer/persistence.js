// Persistence: the autosave of the ROI set (`rois.json`), the submission (`submit.json`) and
// the polling of the server's score (`score.json`). Separate, with `fetch`, the timers and the
// draft's storage given to it and the page reached only through `ui` callbacks, so that its
// logic (what is posted, how a refusal is reported, when a save is retried, when polling
// stops) runs and is tested under `node --test` (persistence.test.js).
//
// Nothing the reader drew is lost to a server or network fault:
// - a save that got a 5xx or no answer is retried with exponential backoff (1 s, 2 s, 4 s …
//   30 s). Each retry posts the newest draft (`protocol.toJson()` when it runs) and saves never
//   overlap (each waits for the one in flight), so they cannot arrive out of order;
// - the draft is kept in localStorage from the moment it is posted until the server has it, so
//   a crash or a reload keeps it too: a page that opens on the very version the draft was made
//   from takes the draft back and saves it;
// - an expired session (401, `vbqweb.login_required`) shows "Signed out — sign in again, your
//   work is kept" with a link that opens the login in another tab, and the draft is sent again
//   every few seconds and whenever the page comes back to the front, so it is saved as soon as
//   the reader has signed in.
// - the draft is kept in localStorage at every change, not only once posted: a reload within
//   the autosave delay (SAVE_DELAY_MS) finds it there; when the page is hidden or left
//   (visibilitychange, pagehide) the save is sent at once with `keepalive`, which the browser
//   completes even after the page is gone.
//
// - a save carries the ROI version its edit was made on (X-VBQ-Base-Version: the version the
//   page loaded, or the last one the server acknowledged). Once another window or tab of the
//   reading has saved since, the server answers 409 and saves nothing: the viewer says "This
//   reading was changed in another window or tab — reload to see the latest" with a Reload
//   button, turns read-only and autosaves nothing more. Its unsaved set is not sent again and
//   not dropped: it moves from the draft's key to `vbq.conflict:<save url>` in localStorage
//   ({body, base, server_version, at}; the latest such set only), which no page restores by
//   itself. A 409 whose server set is one of this page's own (a set it posted, or the restored
//   draft's lineage: the previous page's late autosave landed after this page was served) is no
//   conflict: the save moves to that version and is sent again. A 409 to the save of a page
//   being left (reloaded right after an edit) leaves the draft for the next page to decide.
//
// It also sends the reading time (timing.js; issue 13 item 6) when the page gives a
// `urls.timing`: with each autosave (the X-VBQ-Timing header), in the submit's body, every
// minute (`timing.json`) and when the page is hidden or left; and it asks the reader about the
// server's quality warnings (a 409 to the submit; quality.js) and submits again confirming them.

import { askToConfirm, qualityCodes, warningsOf } from "./quality.js";
import { createTiming } from "./timing.js";

export const SAVE_DELAY_MS = 700;
export const TIMING_EVERY_MS = 60000;
export const TIMING_HEADER = "X-VBQ-Timing";
/** What the reader does that counts as being at work (timing.js). */
export const INPUT_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel"];
export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 30000;
export const SIGNED_OUT_RETRY_MS = 5000;
/** Each poll of the score asks the server to wait for it (`?wait=1`: the server answers when
 *  the worker has stored the score, or after a few seconds); these are the pauses after an
 *  answer that is still pending (the server could not wait: Redis away, or all its waiting
 *  threads taken), less and less often. An unchanged answer is a 304. */
export const POLL_DELAYS_MS = [250, 250, 500, 1000, 2000];
export const POLL_WAIT_PARAM = "wait=1";
export const POLL_MAX_MS = 4000;
export const SIGNED_OUT_TEXT = "Signed out — sign in again, your work is kept.";
export const BASE_VERSION_HEADER = "X-VBQ-Base-Version";
export const CONFLICT_TEXT = "This reading was changed in another window or tab — reload to see the latest.";

/** The wait before retry number `n` (1, 2, …): 1 s, doubling, at most 30 s. */
export function retryDelay(n) {
  return Math.min(RETRY_FIRST_MS * 2 ** Math.max(n - 1, 0), RETRY_MAX_MS);
}

/** The pause after the `n`-th (0, 1, …) pending answer to a poll of a score. */
export function pollDelay(n) {
  return n < POLL_DELAYS_MS.length ? POLL_DELAYS_MS[n] : POLL_MAX_MS;
}

/** The score's URL asking the server to wait for a pending score. */
export function waitingUrl(url) {
  return url + (url.includes("?") ? "&" : "?") + POLL_WAIT_PARAM;
}

/** The reading time so far, from the page's #viewer-config (`timing`), when there is a page. */
function pageTiming() {
  try {
    return JSON.parse(globalThis.document?.getElementById("viewer-config")?.textContent ?? "null")?.timing ?? null;
  } catch {
    return null;
  }
}

function pageVisible() {
  return globalThis.document?.visibilityState !== "hidden";
}

/** How many earlier sets a draft remembers it grew from. */
const MAX_LINEAGE = 20;

/** A short hash of a set's JSON (FNV-1a, 32 bits): enough to recognise one of a draft's own
 *  earlier sets, and keeps localStorage small. */
export function hashOf(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(36);
}

function defaultStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage disabled: drafts live in the page only
  }
}

/**
 * @param state     the viewer's state: writable, locked, savedJson, saving, saveTimer, lastVersion, score
 * @param protocol  the Protocol whose `toJson()` is saved
 * @param urls      {save, submit, score}
 * @param csrfToken sent as X-CSRFToken
 * @param fetch, setTimeout, clearTimeout  the browser's (or a test's)
 * @param storage   localStorage (or a test's {getItem, setItem, removeItem}); null: none
 * @param events    where "focus" and "visibilitychange" are heard (the window, or a test's)
 * @param page      the page's path, for the login link's `next`
 * @param now       the clock for the reading time (ms); timingBase: the totals so far (the
 *                  page's); isVisible: whether the page is visible
 * @param ui        {setSaveState(kind, text, link?), setStatus(text, isError), renderScore(payload),
 *                   renderPanel(), becomeReadOnly(), markSubmitted(), confirmQuality(warnings)?
 *                   (a Promise of true to submit anyway; default: the page's #quality-dialog)}
 */
export function createPersistence({
  state,
  protocol,
  urls,
  csrfToken,
  fetch,
  setTimeout,
  clearTimeout,
  ui,
  storage = defaultStorage(),
  events = globalThis.addEventListener ? globalThis : null,
  page = globalThis.location?.pathname ?? "",
  now = () => globalThis.performance?.now() ?? Date.now(),
  timingBase = pageTiming(),
  isVisible = pageVisible,
}) {
  const { setSaveState, setStatus, renderScore, renderPanel } = ui;
  const confirmQuality = ui.confirmQuality ?? askToConfirm;
  const draftKey = `vbq.draft:${urls.save}`;
  const conflictKey = `vbq.conflict:${urls.save}`;
  let conflicted = false; // another window saved since this page's version: no more autosaves
  const ownSets = new Set(); // hashes of the sets this page posted or restored, and their lineage
  let failures = 0; // saves in a row that got a 5xx, no answer or a 401
  let signedOut = null; // the login link while the session is gone

  // -- the reading time -----------------------------------------------------------------------

  const timing =
    urls.timing && state.writable
      ? createTiming({ now, label: () => protocol.current, base: timingBase, visible: isVisible() })
      : null;
  let timingSent = JSON.stringify(timing?.snapshot() ?? null);

  /** Send the totals to `timing.json` when they changed since last sent (no retry: the next
   *  autosave, submit or minute carries them again). */
  function sendTiming({ keepalive = false } = {}) {
    if (!timing || !state.writable) return;
    const body = JSON.stringify(timing.snapshot());
    if (body === timingSent) return;
    timingSent = body;
    fetch(urls.timing, { ...postInit(body), keepalive }).catch(() => {});
  }

  if (timing && events) {
    let refresh = null; // one pending look at the level, however fast the pointer moves
    const onInput = () => {
      timing.input();
      // After the input's own handlers: the level it selected counts from now on.
      refresh ??= setTimeout(() => {
        refresh = null;
        timing.tick();
      }, 0);
    };
    for (const name of INPUT_EVENTS) events.addEventListener(name, onInput, { capture: true, passive: true });
    const every = () => {
      sendTiming();
      setTimeout(every, TIMING_EVERY_MS);
    };
    setTimeout(every, TIMING_EVERY_MS);
  }

  /** The page is hidden or left: the time so far and a waiting edit go now, with `keepalive`
   *  (the browser completes such a request after the page is gone). */
  function flush() {
    sendTiming({ keepalive: true });
    if (state.writable && !state.saving && JSON.stringify(protocol.toJson()) !== state.savedJson) {
      saveNow({ keepalive: true });
    }
  }
  events?.addEventListener("visibilitychange", () => {
    timing?.setVisible(isVisible());
    if (!isVisible()) flush();
  });
  events?.addEventListener("pagehide", flush);
  // Once the page is being left, a save's answer no longer clears the kept draft: the next
  // page may have been served before that save was stored, and then needs the draft.
  let leaving = false;
  const leave = () => {
    leaving = true;
  };
  events?.addEventListener("beforeunload", leave);
  events?.addEventListener("pagehide", leave);

  // -- the draft in localStorage --------------------------------------------------------------

  /** Keep `body` as the draft. `older` lists (hashed) the sets it grew from, this page's and the
   *  earlier pages' of this lineage, so that a page served one of them (below) knows it. */
  function keepDraft(body, base = state.lastVersion) {
    try {
      const stored = storedDraft();
      const older = stored && stored.body !== body ? [...(stored.older ?? []), hashOf(stored.body)] : (stored?.older ?? []);
      if (state.savedJson && state.savedJson !== body) older.push(hashOf(state.savedJson));
      const draft = { body, base, older: [...new Set(older)].slice(-MAX_LINEAGE) };
      storage?.setItem(draftKey, JSON.stringify(draft));
    } catch {
      /* full or disabled: the page still holds it */
    }
  }

  /** After a save, a draft kept since (an edit made while it was in flight) was made on top of
   *  what the server now has: it moves to the new version, or a reload would drop it as stale. */
  function rebaseDraft(posted) {
    try {
      const stored = JSON.parse(storage?.getItem(draftKey) ?? "null");
      if (stored && stored.body !== posted) keepDraft(stored.body);
    } catch {
      /* nothing kept */
    }
  }

  function storedDraft() {
    try {
      return JSON.parse(storage?.getItem(draftKey) ?? "null");
    } catch {
      return null;
    }
  }

  function forgetDraft(body) {
    try {
      const stored = JSON.parse(storage?.getItem(draftKey) ?? "null");
      if (stored && (body === undefined || stored.body === body)) storage.removeItem(draftKey);
    } catch {
      /* nothing kept */
    }
  }

  /** A draft kept by an earlier page of this reading replaces the loaded set and is saved when
   *  it was made from this version or a later one, or when the loaded set is one it grew from;
   *  otherwise it is stale (saved over since, e.g. in another tab) and dropped.
   *  Why not the version alone: on a reload right after an edit, the leaving page's save is
   *  still on its way. The server may answer the new page first (a later draft base than the
   *  page's version), or that late save may land after a newer page's save, so that the page
   *  after opens on an older set of the same lineage with a higher version. Either way the
   *  draft is the reader's newest work. */
  function restoreDraft() {
    let stored = null;
    try {
      stored = JSON.parse(storage?.getItem(draftKey) ?? "null");
    } catch {
      /* unreadable: dropped below */
    }
    if (!stored) return false;
    const current = stored.base >= state.lastVersion || (stored.older ?? []).includes(hashOf(state.savedJson));
    if (!state.writable || !current || stored.body === state.savedJson) {
      // Saved over since (another tab): kept aside, not restored, not silently lost.
      if (state.writable && !current && stored.body !== state.savedJson) keepConflict(stored.body, stored.base, state.lastVersion);
      forgetDraft();
      return false;
    }
    Object.assign(protocol, protocolOf(JSON.parse(stored.body)));
    // The draft's own base when later than the page's: the leaving page's save was answered
    // (that version) after the server served this page.
    state.lastVersion = Math.max(state.lastVersion, stored.base ?? 0);
    for (const hash of [hashOf(stored.body), ...(stored.older ?? [])]) ownSets.add(hash);
    return true;
  }

  function protocolOf(doc) {
    return protocol.constructor.fromJson(doc, protocol.seriesInstanceUid, {
      levels: protocol.levels,
      csf: protocol.csf,
      reasons: protocol.reasons,
      default_csf_level: protocol.csfLevel,
    });
  }

  /** Keep `body`, which the server refused as made on an older version, under the conflict
   *  key: out of the way of the drafts a reload restores, for the reader to recover by hand. */
  function keepConflict(body, base, serverVersion) {
    try {
      storage?.setItem(conflictKey, JSON.stringify({ body, base, server_version: serverVersion, at: Date.now() }));
    } catch {
      /* full or disabled */
    }
  }

  /** The server's set (a 409's `rois`) as this viewer writes it, or null if it does not read. */
  function serverJson(doc) {
    try {
      return JSON.stringify(protocolOf(doc ?? null).toJson());
    } catch {
      return null;
    }
  }

  // -- saving ---------------------------------------------------------------------------------

  function scheduleSave() {
    if (!state.writable || conflicted) return;
    clearTimeout(state.saveTimer);
    // Kept at once: a reload within the delay must not lose the change (issue 13 item 5).
    const body = JSON.stringify(protocol.toJson());
    if (body !== state.savedJson) keepDraft(body);
    if (!signedOut) setSaveState("pending", "Unsaved changes…");
    state.saveTimer = setTimeout(() => saveNow(), SAVE_DELAY_MS);
  }

  function retryLater(text) {
    failures += 1;
    const wait = signedOut ? SIGNED_OUT_RETRY_MS : retryDelay(failures);
    if (signedOut) setSaveState("signed-out", SIGNED_OUT_TEXT, signedOut);
    else setSaveState("error", `${text} (retrying in ${Math.round(wait / 1000)} s)`);
    clearTimeout(state.saveTimer);
    state.saveTimer = setTimeout(() => saveNow(), wait);
  }

  function loginLink(location) {
    const href = `${location || "/login/"}${page ? `?next=${encodeURIComponent(page)}` : ""}`;
    return { href, text: "Sign in" };
  }

  async function saveNow({ keepalive = false } = {}) {
    clearTimeout(state.saveTimer);
    if (conflicted) return false;
    if (!state.writable) return true;
    if (state.saving) {
      await state.saving.catch(() => {});
    }
    const doc = protocol.toJson();
    const body = JSON.stringify(doc);
    if (body === state.savedJson) {
      forgetDraft();
      signedOut = null; // nothing left to send
      setSaveState("saved", `Saved · version ${state.lastVersion}`);
      return true;
    }
    if (!signedOut) setSaveState("saving", "Saving…");
    keepDraft(body);
    const headers = { [BASE_VERSION_HEADER]: String(state.lastVersion) };
    if (timing) headers[TIMING_HEADER] = timingSent = JSON.stringify(timing.snapshot());
    ownSets.add(hashOf(body));
    state.saving = postJson(urls.save, body, { headers, keepalive });
    try {
      const { ok, status, payload } = await state.saving;
      if (status === 401) {
        signedOut = loginLink(payload.location);
        retryLater("");
        return false;
      }
      signedOut = null;
      if (status >= 500) {
        retryLater(`Not saved: ${payload.error || `HTTP ${status}`}`);
        return false;
      }
      if (status === 409) return await onConflict(body, payload, keepalive);
      if (!ok) {
        // A refusal (the set is invalid, or the reading is locked): the same body would be
        // refused again, so it is neither retried nor kept for a reload.
        failures = 0;
        forgetDraft(body);
        setSaveState("error", `Not saved: ${payload.error || `HTTP ${status}`}`);
        if (status === 403) ui.becomeReadOnly();
        return false;
      }
      failures = 0;
      state.savedJson = body;
      state.lastVersion = payload.roi_version;
      if (leaving) keepDraft(storedDraft()?.body ?? body); // the next page may be older than this save
      else forgetDraft(body);
      rebaseDraft(body);
      pollScore(payload.roi_version);
      // Changes made while this save was in flight have their own save scheduled.
      if (JSON.stringify(protocol.toJson()) !== body) setSaveState("pending", "Unsaved changes…");
      else setSaveState("saved", `Saved · version ${payload.roi_version}`);
      return true;
    } catch (error) {
      retryLater(`Not saved: ${error.message || error}`);
      return false;
    } finally {
      state.saving = null;
    }
  }

  /** A 409 to a save: the server holds a later version than the one `body` was made on. */
  async function onConflict(body, payload, keepalive) {
    failures = 0;
    const server = serverJson(payload.rois);
    if (server !== null && ownSets.has(hashOf(server)) && payload.roi_version > state.lastVersion) {
      // This page's own earlier set (or its draft's lineage): no other window's work is there.
      state.lastVersion = payload.roi_version;
      state.savedJson = server;
      state.saving = null;
      return saveNow({ keepalive });
    }
    // A page being left (its answer may not even be readable) leaves the draft where it is: the
    // next page, served the server's version, decides with the draft's lineage (restoreDraft).
    if (leaving) return false;
    conflicted = true;
    clearTimeout(state.saveTimer);
    // The page's newest set (edits made while the save was on its way included) is kept aside;
    // the draft key is left to other tabs' drafts.
    const newest = JSON.stringify(protocol.toJson());
    keepConflict(newest, state.lastVersion, payload.roi_version);
    forgetDraft(body);
    forgetDraft(newest);
    setSaveState("conflict", CONFLICT_TEXT);
    ui.becomeReadOnly();
    setStatus(CONFLICT_TEXT, true);
    return false;
  }

  /** Back to the front (e.g. after signing in in another tab): send a waiting draft now. */
  function resume() {
    if (signedOut && state.writable && !state.saving) saveNow();
  }
  events?.addEventListener("focus", resume);
  events?.addEventListener("visibilitychange", resume);

  function postInit(body, headers = {}) {
    return {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken, Accept: "application/json", ...headers },
      body,
    };
  }

  async function postJson(url, body, { headers = {}, keepalive = false } = {}) {
    const init = postInit(body, headers);
    if (keepalive) init.keepalive = true;
    const response = await fetch(url, init);
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
      setStatus(conflicted ? CONFLICT_TEXT : "Not submitted: the ROIs could not be saved.", true);
      return;
    }
    let answer;
    let confirm = [];
    // At most three rounds: a set changed in between may bring new warnings, asked again.
    for (let round = 0; ; round++) {
      const body = {};
      if (confirm.length) body.confirm = confirm;
      if (timing) body.timing = timing.snapshot();
      try {
        answer = await postJson(urls.submit, JSON.stringify(body));
      } catch (error) {
        setStatus(`Not submitted: ${error.message || error}. Try again.`, true);
        return;
      }
      const warnings = warningsOf(answer.status, answer.payload);
      if (!warnings || round >= 2) break;
      setStatus("Check the warnings before submitting.");
      if (!(await confirmQuality(warnings))) {
        setStatus("Not submitted: back to the reading.");
        return;
      }
      confirm = qualityCodes(warnings);
    }
    const { ok, payload, status } = answer;
    if (status === 401) {
      setSaveState("signed-out", SIGNED_OUT_TEXT, loginLink(payload.location));
      setStatus("Not submitted: signed out. Sign in again, then submit.", true);
      return;
    }
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

  // -- the score ------------------------------------------------------------------------------

  let pollToken = 0;
  /** Poll the score until the server's result for ROI version `version` (or a later one) is in;
   *  a later call supersedes an earlier one (its answer is ignored; the server ends its wait
   *  at the next announcement of this reading's score). Each request asks the
   *  server to wait for the score (`waitingUrl`), so it usually shows the moment the worker has
   *  it, with one request; a pending answer is asked again after `pollDelay`. Each request
   *  sends the last answer's ETag, so an unchanged score costs a 304 without a body. While it
   *  is pending, the score shows whether a worker has picked it up (`waiting_for_worker`),
   *  re-rendered only when that changes. */
  async function pollScore(version) {
    const token = ++pollToken;
    let n = 0;
    let etag = null;
    let waiting = false;
    renderScore({ status: "pending" });
    for (;;) {
      if (token !== pollToken) return;
      try {
        const init = { credentials: "same-origin" };
        if (etag) init.headers = { "If-None-Match": etag };
        const response = await fetch(waitingUrl(urls.score), init);
        if (response.ok) {
          etag = response.headers?.get?.("ETag") ?? null;
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
        // 304: unchanged since the last answer; anything else: ask again later.
      } catch {
        /* offline for a moment: keep polling */
      }
      await new Promise((r) => setTimeout(r, pollDelay(n++)));
    }
  }

  if (restoreDraft()) scheduleSave();

  return { scheduleSave, saveNow, submit, pollScore };
}

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { POLL_DELAYS_MS, SAVE_DELAY_MS, SIGNED_OUT_TEXT, createPersistence, pollDelay, retryDelay } from "./persistence.js";
import { Protocol } from "./protocol.js";

// The vocabulary as the page gives it (`vocabulary` in #viewer-config, from studies/vocabulary.py;
// tests/readers/test_reading_page.py checks that this file is what the page carries).
const VOCABULARY = JSON.parse(readFileSync(new URL("./fixtures/vocabulary.json", import.meta.url), "utf8"));
const URLS = { save: "/readings/7/rois.json", submit: "/readings/7/submit.json", score: "/readings/7/score.json" };
const ellipse = { sop_instance_uid: "2.25.9", shape: "ellipse", center: [10, 10], radii: [3, 2], angle_deg: 0 };

/** A fake fetch: answers from `routes[url]` (a list, used in order; the last one repeats), and
 *  records every request. An answer is {status, json} or {status, html} or {reject: Error}. */
function fakeFetch(routes) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    calls.push({ url, init });
    const list = routes[url];
    if (!list) throw new Error(`unexpected request ${url}`);
    const answer = list.length > 1 ? list.shift() : list[0];
    if (answer.reject) throw answer.reject;
    const headers = new Map(Object.entries(answer.headers ?? {}));
    return {
      ok: answer.status >= 200 && answer.status < 300,
      status: answer.status,
      headers: { get: (name) => headers.get(name) ?? null },
      json: async () => {
        if (answer.html) throw new SyntaxError("Unexpected token '<'");
        return structuredClone(answer.json);
      },
    };
  };
  return { fetch, calls };
}

/** Fake timers: nothing runs until the test says so. */
function fakeTimers() {
  let next = 1;
  const pending = new Map(); // id -> {fn, ms}
  return {
    pending,
    setTimeout: (fn, ms) => {
      pending.set(next, { fn, ms });
      return next++;
    },
    clearTimeout: (id) => pending.delete(id),
    delays: () => [...pending.values()].map((t) => t.ms),
    /** Run the timers due now (those pending when called). */
    runAll() {
      const due = [...pending.values()];
      pending.clear();
      due.forEach((t) => t.fn());
    },
  };
}

/** Let every settled promise's callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A fake localStorage. */
function fakeStorage(initial = {}) {
  const items = new Map(Object.entries(initial));
  return {
    items,
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
  };
}

/** A fake window for "focus" and "visibilitychange". */
function fakeEvents() {
  const listeners = new Map();
  return {
    addEventListener: (name, fn) => listeners.set(name, [...(listeners.get(name) ?? []), fn]),
    fire: (name) => (listeners.get(name) ?? []).forEach((fn) => fn()),
  };
}

const DRAFT_KEY = `vbq.draft:${URLS.save}`;

/** The kept draft's set and base version (without the lineage it grew from). */
function kept(storage) {
  const stored = JSON.parse(storage.getItem(DRAFT_KEY));
  return stored && { body: stored.body, base: stored.base };
}

function setUp({ routes = {}, rois = null, writable = true, version = 0, storage = fakeStorage(), urls = URLS, options = {}, uiExtra = {} } = {}) {
  const protocol = Protocol.fromJson(rois, "2.25.1", VOCABULARY);
  const state = {
    writable,
    locked: false,
    savedJson: JSON.stringify(protocol.toJson()),
    saving: null,
    saveTimer: null,
    lastVersion: version,
    score: null,
  };
  const log = [];
  const ui = {
    setSaveState: (kind, text, link) => log.push(link ? ["save", kind, text, link] : ["save", kind, text]),
    setStatus: (text, isError = false) => log.push(["status", text, isError]),
    renderScore: (payload) => log.push(["score", payload.status]),
    renderPanel: () => log.push(["panel"]),
    becomeReadOnly: () => {
      state.writable = false;
      log.push(["read-only"]);
    },
    markSubmitted: () => log.push(["submitted"]),
    ...uiExtra,
  };
  const { fetch, calls } = fakeFetch(routes);
  const timers = fakeTimers();
  const events = fakeEvents();
  const persistence = createPersistence({
    state,
    protocol,
    urls,
    csrfToken: "tok",
    fetch,
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    ui,
    storage,
    events,
    page: "/readings/7/",
    ...options,
  });
  return { protocol, state, log, calls, timers, persistence, storage, events };
}

const complete = (p) => {
  for (const label of ["L1", "L2", "L3", "L4", "CSF"]) p.setRoi(label, `a-${label}`, ellipse);
};

test("a change is saved once, 0.7 s after the last one", () => {
  const { protocol, timers, persistence, log, calls } = setUp();
  protocol.setRoi("L1", "a", ellipse);
  persistence.scheduleSave();
  persistence.scheduleSave();
  assert.equal(SAVE_DELAY_MS, 700);
  assert.deepEqual(timers.delays(), [700]); // the first timer was cleared
  assert.deepEqual(log, [
    ["save", "pending", "Unsaved changes…"],
    ["save", "pending", "Unsaved changes…"],
  ]);
  assert.equal(calls.length, 0);
});

test("a read-only reading schedules and posts nothing", async () => {
  const { protocol, timers, persistence, log, calls } = setUp({ writable: false });
  protocol.setRoi("L1", "a", ellipse);
  persistence.scheduleSave();
  assert.equal(await persistence.saveNow(), true);
  assert.equal(timers.pending.size, 0);
  assert.deepEqual(log, []);
  assert.equal(calls.length, 0);
});

test("the ROI set is posted as JSON with the CSRF token; the new version is kept and scored", async () => {
  const { protocol, state, persistence, log, calls, timers, storage } = setUp({
    routes: {
      [URLS.save]: [{ status: 200, json: { roi_version: 3 } }],
      [URLS.score]: [{ status: 200, json: { status: "ok", roi_version: 3, vbq: 2.5 } }],
    },
  });
  protocol.setRoi("L1", "a", ellipse);
  assert.equal(await persistence.saveNow(), true);
  const [save] = calls;
  assert.equal(save.url, URLS.save);
  assert.deepEqual(save.init, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": "tok", Accept: "application/json" },
    body: JSON.stringify(protocol.toJson()),
  });
  assert.deepEqual(JSON.parse(save.init.body).rois, [{ label: "L1", ...ellipse }]);
  assert.equal(state.lastVersion, 3);
  assert.equal(state.savedJson, save.init.body);
  assert.equal(state.saving, null);
  await settle();
  assert.equal(calls.length, 1); // the score is asked for once the worker had a moment
  assert.deepEqual(timers.delays(), [POLL_DELAYS_MS[0]]);
  timers.runAll();
  await settle();
  assert.deepEqual(calls[1], { url: URLS.score, init: { credentials: "same-origin" } });
  assert.deepEqual(state.score, { status: "ok", roi_version: 3, vbq: 2.5 });
  assert.deepEqual(log, [
    ["save", "saving", "Saving…"],
    ["score", "pending"],
    ["save", "saved", "Saved · version 3"],
    ["score", "ok"],
    ["panel"],
  ]);
  assert.equal(storage.items.size, 0); // the draft was kept only until the server had it
});

test("an unchanged set is not posted again", async () => {
  const { persistence, log, calls } = setUp({ version: 4 });
  assert.equal(await persistence.saveNow(), true);
  assert.equal(calls.length, 0);
  assert.deepEqual(log, [["save", "saved", "Saved · version 4"]]);
});

test("changes made while a save is in flight stay marked unsaved", async () => {
  const { protocol, persistence, log } = setUp({
    routes: {
      [URLS.save]: [{ status: 200, json: { roi_version: 1 } }],
      [URLS.score]: [{ status: 200, json: { status: "pending" } }],
    },
  });
  protocol.setRoi("L1", "a", ellipse);
  const saving = persistence.saveNow();
  protocol.setRoi("L2", "b", ellipse);
  assert.equal(await saving, true);
  assert.deepEqual(log.at(-1), ["save", "pending", "Unsaved changes…"]);
});

test("a refusal is reported with the server's message, or the HTTP status of an error page", async () => {
  for (const [answer, text] of [
    [{ status: 400, json: { error: "L1: radii must be positive" } }, "Not saved: L1: radii must be positive"],
    [{ status: 409, json: { error: "a newer version was saved" } }, "Not saved: a newer version was saved"],
    [{ status: 409, json: {} }, "Not saved: HTTP 409"],
    [{ status: 413, html: true }, "Not saved: HTTP 413"],
  ]) {
    const { protocol, state, persistence, log, calls, timers, storage } = setUp({ routes: { [URLS.save]: [answer] } });
    const before = state.savedJson;
    protocol.setRoi("L1", "a", ellipse);
    assert.equal(await persistence.saveNow(), false);
    assert.deepEqual(log, [
      ["save", "saving", "Saving…"],
      ["save", "error", text],
    ]);
    assert.equal(state.savedJson, before); // still unsaved: leaving the page saves again
    assert.equal(state.lastVersion, 0);
    assert.equal(state.writable, true); // only a 403 locks the viewer
    assert.equal(timers.pending.size, 0); // no retry: the same body would be refused again
    assert.equal(calls.length, 1); // and no score polling
    assert.equal(storage.items.size, 0); // nor kept for a reload
  }
});

test("a 403 (submitted and locked) turns the viewer read-only", async () => {
  const { protocol, state, persistence, log } = setUp({
    routes: { [URLS.save]: [{ status: 403, json: { error: "this reading is submitted" } }] },
  });
  protocol.setRoi("L1", "a", ellipse);
  assert.equal(await persistence.saveNow(), false);
  assert.deepEqual(log.slice(-2), [["save", "error", "Not saved: this reading is submitted"], ["read-only"]]);
  assert.equal(state.writable, false);
});

test("a network failure is retried after 1 s", async () => {
  const { protocol, state, persistence, log, calls, timers } = setUp({
    routes: { [URLS.save]: [{ reject: new TypeError("Failed to fetch") }, { status: 200, json: { roi_version: 1 } }], [URLS.score]: [{ status: 200, json: { status: "pending" } }] },
  });
  protocol.setRoi("L1", "a", ellipse);
  assert.equal(await persistence.saveNow(), false);
  assert.deepEqual(log.at(-1), ["save", "error", "Not saved: Failed to fetch (retrying in 1 s)"]);
  assert.deepEqual(timers.delays(), [1000]);
  timers.runAll();
  await settle();
  assert.equal(calls.filter((c) => c.url === URLS.save).length, 2);
  assert.equal(state.lastVersion, 1);
});

test("retries back off 1, 2, 4 … 30 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 12].map(retryDelay), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

test("a 5xx is retried with backoff, each time with the newest draft, and the backoff resets after a save", async () => {
  const { protocol, state, persistence, log, calls, timers, storage } = setUp({
    routes: {
      [URLS.save]: [
        { status: 502, html: true },
        { status: 503, json: { error: "The database is unavailable: try again." } },
        { status: 200, json: { roi_version: 1 } },
        { status: 500, html: true },
      ],
      [URLS.score]: [{ status: 200, json: { status: "pending" } }],
    },
  });
  protocol.setRoi("L1", "a", ellipse);
  assert.equal(await persistence.saveNow(), false);
  assert.deepEqual(log.at(-1), ["save", "error", "Not saved: HTTP 502 (retrying in 1 s)"]);
  assert.deepEqual(timers.delays(), [1000]);
  assert.deepEqual(kept(storage), { body: calls[0].init.body, base: 0 });
  protocol.setRoi("L2", "b", ellipse); // drawn while waiting: the retry sends it too
  timers.runAll();
  await settle();
  assert.deepEqual(log.at(-1), ["save", "error", "Not saved: The database is unavailable: try again. (retrying in 2 s)"]);
  assert.deepEqual(timers.delays(), [2000]);
  timers.runAll();
  await settle();
  const saves = calls.filter((c) => c.url === URLS.save);
  assert.equal(saves.length, 3);
  assert.equal(saves[2].init.body, JSON.stringify(protocol.toJson()));
  assert.deepEqual(JSON.parse(saves[2].init.body).rois.map((r) => r.label), ["L1", "L2"]);
  assert.equal(state.lastVersion, 1);
  assert.equal(storage.items.size, 0);
  protocol.setRoi("L3", "c", ellipse);
  timers.pending.clear();
  assert.equal(await persistence.saveNow(), false);
  assert.deepEqual(timers.delays(), [1000]); // a new fault starts again at 1 s
});

test("saves never overlap: a second save waits for the first one's answer, then sends the newest set", async () => {
  let release;
  const order = [];
  const { protocol, state } = setUp();
  const bodies = [];
  // A fetch whose first answer is held until released.
  const held = new Promise((r) => (release = r));
  const fetch = async (url, init) => {
    if (url === URLS.save) {
      bodies.push(JSON.parse(init.body).rois.length);
      order.push(`start ${bodies.length}`);
      if (bodies.length === 1) await held;
      order.push(`end ${bodies.length}`);
      return { ok: true, status: 200, headers: { get: () => null }, json: async () => ({ roi_version: bodies.length }) };
    }
    return { ok: true, status: 200, headers: { get: () => null }, json: async () => ({ status: "pending" }) };
  };
  const timers = fakeTimers();
  const p = createPersistence({
    state, protocol, urls: URLS, csrfToken: "tok", fetch, setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout,
    ui: { setSaveState() {}, setStatus() {}, renderScore() {}, renderPanel() {}, becomeReadOnly() {}, markSubmitted() {} },
    storage: fakeStorage(), events: null, page: "",
  });
  protocol.setRoi("L1", "a", ellipse);
  const first = p.saveNow();
  await settle();
  protocol.setRoi("L2", "b", ellipse);
  const second = p.saveNow();
  await settle();
  assert.deepEqual(order, ["start 1"]); // the second waits
  release();
  assert.deepEqual(await Promise.all([first, second]), [true, true]);
  assert.deepEqual(order, ["start 1", "end 1", "start 2", "end 2"]);
  assert.deepEqual(bodies, [1, 2]); // each carries the newest set when it is sent
  assert.equal(state.lastVersion, 2);
});

test("signed out (401): the draft is kept, the reader is told with a sign-in link, and it is sent again after sign-in", async () => {
  const { protocol, state, persistence, log, calls, timers, storage, events } = setUp({
    routes: {
      [URLS.save]: [
        { status: 401, json: { error: "Signed out", location: "/login/" } },
        { status: 401, json: { error: "Signed out", location: "/login/" } },
        { status: 200, json: { roi_version: 4 } },
      ],
      [URLS.score]: [{ status: 200, json: { status: "pending" } }],
    },
    version: 3,
  });
  protocol.setRoi("L1", "a", ellipse);
  assert.equal(await persistence.saveNow(), false);
  const link = { href: "/login/?next=%2Freadings%2F7%2F", text: "Sign in" };
  assert.deepEqual(log.at(-1), ["save", "signed-out", SIGNED_OUT_TEXT, link]);
  assert.equal(SIGNED_OUT_TEXT, "Signed out — sign in again, your work is kept.");
  assert.deepEqual(kept(storage).base, 3);
  assert.deepEqual(timers.delays(), [5000]); // tried again every few seconds
  persistence.scheduleSave(); // a further change keeps the message
  assert.deepEqual(log.at(-1), ["save", "signed-out", SIGNED_OUT_TEXT, link]);
  timers.runAll();
  await settle();
  await settle();
  assert.equal(calls.filter((c) => c.url === URLS.save).length, 2);
  assert.deepEqual(log.at(-1), ["save", "signed-out", SIGNED_OUT_TEXT, link]);
  events.fire("focus"); // back from the sign-in tab
  await settle();
  await settle();
  assert.equal(calls.filter((c) => c.url === URLS.save).length, 3);
  assert.equal(state.lastVersion, 4);
  assert.deepEqual(log.at(-1), ["save", "saved", "Saved · version 4"]);
  assert.equal(storage.items.size, 0);
});

test("a kept draft made from the server's version is taken back and saved when the page opens", async () => {
  const drawn = Protocol.fromJson(null, "2.25.1", VOCABULARY);
  drawn.setRoi("L1", "a", ellipse);
  const body = JSON.stringify(drawn.toJson());
  const storage = fakeStorage({ [DRAFT_KEY]: JSON.stringify({ body, base: 2 }) });
  const { protocol, state, timers, calls } = setUp({
    storage,
    version: 2,
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 3 } }], [URLS.score]: [{ status: 200, json: { status: "pending" } }] },
  });
  assert.equal(JSON.stringify(protocol.toJson()), body); // the draft is on the page
  assert.deepEqual(timers.delays(), [SAVE_DELAY_MS]);
  timers.runAll();
  await settle();
  assert.equal(calls[0].init.body, body);
  assert.equal(state.lastVersion, 3);
  assert.equal(storage.items.size, 0);
});

test("a kept draft made from an earlier version is dropped", () => {
  const storage = fakeStorage({ [DRAFT_KEY]: JSON.stringify({ body: "{}", base: 1 }) });
  const { protocol, timers } = setUp({ storage, version: 2 });
  assert.equal(protocol.toJson().rois.length, 0);
  assert.equal(timers.pending.size, 0);
  assert.equal(storage.items.size, 0);
});

test("polling sends the last ETag and takes a 304 as unchanged", async () => {
  const { state, persistence, calls, timers } = setUp({
    routes: {
      [URLS.score]: [
        { status: 200, json: { status: "pending", roi_version: 2 }, headers: { ETag: '"p2"' } },
        { status: 304 },
        { status: 200, json: { status: "ok", roi_version: 2, vbq: 3 }, headers: { ETag: '"ok2"' } },
      ],
    },
  });
  const done = persistence.pollScore(2);
  for (let k = 0; k < 10; k++) {
    await settle();
    if (!timers.pending.size) break;
    timers.runAll();
  }
  await done;
  assert.deepEqual(calls[0].init, { credentials: "same-origin" });
  assert.deepEqual(calls[1].init.headers, { "If-None-Match": '"p2"' });
  assert.deepEqual(calls[2].init.headers, { "If-None-Match": '"p2"' }); // a 304 keeps the tag
  assert.equal(state.score.vbq, 3);
});

test("polling waits 0.5 s, 0.25 s, 0.25 s, 0.5 s, 1 s, 2 s, then 4 s, and stops at the version's result", async () => {
  const { state, persistence, log, calls, timers } = setUp({
    routes: {
      [URLS.score]: [
        { status: 200, json: { status: "pending", roi_version: 2 } },
        { reject: new TypeError("offline") },
        { status: 502, html: true },
        { status: 200, json: { status: "ok", roi_version: 1, vbq: 1.0 } }, // an older version's
        { status: 200, json: { status: "pending", roi_version: 2 } },
        { status: 200, json: { status: "pending", roi_version: 2 } },
        { status: 200, json: { status: "pending", roi_version: 2 } },
        { status: 200, json: { status: "not_computed", roi_version: 2, message: "too few levels" } },
      ],
    },
  });
  const done = persistence.pollScore(2);
  const delays = [];
  for (let k = 0; k < 20; k++) {
    await settle();
    if (!timers.pending.size) break;
    delays.push(...timers.delays());
    timers.runAll();
  }
  await done;
  assert.deepEqual(delays, [500, 250, 250, 500, 1000, 2000, 4000]);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 9].map(pollDelay), [500, 250, 250, 500, 1000, 2000, 4000, 4000]);
  assert.equal(calls.length, 8);
  assert.equal(timers.pending.size, 0); // stopped
  assert.deepEqual(state.score, { status: "not_computed", roi_version: 2, message: "too few levels" });
  assert.deepEqual(log, [["score", "pending"], ["score", "not_computed"], ["panel"]]);
});

test("a score waiting for the worker says so once, then computing, then the result", async () => {
  const { persistence, log, timers } = setUp({
    routes: {
      [URLS.score]: [
        { status: 200, json: { status: "pending", roi_version: 3, waiting_for_worker: true } },
        { status: 200, json: { status: "pending", roi_version: 3, waiting_for_worker: true } },
        { status: 200, json: { status: "pending", roi_version: 3, waiting_for_worker: false } },
        { status: 200, json: { status: "ok", roi_version: 3, vbq: 2.5 } },
      ],
    },
  });
  const done = persistence.pollScore(3);
  for (let k = 0; k < 10; k++) {
    await settle();
    if (!timers.pending.size) break;
    timers.runAll();
  }
  await done;
  assert.deepEqual(log, [["score", "pending"], ["score", "pending"], ["score", "pending"], ["score", "ok"], ["panel"]]);
});

test("the delay between polls stops growing at 4 s", async () => {
  const { persistence, timers } = setUp({ routes: { [URLS.score]: [{ status: 200, json: { status: "pending" } }] } });
  persistence.pollScore(1);
  const delays = [];
  for (let k = 0; k < 10; k++) {
    await settle();
    delays.push(...timers.delays());
    timers.runAll();
  }
  assert.deepEqual(delays.slice(-3), [4000, 4000, 4000]);
});

test("a newer poll supersedes an older one", async () => {
  const { state, persistence, calls, timers } = setUp({
    routes: {
      [URLS.score]: [
        { status: 200, json: { status: "pending" } },
        { status: 200, json: { status: "pending" } },
        { status: 200, json: { status: "ok", roi_version: 5, vbq: 3 } },
      ],
    },
  });
  const first = persistence.pollScore(4);
  await settle(); // first: one request, now waiting
  const second = persistence.pollScore(5);
  await settle(); // second: one request, now waiting
  assert.equal(timers.pending.size, 2);
  timers.runAll();
  await Promise.all([first, second]);
  assert.equal(calls.length, 3); // the first poll gave up without asking again
  assert.equal(timers.pending.size, 0);
  assert.equal(state.score.roi_version, 5);
});

test("submit refuses an incomplete reading without asking the server", async () => {
  const { persistence, log, calls } = setUp();
  await persistence.submit();
  assert.deepEqual(log, [["status", "Not yet measured or excluded: L1, L2, L3, L4, CSF.", true]]);
  assert.equal(calls.length, 0);
});

test("submit saves first, posts an empty JSON body, then locks the viewer and polls", async () => {
  const { protocol, state, persistence, log, calls } = setUp({
    routes: {
      [URLS.save]: [{ status: 200, json: { roi_version: 6 } }],
      [URLS.submit]: [{ status: 200, json: { status: "submitted" } }],
      [URLS.score]: [{ status: 200, json: { status: "ok", roi_version: 6, vbq: 2 } }],
    },
  });
  complete(protocol);
  await persistence.submit();
  await settle();
  assert.deepEqual(
    calls.map((c) => c.url),
    [URLS.save, URLS.submit, URLS.score], // the save's poll was still waiting: superseded
  );
  const submit = calls[1];
  assert.equal(submit.init.method, "POST");
  assert.equal(submit.init.body, "{}");
  assert.equal(submit.init.headers["X-CSRFToken"], "tok");
  assert.equal(state.locked, true);
  assert.equal(state.writable, false);
  const i = log.findIndex((e) => e[0] === "read-only");
  assert.deepEqual(log.slice(i, i + 3), [["read-only"], ["submitted"], ["status", "Submitted. The reading is locked.", false]]);
  assert.deepEqual(log[0], ["status", "Submitting…", false]);
});

test("a refused submission (409) is reported and leaves the reading open", async () => {
  const { protocol, state, persistence, log } = setUp({
    routes: {
      [URLS.save]: [{ status: 200, json: { roi_version: 1 } }],
      [URLS.score]: [{ status: 200, json: { status: "pending" } }],
      [URLS.submit]: [{ status: 409, json: { error: "already submitted" } }],
    },
  });
  complete(protocol);
  await persistence.submit();
  assert.deepEqual(log.at(-1), ["status", "Not submitted: already submitted", true]);
  assert.equal(state.locked, false);
  assert.equal(state.writable, true);
  assert.ok(!log.some((e) => e[0] === "read-only" || e[0] === "submitted"));
});

test("a submission whose save fails posts nothing to submit", async () => {
  const { protocol, persistence, log, calls } = setUp({
    routes: { [URLS.save]: [{ status: 400, json: { error: "bad" } }] },
  });
  complete(protocol);
  await persistence.submit();
  assert.deepEqual(log.at(-1), ["status", "Not submitted: the ROIs could not be saved.", true]);
  assert.deepEqual(
    calls.map((c) => c.url),
    [URLS.save],
  );
});

// --- a draft edited within the autosave delay survives a reload (issue 13 item 5) -------------

test("every change is kept in localStorage at once, before the save is due", () => {
  const { protocol, persistence, storage, calls } = setUp({ version: 3 });
  protocol.setRoi("L1", "a", ellipse);
  persistence.scheduleSave();
  assert.equal(calls.length, 0); // not posted yet: the reload comes now
  assert.deepEqual(kept(storage), { body: JSON.stringify(protocol.toJson()), base: 3 });
  // The next page, on the same version, takes it back and saves it.
  const next = setUp({ version: 3, storage, routes: { [URLS.save]: [{ status: 200, json: { roi_version: 4 } }] } });
  assert.deepEqual(next.protocol.toJson(), protocol.toJson());
  assert.deepEqual(next.timers.delays(), [SAVE_DELAY_MS]);
});

test("an edit back to the saved set keeps no draft of its own", () => {
  const { protocol, persistence, storage } = setUp();
  protocol.setRoi("L1", "a", ellipse);
  persistence.scheduleSave();
  protocol.clear("L1");
  storage.items.clear();
  persistence.scheduleSave();
  assert.equal(storage.items.size, 0);
});

test("a draft edited while a save was in flight moves to the version that save made", async () => {
  let release;
  const { protocol, persistence, storage, state } = setUp({
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 1 } }], [URLS.score]: [{ status: 200, json: { status: "pending" } }] },
  });
  protocol.setRoi("L1", "a", ellipse);
  const gate = new Promise((r) => (release = r));
  const saving = persistence.saveNow();
  protocol.setRoi("L2", "b", ellipse); // drawn while the save is on its way
  persistence.scheduleSave();
  release();
  await gate;
  await saving;
  assert.equal(state.lastVersion, 1);
  const stored = kept(storage);
  assert.deepEqual(stored, { body: JSON.stringify(protocol.toJson()), base: 1 }); // not dropped as stale on reload
});

test("leaving the page sends a waiting edit at once, with keepalive", async () => {
  const { protocol, persistence, events, calls } = setUp({
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 1 } }], [URLS.score]: [{ status: 200, json: { status: "pending" } }] },
  });
  protocol.setRoi("L1", "a", ellipse);
  persistence.scheduleSave();
  events.fire("pagehide");
  await settle();
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, URLS.save);
  assert.equal(calls[0].init.keepalive, true);
  events.fire("pagehide"); // nothing left to send
  await settle();
  assert.equal(calls.filter((c) => c.url === URLS.save).length, 1);
});

// --- reading time (issue 13 item 6) ------------------------------------------------------------

const TIMED = { ...URLS, timing: "/readings/7/timing.json" };

function timed(extra = {}) {
  let t = 0;
  let visible = true;
  const context = setUp({
    urls: TIMED,
    options: { now: () => t, timingBase: { active_seconds: 10, level_seconds: { L1: 10 } }, isVisible: () => visible },
    ...extra,
  });
  return { ...context, advance: (ms) => (t += ms), hide: (v = false) => (visible = v) };
}

test("the reading time rides on each autosave and continues from the server's", async () => {
  const { protocol, persistence, calls, advance, events } = timed({
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 1 } }], [URLS.score]: [{ status: 200, json: { status: "pending" } }] },
  });
  advance(4000);
  events.fire("pointerdown");
  protocol.setRoi("L1", "a", ellipse);
  advance(1000);
  await persistence.saveNow();
  const header = JSON.parse(calls[0].init.headers["X-VBQ-Timing"]);
  assert.deepEqual(header, { active_seconds: 15, level_seconds: { L1: 15 } });
});

test("the time goes to timing.json every minute when it changed, and when the page is hidden", async () => {
  const { calls, timers, advance, events, hide } = timed({ routes: { [TIMED.timing]: [{ status: 200, json: {} }] } });
  assert.ok(timers.delays().includes(60000));
  advance(30000);
  events.fire("keydown");
  advance(30000);
  timers.runAll(); // the minute is up (and the level refresh after the key)
  await settle();
  const sent = calls.filter((c) => c.url === TIMED.timing);
  assert.equal(sent.length, 1);
  assert.deepEqual(JSON.parse(sent[0].init.body), { active_seconds: 70, level_seconds: { L1: 70 } });
  timers.runAll(); // another minute, 0 ms later: nothing new, nothing sent
  await settle();
  assert.equal(calls.filter((c) => c.url === TIMED.timing).length, 1);
  advance(5000);
  hide();
  events.fire("visibilitychange");
  await settle();
  const last = calls.filter((c) => c.url === TIMED.timing).at(-1);
  assert.equal(last.init.keepalive, true);
  assert.equal(JSON.parse(last.init.body).active_seconds, 75);
  advance(50000); // hidden: nothing counts
  hide(true);
  events.fire("visibilitychange");
  assert.equal(JSON.parse(JSON.stringify(calls.length)), calls.length);
});

test("a read-only reading counts no time", () => {
  const { calls, timers } = timed({ writable: false });
  assert.equal(timers.pending.size, 0);
  assert.equal(calls.length, 0);
});

// --- quality warnings before submit (issue 13 item 3) -----------------------------------------

const WARNINGS = [
  { code: "overlapping_rois", message: "ROIs of different levels overlap.", labels: ["L1", "L2"] },
  { code: "vbq_out_of_range", message: "The VBQ is 0.98.", labels: [] },
];

function submitting(confirmAnswer) {
  const asked = [];
  const context = timed({
    routes: {
      [URLS.save]: [{ status: 200, json: { roi_version: 2 } }],
      [URLS.submit]: [
        { status: 409, json: { error: "Check these before submitting.", warnings: WARNINGS } },
        { status: 200, json: { status: "submitted" } },
      ],
      [URLS.score]: [{ status: 200, json: { status: "ok", roi_version: 2, vbq: 0.98 } }],
    },
    uiExtra: {
      confirmQuality: async (warnings) => {
        asked.push(warnings);
        return confirmAnswer;
      },
    },
  });
  complete(context.protocol);
  return { ...context, asked };
}

test("quality warnings (409) are shown; Submit anyway submits again confirming their codes", async () => {
  const { persistence, calls, asked, state, log } = submitting(true);
  await persistence.submit();
  const submits = calls.filter((c) => c.url === URLS.submit);
  assert.equal(submits.length, 2);
  const first = JSON.parse(submits[0].init.body);
  assert.equal(first.confirm, undefined);
  assert.ok(first.timing.active_seconds >= 10);
  assert.deepEqual(asked, [WARNINGS]);
  assert.deepEqual(JSON.parse(submits[1].init.body).confirm, ["overlapping_rois", "vbq_out_of_range"]);
  assert.equal(state.locked, true);
  assert.ok(log.some((e) => e[0] === "submitted"));
});

test("Go back submits nothing more and leaves the reading open", async () => {
  const { persistence, calls, state, log } = submitting(false);
  await persistence.submit();
  assert.equal(calls.filter((c) => c.url === URLS.submit).length, 1);
  assert.equal(state.locked, false);
  assert.equal(state.writable, true);
  assert.deepEqual(log.at(-1), ["status", "Not submitted: back to the reading.", false]);
});

test("a page served before the last page's save was stored takes the draft back", () => {
  // The reload came while the save (version 5) was on its way; the server answered the new page
  // with version 4. The draft, kept when leaving, is the reader's newest work.
  const drawn = Protocol.fromJson(null, "2.25.1", VOCABULARY);
  drawn.setRoi("L1", "a", ellipse);
  const body = JSON.stringify(drawn.toJson());
  const storage = fakeStorage({ [DRAFT_KEY]: JSON.stringify({ body, base: 5 }) });
  const { protocol, timers } = setUp({ storage, version: 4 });
  assert.equal(JSON.stringify(protocol.toJson()), body);
  assert.deepEqual(timers.delays(), [SAVE_DELAY_MS]);
});

test("a save answered while the page is being left keeps the draft, on the new version", async () => {
  const { protocol, persistence, storage, events } = setUp({
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 1 } }], [URLS.score]: [{ status: 200, json: { status: "pending" } }] },
  });
  protocol.setRoi("L1", "a", ellipse);
  events.fire("beforeunload");
  await persistence.saveNow();
  assert.deepEqual(kept(storage), { body: JSON.stringify(protocol.toJson()), base: 1 });
});

test("a page that opens on an older set of the draft's own lineage takes the draft back", () => {
  // Page 1 saved {L1} late: it landed (version 2) after page 2's {L1, L2} (version 1). Page 3
  // opens on version 2, {L1}; the draft {L1, L2} (base 0) grew from {L1}: it is restored.
  const storage = fakeStorage();
  const first = setUp({ storage });
  first.protocol.setRoi("L1", "a", ellipse);
  first.persistence.scheduleSave();
  const older = JSON.stringify(first.protocol.toJson());
  first.protocol.setRoi("L2", "b", ellipse);
  first.persistence.scheduleSave();
  const newest = JSON.stringify(first.protocol.toJson());
  const third = setUp({ storage, version: 2, rois: JSON.parse(older) });
  assert.equal(JSON.stringify(third.protocol.toJson()), newest);
  assert.deepEqual(third.timers.delays(), [SAVE_DELAY_MS]);
  // A set from elsewhere (another tab) at a later version: the draft is stale.
  const other = Protocol.fromJson(null, "2.25.1", VOCABULARY);
  other.setRoi("L4", "d", ellipse);
  const fourth = setUp({ storage, version: 3, rois: other.toJson() });
  assert.deepEqual(fourth.protocol.toJson(), other.toJson());
  assert.equal(storage.getItem(DRAFT_KEY), null);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { SAVE_DELAY_MS, SIGNED_OUT_TEXT, createPersistence, pollDelay, retryDelay } from "./persistence.js";
import { Protocol } from "./protocol.js";
import { VOCABULARY, URLS, ellipse, fakeTimers, settle, fakeStorage, DRAFT_KEY, CONFLICT_KEY, kept, setUp, complete, SCORE } from "./persistence.fixtures.js";

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
      [SCORE]: [{ status: 200, json: { status: "ok", roi_version: 3, vbq: 2.5 } }],
    },
  });
  protocol.setRoi("L1", "a", ellipse);
  assert.equal(await persistence.saveNow(), true);
  const [save] = calls;
  assert.equal(save.url, URLS.save);
  assert.deepEqual(save.init, {
    method: "POST",
    credentials: "same-origin",
    // The version the edit was made on: a stale tab's save is refused (persistence.conflict.test.js).
    headers: { "Content-Type": "application/json", "X-CSRFToken": "tok", Accept: "application/json", "X-VBQ-Base-Version": "0" },
    body: JSON.stringify(protocol.toJson()),
  });
  assert.deepEqual(JSON.parse(save.init.body).rois, [{ label: "L1", ...ellipse }]);
  assert.equal(state.lastVersion, 3);
  assert.equal(state.savedJson, save.init.body);
  assert.equal(state.saving, null);
  await settle();
  // The score is asked for at once, the server waiting for the worker: no timer.
  assert.deepEqual(timers.delays(), []);
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[1], { url: SCORE, init: { credentials: "same-origin" } });
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
      [SCORE]: [{ status: 200, json: { status: "pending" } }],
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
    [{ status: 422, json: { error: "not this case" } }, "Not saved: not this case"],
    [{ status: 400, json: {} }, "Not saved: HTTP 400"],
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
    routes: { [URLS.save]: [{ reject: new TypeError("Failed to fetch") }, { status: 200, json: { roi_version: 1 } }], [SCORE]: [{ status: 200, json: { status: "pending" } }] },
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
      [SCORE]: [{ status: 200, json: { status: "pending" } }],
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
      [SCORE]: [{ status: 200, json: { status: "pending" } }],
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
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 3 } }], [SCORE]: [{ status: 200, json: { status: "pending" } }] },
  });
  assert.equal(JSON.stringify(protocol.toJson()), body); // the draft is on the page
  assert.deepEqual(timers.delays(), [SAVE_DELAY_MS]);
  timers.runAll();
  await settle();
  assert.equal(calls[0].init.body, body);
  assert.equal(state.lastVersion, 3);
  assert.equal(storage.items.size, 0);
});

test("a kept draft made from an earlier version is not restored: it is kept aside as a conflict", () => {
  const storage = fakeStorage({ [DRAFT_KEY]: JSON.stringify({ body: "{}", base: 1 }) });
  const { protocol, timers } = setUp({ storage, version: 2 });
  assert.equal(protocol.toJson().rois.length, 0);
  assert.equal(timers.pending.size, 0);
  assert.equal(storage.getItem(DRAFT_KEY), null);
  const aside = JSON.parse(storage.getItem(CONFLICT_KEY));
  assert.deepEqual([aside.body, aside.base, aside.server_version], ["{}", 1, 2]);
});

test("polling sends the last ETag and takes a 304 as unchanged", async () => {
  const { state, persistence, calls, timers } = setUp({
    routes: {
      [SCORE]: [
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

test("a pending answer is asked again after 0.25 s, 0.25 s, 0.5 s, 1 s, 2 s, then 4 s, and polling stops at the version's result", async () => {
  const { state, persistence, log, calls, timers } = setUp({
    routes: {
      [SCORE]: [
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
  assert.deepEqual(delays, [250, 250, 500, 1000, 2000, 4000, 4000]);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map(pollDelay), [250, 250, 500, 1000, 2000, 4000, 4000]);
  assert.ok(calls.every((c) => c.url === SCORE)); // every request asks the server to wait
  assert.equal(calls.length, 8);
  assert.equal(timers.pending.size, 0); // stopped
  assert.deepEqual(state.score, { status: "not_computed", roi_version: 2, message: "too few levels" });
  assert.deepEqual(log, [["score", "pending"], ["score", "not_computed"], ["panel"]]);
});

test("a score waiting for the worker says so once, then computing, then the result", async () => {
  const { persistence, log, timers } = setUp({
    routes: {
      [SCORE]: [
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
  const { persistence, timers } = setUp({ routes: { [SCORE]: [{ status: 200, json: { status: "pending" } }] } });
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
      [SCORE]: [
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
      [SCORE]: [{ status: 200, json: { status: "ok", roi_version: 6, vbq: 2 } }],
    },
  });
  complete(protocol);
  await persistence.submit();
  await settle();
  assert.deepEqual(
    calls.map((c) => c.url),
    [URLS.save, SCORE, URLS.submit, SCORE], // the save's poll, superseded by the submit's
  );
  const submit = calls[2];
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
      [SCORE]: [{ status: 200, json: { status: "pending" } }],
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

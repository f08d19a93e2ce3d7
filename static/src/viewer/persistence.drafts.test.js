// Drafts kept through reloads, reading time and quality warnings (issue 13): the persistence
// layer's newer duties, apart from saving and polling (persistence.test.js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { SAVE_DELAY_MS } from "./persistence.js";
import { Protocol } from "./protocol.js";
import { VOCABULARY, URLS, ellipse, settle, fakeStorage, DRAFT_KEY, kept, setUp, complete, SCORE } from "./persistence.fixtures.js";

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
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 1 } }], [SCORE]: [{ status: 200, json: { status: "pending" } }] },
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
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 1 } }], [SCORE]: [{ status: 200, json: { status: "pending" } }] },
  });
  protocol.setRoi("L1", "a", ellipse);
  persistence.scheduleSave();
  events.fire("pagehide");
  await settle();
  assert.equal(calls[0].url, URLS.save);
  assert.deepEqual(calls.slice(1).map((c) => c.url), [SCORE]); // then the score, at once
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
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 1 } }], [SCORE]: [{ status: 200, json: { status: "pending" } }] },
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
      [SCORE]: [{ status: 200, json: { status: "ok", roi_version: 2, vbq: 0.98 } }],
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
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 1 } }], [SCORE]: [{ status: 200, json: { status: "pending" } }] },
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

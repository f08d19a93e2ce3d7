// "Nothing lost" between windows: each save says which ROI version its edit was made on
// (X-VBQ-Base-Version); a 409 (another window or tab saved since) stops the autosave, offers a
// reload and keeps the page's set aside under the conflict key; a restored draft carries its own
// base, so it cannot clobber a newer save either.
import assert from "node:assert/strict";
import { test } from "node:test";
import { BASE_VERSION_HEADER, CONFLICT_TEXT, SAVE_DELAY_MS } from "./persistence.js";
import { Protocol } from "./protocol.js";
import { VOCABULARY, URLS, ellipse, settle, fakeStorage, DRAFT_KEY, CONFLICT_KEY, setUp, complete, SCORE } from "./persistence.fixtures.js";

const PENDING = { [SCORE]: [{ status: 200, json: { status: "pending" } }] };

/** A set another window saved: {L4}. */
function otherWindowsSet() {
  const other = Protocol.fromJson(null, "2.25.1", VOCABULARY);
  other.setRoi("L4", "d", ellipse);
  return other.toJson();
}

const conflict = (version, rois = otherWindowsSet()) => ({ status: 409, json: { error: "Not saved: changed", roi_version: version, rois } });

test("a save says which version its edit was made on: the loaded one, then the last acknowledged", async () => {
  const { protocol, persistence, calls } = setUp({
    version: 7,
    routes: { [URLS.save]: [{ status: 200, json: { roi_version: 8 } }, { status: 200, json: { roi_version: 9 } }], ...PENDING },
  });
  protocol.setRoi("L1", "a", ellipse);
  await persistence.saveNow();
  protocol.setRoi("L2", "b", ellipse);
  await persistence.saveNow();
  const bases = calls.filter((c) => c.url === URLS.save).map((c) => c.init.headers[BASE_VERSION_HEADER]);
  assert.deepEqual(bases, ["7", "8"]);
});

test("a 409 says the reading changed elsewhere, offers a reload, keeps the set aside and saves nothing more", async () => {
  const { protocol, state, persistence, log, calls, timers, storage } = setUp({ version: 3, routes: { [URLS.save]: [conflict(4)] } });
  protocol.setRoi("L1", "a", ellipse);
  persistence.scheduleSave();
  assert.ok(storage.getItem(DRAFT_KEY));
  assert.equal(await persistence.saveNow(), false);
  assert.deepEqual(log.slice(-3), [["save", "conflict", CONFLICT_TEXT], ["read-only"], ["status", CONFLICT_TEXT, true]]);
  assert.match(CONFLICT_TEXT, /reload/i); // the page's status line offers the Reload button on it
  assert.equal(state.writable, false);
  assert.equal(state.lastVersion, 3); // not taken: this page's set is not the server's
  assert.equal(timers.pending.size, 0); // no retry
  assert.equal(calls.length, 1); // and no score polling
  // Out of the way of a reload (which opens on the server's set), not lost.
  assert.equal(storage.getItem(DRAFT_KEY), null);
  const aside = JSON.parse(storage.getItem(CONFLICT_KEY));
  assert.deepEqual([aside.body, aside.base, aside.server_version], [JSON.stringify(protocol.toJson()), 3, 4]);
  // Nothing is sent again, whatever happens next.
  state.writable = true; // even if something turned it writable again
  protocol.setRoi("L2", "b", ellipse);
  persistence.scheduleSave();
  assert.equal(timers.pending.size, 0);
  assert.equal(await persistence.saveNow(), false);
  assert.equal(calls.length, 1);
});

test("a restored draft carries its own base: a newer save on the server refuses it (409), not overwritten", async () => {
  // Reloaded on version 5 with the draft made on 5; another tab saved 6 before the draft's save.
  const drawn = Protocol.fromJson(null, "2.25.1", VOCABULARY);
  drawn.setRoi("L1", "a", ellipse);
  const body = JSON.stringify(drawn.toJson());
  const storage = fakeStorage({ [DRAFT_KEY]: JSON.stringify({ body, base: 5 }) });
  const { state, timers, calls, log } = setUp({ storage, version: 5, routes: { [URLS.save]: [conflict(6)] } });
  assert.deepEqual(timers.delays(), [SAVE_DELAY_MS]);
  timers.runAll();
  await settle();
  await settle();
  assert.equal(calls.length, 1);
  assert.equal(calls[0].init.headers[BASE_VERSION_HEADER], "5");
  assert.equal(state.writable, false);
  assert.deepEqual(log.at(-1), ["status", CONFLICT_TEXT, true]);
  assert.equal(JSON.parse(storage.getItem(CONFLICT_KEY)).body, body);
});

test("a draft whose page was served before its save landed is sent on the draft's base", async () => {
  const drawn = Protocol.fromJson(null, "2.25.1", VOCABULARY);
  drawn.setRoi("L1", "a", ellipse);
  drawn.setRoi("L2", "b", ellipse);
  const storage = fakeStorage({ [DRAFT_KEY]: JSON.stringify({ body: JSON.stringify(drawn.toJson()), base: 5 }) });
  const { timers, calls } = setUp({ storage, version: 4, routes: { [URLS.save]: [{ status: 200, json: { roi_version: 6 } }], ...PENDING } });
  timers.runAll();
  await settle();
  assert.equal(calls[0].init.headers[BASE_VERSION_HEADER], "5");
});

test("a 409 whose set is this page's own lineage (the last page's late save) is no conflict: sent again on it", async () => {
  // Page 1 drew {L1} and was reloaded while saving it; page 2 opened on version 5 (before that
  // save landed), restored {L1} and drew {L1, L2}. Then page 1's save landed: version 6, {L1}.
  const storage = fakeStorage();
  const first = setUp({ storage, version: 5 });
  first.protocol.setRoi("L1", "a", ellipse);
  first.persistence.scheduleSave();
  const landed = first.protocol.toJson();
  const second = setUp({
    storage,
    version: 5,
    routes: { [URLS.save]: [conflict(6, landed), { status: 200, json: { roi_version: 7 } }], ...PENDING },
  });
  second.protocol.setRoi("L2", "b", ellipse);
  assert.equal(await second.persistence.saveNow(), true);
  const saves = second.calls.filter((c) => c.url === URLS.save);
  assert.deepEqual(saves.map((c) => c.init.headers[BASE_VERSION_HEADER]), ["5", "6"]);
  assert.equal(saves[1].init.body, JSON.stringify(second.protocol.toJson()));
  assert.equal(second.state.lastVersion, 7);
  assert.equal(second.state.writable, true);
  assert.equal(storage.getItem(CONFLICT_KEY), null);
});

test("a 409 on a version not later than the page's is a conflict, not a loop", async () => {
  const { protocol, persistence, calls, state } = setUp({ version: 5, routes: { [URLS.save]: [conflict(5, null)] } });
  protocol.setRoi("L1", "a", ellipse);
  assert.equal(await persistence.saveNow(), false);
  assert.equal(calls.length, 1);
  assert.equal(state.writable, false);
});

test("submitting after a conflict posts nothing to submit and says why", async () => {
  const { protocol, persistence, calls, log } = setUp({ version: 2, routes: { [URLS.save]: [conflict(3)] } });
  complete(protocol);
  await persistence.submit();
  assert.deepEqual(calls.map((c) => c.url), [URLS.save]);
  assert.deepEqual(log.at(-1), ["status", CONFLICT_TEXT, true]);
});

test("a 409 to the save of a page being left keeps the draft for the next page", async () => {
  // Reloaded right after an edit: the leaving save lost a race with this tab's own earlier save;
  // its answer may not even be readable. The next page decides with the draft's lineage.
  const { protocol, persistence, events, storage, log } = setUp({ version: 1, routes: { [URLS.save]: [{ status: 409, html: true }] } });
  protocol.setRoi("L1", "a", ellipse);
  persistence.scheduleSave();
  events.fire("beforeunload");
  assert.equal(await persistence.saveNow(), false);
  assert.equal(JSON.parse(storage.getItem(DRAFT_KEY)).body, JSON.stringify(protocol.toJson()));
  assert.equal(storage.getItem(CONFLICT_KEY), null);
  assert.ok(!log.some(([, kind]) => kind === "conflict"));
});

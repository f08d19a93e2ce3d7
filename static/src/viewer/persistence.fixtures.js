// Fakes and set-up shared by persistence.test.js and persistence.drafts.test.js (not a test file:
// node --test runs *.test.js only).
import { readFileSync } from "node:fs";
import { createPersistence } from "./persistence.js";
import { Protocol } from "./protocol.js";

// The vocabulary as the page gives it (`vocabulary` in #viewer-config, from studies/vocabulary.py;
// tests/readers/test_reading_page.py checks that this file is what the page carries).
export const VOCABULARY = JSON.parse(readFileSync(new URL("./fixtures/vocabulary.json", import.meta.url), "utf8"));
export const URLS = { save: "/readings/7/rois.json", submit: "/readings/7/submit.json", score: "/readings/7/score.json" };
/** The score's URL as the viewer polls it: asking the server to wait for a pending score. */
export const SCORE = "/readings/7/score.json?wait=1";
export const ellipse = { sop_instance_uid: "2.25.9", shape: "ellipse", center: [10, 10], radii: [3, 2], angle_deg: 0 };

/** A fake fetch: answers from `routes[url]` (a list, used in order; the last one repeats), and
 *  records every request. An answer is {status, json} or {status, html} or {reject: Error}. */
export function fakeFetch(routes) {
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
export function fakeTimers() {
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
export const settle = () => new Promise((resolve) => setImmediate(resolve));

/** A fake localStorage. */
export function fakeStorage(initial = {}) {
  const items = new Map(Object.entries(initial));
  return {
    items,
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => items.set(key, String(value)),
    removeItem: (key) => items.delete(key),
  };
}

/** A fake window for "focus" and "visibilitychange". */
export function fakeEvents() {
  const listeners = new Map();
  return {
    addEventListener: (name, fn) => listeners.set(name, [...(listeners.get(name) ?? []), fn]),
    fire: (name) => (listeners.get(name) ?? []).forEach((fn) => fn()),
  };
}

export const DRAFT_KEY = `vbq.draft:${URLS.save}`;
/** Where a set the server refused as stale (409) is kept aside. */
export const CONFLICT_KEY = `vbq.conflict:${URLS.save}`;

/** The kept draft's set and base version (without the lineage it grew from). */
export function kept(storage) {
  const stored = JSON.parse(storage.getItem(DRAFT_KEY));
  return stored && { body: stored.body, base: stored.base };
}

export function setUp({ routes = {}, rois = null, writable = true, version = 0, storage = fakeStorage(), urls = URLS, options = {}, uiExtra = {} } = {}) {
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

export const complete = (p) => {
  for (const label of [...VOCABULARY.levels, VOCABULARY.csf]) p.setRoi(label, `a-${label}`, ellipse);
};

// Reading time (issue 13 item 6): the active time of a case, and of each level, as the reader
// spends it. Time counts while the tab is visible and the reader gave input (a key, a click,
// the wheel, the pointer moving) within the last minute: a reader who walks away stops
// counting a minute later, one who reads a long time without touching anything is taken as
// away after a minute. Each stretch goes to the level that was current during it.
//
// Pure, with the clock given to it (`now`, in ms), so that `node --test` (timing.test.js) runs a
// scripted session in fake time. persistence.js feeds it the page's events and sends its totals
// (with each autosave, the submit, every minute and when the page is hidden); the server keeps
// them monotonic and bounded (readers.services.reading_record_time).

export const IDLE_MS = 60000;

/**
 * @param now       the clock, in milliseconds (performance.now, or a test's)
 * @param label     returns the current level's label (protocol.current)
 * @param base      the totals so far ({active_seconds, level_seconds}), from the server
 * @param visible   whether the page is visible now
 * @param idleMs    how long after the last input time still counts
 */
export function createTiming({ now, label = () => null, base = null, visible = true, idleMs = IDLE_MS }) {
  let activeMs = 1000 * (Number(base?.active_seconds) || 0);
  const levelMs = new Map(Object.entries(base?.level_seconds ?? {}).map(([k, v]) => [k, 1000 * (Number(v) || 0)]));
  let lastTick = now();
  let lastInput = lastTick; // opening the case is the first act
  let isVisible = visible;
  let current = label();

  /** Credit the time since the last tick (the part within `idleMs` of the last input, while
   *  visible) to the case and to the level that was current, then look at the level again. */
  function tick() {
    const t = now();
    if (isVisible) {
      const credit = Math.max(0, Math.min(t, lastInput + idleMs) - Math.max(lastTick, 0));
      if (credit > 0) {
        activeMs += credit;
        if (current) levelMs.set(current, (levelMs.get(current) ?? 0) + credit);
      }
    }
    lastTick = Math.max(lastTick, t);
    current = label();
  }

  /** The reader did something. */
  function input() {
    tick();
    lastInput = now();
  }

  /** The tab was hidden or shown; coming back to it is an act of the reader's. */
  function setVisible(value) {
    tick();
    isVisible = Boolean(value);
    if (isVisible) lastInput = now();
  }

  /** The totals now, in seconds rounded to 0.1 s, as the server takes them. */
  function snapshot() {
    tick();
    const round = (ms) => Math.round(ms / 100) / 10;
    return {
      active_seconds: round(activeMs),
      level_seconds: Object.fromEntries([...levelMs].map(([k, v]) => [k, round(v)])),
    };
  }

  return { tick, input, setVisible, snapshot };
}

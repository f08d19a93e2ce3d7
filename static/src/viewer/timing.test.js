import assert from "node:assert/strict";
import { test } from "node:test";
import { IDLE_MS, createTiming } from "./timing.js";

/** A clock the test moves, and a level it sets. */
function setUp(options = {}) {
  let t = 1000;
  let level = "L1";
  const timing = createTiming({ now: () => t, label: () => level, ...options });
  return {
    timing,
    advance: (ms) => (t += ms),
    select: (l) => {
      level = l;
    },
  };
}

test("a scripted session: input every 3 s for 21 s counts 21 s", () => {
  const { timing, advance } = setUp();
  for (let i = 0; i < 7; i++) {
    advance(3000);
    timing.input();
  }
  assert.deepEqual(timing.snapshot(), { active_seconds: 21, level_seconds: { L1: 21 } });
});

test("time after the last input counts for a minute, then stops", () => {
  const { timing, advance } = setUp();
  advance(5000);
  timing.input();
  advance(10 * 60 * 1000); // away for ten minutes
  assert.equal(IDLE_MS, 60000);
  assert.equal(timing.snapshot().active_seconds, 65);
  advance(2000);
  timing.input(); // back: the gap is not counted, what follows is
  advance(4000);
  assert.equal(timing.snapshot().active_seconds, 69);
});

test("a hidden tab does not count, and coming back is an input", () => {
  const { timing, advance } = setUp();
  advance(4000);
  timing.setVisible(false);
  advance(30000);
  timing.input(); // a key in a hidden tab cannot happen; even so nothing counts while hidden
  advance(30000);
  timing.setVisible(true);
  advance(2000);
  assert.equal(timing.snapshot().active_seconds, 6);
});

test("each stretch goes to the level current during it", () => {
  const { timing, advance, select } = setUp();
  advance(3000);
  timing.input();
  select("L2");
  timing.tick(); // the page noticed the change (persistence ticks right after each input)
  advance(5000);
  timing.input();
  select("CSF");
  timing.tick();
  advance(1500);
  assert.deepEqual(timing.snapshot(), { active_seconds: 9.5, level_seconds: { L1: 3, L2: 5, CSF: 1.5 } });
});

test("the totals continue from what the server has", () => {
  const { timing, advance } = setUp({ base: { active_seconds: 40, level_seconds: { L1: 30, L3: 10 } } });
  advance(2000);
  assert.deepEqual(timing.snapshot(), { active_seconds: 42, level_seconds: { L1: 32, L3: 10 } });
});

test("a clock that goes backwards credits nothing and never lowers a total", () => {
  let t = 5000;
  const timing = createTiming({ now: () => t, label: () => "L4" });
  t = 8000;
  assert.equal(timing.snapshot().active_seconds, 3);
  t = 6000;
  assert.equal(timing.snapshot().active_seconds, 3);
  t = 9000;
  assert.equal(timing.snapshot().active_seconds, 4);
});

test("a page opened hidden counts nothing until shown", () => {
  const { timing, advance } = setUp({ visible: false });
  advance(20000);
  assert.equal(timing.snapshot().active_seconds, 0);
  timing.setVisible(true);
  advance(1000);
  assert.equal(timing.snapshot().active_seconds, 1);
});

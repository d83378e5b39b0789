import type { Clock, Timer } from "../../src/core/clock.js";

interface Entry {
  at: number;
  /** Insertion order: timers due at the same instant fire in the order they were set. */
  seq: number;
  fn: () => void;
  live: boolean;
  /** Set by the simulated world (peers, load), not by the code under test. */
  world: boolean;
}

/**
 * Scripted time for a deterministic simulation: timers fire in (due, set)
 * order, only when `runUntil` says so, and after each one every promise
 * chain it started runs to completion (one macrotask turn drains the whole
 * microtask queue) before the next fires. The code under test sets timers
 * through the Clock interface; the simulated world uses `world()`, so the
 * test can tell which timers the code under test left behind.
 */
export class SimClock implements Clock {
  #now = 0;
  #seq = 0;
  #heap: Entry[] = [];
  #ownLive = 0;
  /** Timers fired so far (a measure of how much the run did). */
  fired = 0;

  now(): number {
    return this.#now;
  }

  wall(): number {
    return 1_700_000_000_000 + this.#now;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.#add(fn, ms, false);
  }

  /** A timer of the simulated world's own. */
  world(fn: () => void, ms: number): Timer {
    return this.#add(fn, ms, true);
  }

  /** Timers set by the code under test that are still due to fire. */
  get pendingOwnTimers(): number {
    return this.#ownLive;
  }

  /** Fires every timer due up to `t`, in order, letting each one's work settle; then time is `t`. */
  async runUntil(t: number, afterEach?: () => void): Promise<void> {
    for (;;) {
      const next = this.#heap[0];
      if (!next || next.at > t) break;
      this.#pop();
      if (!next.live) continue;
      next.live = false;
      if (!next.world) this.#ownLive--;
      this.#now = next.at;
      this.fired++;
      next.fn();
      await flush();
      afterEach?.();
    }
    this.#now = Math.max(this.#now, t);
    await flush();
  }

  #add(fn: () => void, ms: number, world: boolean): Timer {
    // As Node does: at least 1 ms, and never a delay that is not a number.
    const delay = Number.isFinite(ms) ? Math.max(1, ms) : 1;
    const e: Entry = { at: this.#now + delay, seq: this.#seq++, fn, live: true, world };
    if (!world) this.#ownLive++;
    this.#push(e);
    return {
      cancel: () => {
        if (!e.live) return;
        e.live = false;
        if (!world) this.#ownLive--;
      },
    };
  }

  #push(e: Entry): void {
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** One macrotask turn: Node runs every queued microtask, and those they queue, before it. */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

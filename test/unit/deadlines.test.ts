import { describe, expect, it } from "vitest";
import type { Clock, Timer } from "../../src/core/clock.js";
import { DeadlineQueue } from "../../src/core/deadlines.js";

/** A scripted clock: timers fire only when advance() passes them. */
class FakeClock implements Clock {
  t = 0;
  armed = 0;
  #timers = new Set<{ at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  wall(): number {
    return 1_700_000_000_000 + this.t;
  }
  setTimeout(fn: () => void, ms: number): Timer {
    const timer = { at: this.t + Math.max(1, ms), fn };
    this.#timers.add(timer);
    this.armed++;
    return { cancel: () => this.#timers.delete(timer) };
  }
  get pendingTimers(): number {
    return this.#timers.size;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.#timers].filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.#timers.delete(next);
      this.t = next.at;
      next.fn();
    }
    this.t = end;
  }
}

describe("DeadlineQueue (fake clock, no sockets)", () => {
  it("fires each deadline when due, not before, in due order", () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const fired: string[] = [];
    q.add(100, (x) => fired.push(`${x}@${clock.t}`), "a");
    clock.advance(10);
    q.add(100, (x) => fired.push(`${x}@${clock.t}`), "b");
    clock.advance(89);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual(["a@100"]);
    clock.advance(10);
    expect(fired).toEqual(["a@100", "b@110"]);
    expect(q.size).toBe(0);
  });

  it("a cancelled deadline never fires; cancelling twice or after firing is harmless", () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const fired: number[] = [];
    const a = q.add(50, (x) => fired.push(x), 1);
    const b = q.add(60, (x) => fired.push(x), 2);
    q.cancel(a);
    q.cancel(a);
    clock.advance(100);
    expect(fired).toEqual([2]);
    q.cancel(b);
    expect(q.size).toBe(0);
  });

  it("requests that end before their deadline arm no timer each: one timer per timeout period", () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const fired: number[] = [];
    // 10,000 requests of 1 ms each with a 1 s timeout, one after another (concurrency 1).
    for (let i = 0; i < 10_000; i++) {
      const d = q.add(1000, (x) => fired.push(x), i);
      clock.advance(1);
      q.cancel(d);
    }
    expect(fired).toEqual([]);
    // 10 s of traffic: the timer re-armed about once per second, not per request.
    expect(clock.armed).toBeLessThanOrEqual(12);
  });

  it("a shorter timeout added behind longer ones is sorted in and re-arms the timer earlier", () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const fired: string[] = [];
    for (let i = 0; i < 5; i++) q.add(30_000, (x) => fired.push(x), `long${i}`);
    q.add(200, (x) => fired.push(x), "short");
    q.add(30_000, (x) => fired.push(x), "long5");
    clock.advance(200);
    expect(fired).toEqual(["short"]);
    clock.advance(30_000);
    expect(fired).toEqual(["short", "long0", "long1", "long2", "long3", "long4", "long5"]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("deadlines due together all fire in one pass, and one that throws does not strand the rest", async () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const fired: number[] = [];
    const thrown: unknown[] = [];
    const onError = (err: unknown): void => void thrown.push(err);
    process.on("uncaughtException", onError);
    try {
      q.add(
        10,
        () => {
          throw new Error("boom");
        },
        0,
      );
      for (let i = 1; i <= 3; i++) q.add(10, (x) => fired.push(x), i);
      clock.advance(10);
      expect(fired).toEqual([1, 2, 3]);
      await new Promise((r) => setImmediate(r));
      expect(thrown).toHaveLength(1);
    } finally {
      process.off("uncaughtException", onError);
    }
  });

  it("dropWhenIdle: a closing owner's queue lets its timer go with the last pending deadline, and still works after", () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const fired: string[] = [];
    // A request ends long before its deadline: the timer stays armed (cancelling only unlinks)...
    const a = q.add(1000, (x) => fired.push(x), "a");
    const b = q.add(2000, (x) => fired.push(x), "b");
    q.cancel(a);
    expect(clock.pendingTimers).toBe(1);
    // ...until the owner closes: with one deadline still pending the timer stays, for it.
    q.dropWhenIdle();
    expect(clock.pendingTimers).toBe(1);
    q.cancel(b);
    expect(clock.pendingTimers).toBe(0);
    expect(q.size).toBe(0);
    // A deadline added afterwards (a request that raced the close) still fires when due.
    q.add(100, (x) => fired.push(`${x}@${clock.t}`), "late");
    clock.advance(100);
    expect(fired).toEqual(["late@100"]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("dropWhenIdle on an idle queue drops the armed timer at once; a deadline that fires last leaves none either", () => {
    const clock = new FakeClock();
    const idle = new DeadlineQueue(clock);
    idle.cancel(idle.add(500, () => {}, undefined));
    expect(clock.pendingTimers).toBe(1);
    idle.dropWhenIdle();
    expect(clock.pendingTimers).toBe(0);

    const q = new DeadlineQueue(clock);
    const fired: number[] = [];
    q.add(300, (x) => fired.push(x), 1);
    q.dropWhenIdle();
    clock.advance(300);
    expect(fired).toEqual([1]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("two queues on two clocks keep apart: each channel's deadlines run on its own clock", () => {
    const c1 = new FakeClock();
    const c2 = new FakeClock();
    const q1 = new DeadlineQueue(c1);
    const q2 = new DeadlineQueue(c2);
    const fired: string[] = [];
    q1.add(100, (x) => fired.push(x), "one");
    q2.add(100, (x) => fired.push(x), "two");
    c1.advance(100);
    expect(fired).toEqual(["one"]);
    expect(c2.pendingTimers).toBe(1);
    c2.advance(100);
    expect(fired).toEqual(["one", "two"]);
  });
});

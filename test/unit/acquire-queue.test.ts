import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AcquireQueue } from "../../src/supervisor/acquire-queue.js";

class TimeoutErr extends Error {}
class FullErr extends Error {}
const onTimeout = (): Error => new TimeoutErr("no member in time");
const onFull = (): Error => new FullErr("queue full");

/** Tracks how each promise settled, without unhandled rejections. */
function track<T>(p: Promise<T>): { state: "pending" | "resolved" | "rejected"; value?: T; error?: unknown } {
  const t: { state: "pending" | "resolved" | "rejected"; value?: T; error?: unknown } = { state: "pending" };
  p.then(
    (v) => {
      t.state = "resolved";
      t.value = v;
    },
    (e: unknown) => {
      t.state = "rejected";
      t.error = e;
    },
  );
  return t;
}

/** A take() that hands out the given values in order, then undefined. */
function supply<T>(values: T[]): () => T | undefined {
  const q = [...values];
  return () => q.shift();
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("AcquireQueue", () => {
  it("serves waiters in FIFO order", async () => {
    const q = new AcquireQueue<number>(10);
    const ws = [0, 1, 2, 3, 4].map(() => track(q.wait(1000, undefined, onTimeout, onFull)));
    expect(q.length).toBe(5);
    q.serve(supply([10, 11, 12]));
    await vi.advanceTimersByTimeAsync(0);
    expect(ws.map((w) => w.value)).toEqual([10, 11, 12, undefined, undefined]);
    expect(q.length).toBe(2);
    q.serve(supply([13, 14, 15]));
    await vi.advanceTimersByTimeAsync(0);
    expect(ws.map((w) => w.value)).toEqual([10, 11, 12, 13, 14]);
    expect(q.length).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("serve stops when take() returns undefined and leaves the rest waiting", async () => {
    const q = new AcquireQueue<string>(10);
    const a = track(q.wait(1000, undefined, onTimeout, onFull));
    const b = track(q.wait(1000, undefined, onTimeout, onFull));
    const take = vi.fn(supply(["x"]));
    q.serve(take);
    await vi.advanceTimersByTimeAsync(0);
    expect(take).toHaveBeenCalledTimes(2);
    expect(a.value).toBe("x");
    expect(b.state).toBe("pending");
    expect(q.length).toBe(1);
    // A serve with nothing waiting does not call take().
    const q2 = new AcquireQueue<string>(10);
    const take2 = vi.fn(() => "y");
    q2.serve(take2);
    expect(take2).not.toHaveBeenCalled();
    q.rejectAll(new Error("done"));
  });

  it("rejects with onFull() once `limit` callers are waiting", async () => {
    const q = new AcquireQueue<number>(3);
    const ws = [0, 1, 2].map(() => track(q.wait(1000, undefined, onTimeout, onFull)));
    const over = track(q.wait(1000, undefined, onTimeout, onFull));
    await vi.advanceTimersByTimeAsync(0);
    expect(over.state).toBe("rejected");
    expect(over.error).toBeInstanceOf(FullErr);
    expect(q.length).toBe(3);
    expect(ws.every((w) => w.state === "pending")).toBe(true);
    // A served waiter frees a place.
    q.serve(supply([1]));
    const again = track(q.wait(1000, undefined, onTimeout, onFull));
    await vi.advanceTimersByTimeAsync(0);
    expect(again.state).toBe("pending");
    expect(q.length).toBe(3);
    q.rejectAll(new Error("done"));
  });

  it("limit 0 sheds every caller at once", async () => {
    const q = new AcquireQueue<number>(0);
    const w = track(q.wait(1000, undefined, onTimeout, onFull));
    await vi.advanceTimersByTimeAsync(0);
    expect(w.error).toBeInstanceOf(FullErr);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("times out a waiter with onTimeout() and removes it", async () => {
    const q = new AcquireQueue<number>(10);
    const early = track(q.wait(100, undefined, onTimeout, onFull));
    const late = track(q.wait(300, undefined, onTimeout, onFull));
    await vi.advanceTimersByTimeAsync(99);
    expect(early.state).toBe("pending");
    await vi.advanceTimersByTimeAsync(1);
    expect(early.state).toBe("rejected");
    expect(early.error).toBeInstanceOf(TimeoutErr);
    expect(q.length).toBe(1);
    // The timed-out waiter is skipped: the next value goes to the one still waiting.
    q.serve(supply([42]));
    await vi.advanceTimersByTimeAsync(0);
    expect(late.value).toBe(42);
    expect(q.length).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("abort rejects with the signal's reason and removes the waiter", async () => {
    const q = new AcquireQueue<number>(10);
    const ac = new AbortController();
    const reason = new Error("caller gave up");
    const w = track(q.wait(1000, ac.signal, onTimeout, onFull));
    const other = track(q.wait(1000, undefined, onTimeout, onFull));
    ac.abort(reason);
    await vi.advanceTimersByTimeAsync(0);
    expect(w.error).toBe(reason);
    expect(q.length).toBe(1);
    q.serve(supply([7]));
    await vi.advanceTimersByTimeAsync(0);
    expect(other.value).toBe(7);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("an already-aborted signal rejects at once without queueing", async () => {
    const q = new AcquireQueue<number>(10);
    const reason = new Error("too late");
    const w = track(q.wait(1000, AbortSignal.abort(reason), onTimeout, onFull));
    await vi.advanceTimersByTimeAsync(0);
    expect(w.error).toBe(reason);
    expect(q.length).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("abort with a non-Error reason still rejects with an Error", async () => {
    const q = new AcquireQueue<number>(10);
    const ac = new AbortController();
    const w = track(q.wait(1000, ac.signal, onTimeout, onFull));
    ac.abort("string reason");
    await vi.advanceTimersByTimeAsync(0);
    expect(w.error).toBeInstanceOf(Error);
  });

  it("a served waiter no longer reacts to its signal or timeout", async () => {
    const q = new AcquireQueue<number>(10);
    const ac = new AbortController();
    const w = track(q.wait(100, ac.signal, onTimeout, onFull));
    q.serve(supply([5]));
    ac.abort(new Error("later"));
    await vi.advanceTimersByTimeAsync(1000);
    expect(w.state).toBe("resolved");
    expect(w.value).toBe(5);
    expect(q.length).toBe(0);
  });

  it("rejectAll fails every waiter with the error and empties the queue", async () => {
    const q = new AcquireQueue<number>(10);
    const ac = new AbortController();
    const ws = [track(q.wait(1000, undefined, onTimeout, onFull)), track(q.wait(1000, ac.signal, onTimeout, onFull))];
    q.serve(supply([1]));
    const rest = [track(q.wait(1000, undefined, onTimeout, onFull)), track(q.wait(2000, undefined, onTimeout, onFull))];
    const closed = new Error("channel closed");
    q.rejectAll(closed);
    await vi.advanceTimersByTimeAsync(0);
    expect(ws[0]!.value).toBe(1);
    expect([ws[1], ...rest].map((w) => w!.error)).toEqual([closed, closed, closed]);
    expect(q.length).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    // The queue still works afterwards.
    const after = track(q.wait(1000, undefined, onTimeout, onFull));
    q.serve(supply([9]));
    await vi.advanceTimersByTimeAsync(0);
    expect(after.value).toBe(9);
  });

  it("a sustained backlog (5000 waiting, serve one, add one) stays bounded, FIFO, and leaves no timers", async () => {
    const limit = 5000;
    const q = new AcquireQueue<number>(limit);
    const served: number[] = [];
    let nextWaiter = 0;
    let sheds = 0;
    const byWaiter: Array<[number, number]> = [];
    const closing = new Error("closing");
    let closed = 0;
    const unexpected: unknown[] = [];
    const add = (): void => {
      const id = nextWaiter++;
      q.wait(60_000, undefined, onTimeout, onFull).then(
        (v) => {
          served.push(v);
          byWaiter.push([id, v]);
        },
        (e: unknown) => {
          if (e instanceof FullErr) sheds++;
          else if (e === closing) closed++;
          else unexpected.push(e);
        },
      );
    };
    for (let i = 0; i < limit; i++) add();
    expect(q.length).toBe(limit);
    let maxLength = q.length;
    let nextValue = 0;
    for (let round = 0; round < 20_000; round++) {
      let once = false;
      q.serve(() => {
        if (once) return undefined;
        once = true;
        return nextValue++;
      });
      add();
      if (round % 7 === 0) add(); // sometimes more arrive than leave: those are shed
      maxLength = Math.max(maxLength, q.length);
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(maxLength).toBeLessThanOrEqual(limit);
    expect(q.length).toBe(limit);
    expect(served).toHaveLength(20_000);
    // FIFO: in the order the (not shed) waiters arrived, the values they got are 0, 1, 2, …
    byWaiter.sort((a, b) => a[0] - b[0]);
    const outOfOrder = byWaiter.filter(([, v], i) => v !== i).length;
    expect(outOfOrder).toBe(0);
    expect(served.slice(0, 3)).toEqual([0, 1, 2]);
    expect(sheds).toBeGreaterThan(0);
    expect(vi.getTimerCount()).toBe(limit);
    q.rejectAll(closing);
    await vi.advanceTimersByTimeAsync(0);
    expect(closed).toBe(limit);
    expect(unexpected).toEqual([]);
    expect(q.length).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("waiters that time out while the queue never drains do not pile up in memory", async () => {
    // Observed through GC: a waiter that timed out must become collectable even
    // though other waiters keep the queue non-empty and no member ever appears.
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const q = new AcquireQueue<number>(100);
    const refs: Array<WeakRef<AbortSignal>> = [];
    const addWaiter = (): void => {
      const ac = new AbortController();
      refs.push(new WeakRef(ac.signal));
      q.wait(100, ac.signal, onTimeout, onFull).catch(() => {});
    };
    // One caller every 2 ms, each waiting 100 ms: about 50 waiting at any time, never 0.
    for (let t = 0; t < 4000; t += 2) {
      addWaiter();
      await vi.advanceTimersByTimeAsync(2);
      expect(q.length).toBeGreaterThan(0);
      expect(q.length).toBeLessThanOrEqual(100);
    }
    vi.useRealTimers();
    await new Promise((r) => setImmediate(r));
    gc();
    await new Promise((r) => setImmediate(r));
    gc();
    // The first 1000 waiters timed out long ago; none of them should still be held.
    const alive = refs.slice(0, 1000).filter((r) => r.deref() !== undefined).length;
    expect(alive, "timed-out waiters still referenced by the queue").toBe(0);
    q.rejectAll(new Error("done"));
  });
});

import { describe, expect, it } from "vitest";
import type { Clock, Timer } from "../../src/core/clock.js";
import type { ChannelEvent } from "../../src/core/events.js";
import { Listeners } from "../../src/core/listeners.js";
import { hedgedAttempts } from "../../src/dispatch/hedge.js";
import { HedgeTiming } from "../../src/dispatch/hedge-timing.js";
import type { AttemptContext, DispatchLease, LeaseSource } from "../../src/dispatch/lease.js";

/**
 * A hedged call's attempts get their cancel signal from a shared pool
 * (bench/tail: creating one per attempt was a third of what a hedged call
 * allocated beyond an unhedged one). Reuse must never let one call's cancel
 * reach another's attempt: only a signal that never aborted, that nothing
 * listens on any more, that is not combined with the caller's and that no
 * streamed response still runs on goes back. Scripted time: timers fire only
 * when the test fires them.
 */
class HandClock implements Clock {
  t = 0;
  #timers: { fn: () => void; live: boolean }[] = [];
  now = (): number => this.t;
  wall = (): number => this.t;
  setTimeout(fn: () => void, ms: number): Timer {
    const timer = { fn, live: true };
    this.#timers.push(timer);
    void ms;
    return { cancel: () => void (timer.live = false) };
  }
  /** Fires every live timer (the hedge delay has passed). */
  fireAll(t: number): void {
    this.t = t;
    const due = this.#timers.filter((x) => x.live);
    this.#timers = [];
    for (const x of due) {
      x.live = false;
      x.fn();
    }
  }
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

function setup() {
  const clock = new HandClock();
  const members = [1, 2, 3].map((id) => ({ key: `m${id}`, id }));
  let next = 0;
  const lease = (member: { key: string; id: number }): DispatchLease<null> => ({ member, connection: null, release: () => {} });
  const source: LeaseSource<null> = {
    acquire: () => Promise.resolve(lease(members[next++ % 3]!)),
    tryAcquire: (exclude) => {
      for (let k = 0; k < 3; k++) {
        const m = members[next++ % 3]!;
        if (!(exclude ?? []).includes(m)) return lease(m);
      }
      return undefined;
    },
    noteError: () => undefined,
    events: new Listeners<ChannelEvent>(),
    clock,
  };
  // A fixed delay and no maxExtraLoad: a hedge goes out exactly when the test fires the timer.
  const timing = new HedgeTiming({ delay: 10, max: 1, maxExtraLoad: false });
  /** Each attempt's context, and a way to answer it, in the order attempts went out. */
  const attempts: { ctx: AttemptContext; answer: () => void }[] = [];
  const call = (how: { signal?: AbortSignal; stream?: boolean; keepListening?: boolean } = {}): Promise<string> =>
    hedgedAttempts(
      source,
      { target: "fake", timeout: 5000, idempotent: true, maxRetries: 0, acquireTimeout: 1000, signal: how.signal },
      (_lease, ctx) =>
        new Promise<string>((resolve, reject) => {
          if (how.stream) ctx.keepLease();
          // As a transport does: listen while the attempt runs, stop when it settles (unless told not to).
          const onAbort = (): void => reject(new Error("cancelled"));
          ctx.signal?.addEventListener("abort", onAbort, { once: true });
          attempts.push({
            ctx,
            answer: () => {
              if (!how.keepListening) ctx.signal?.removeEventListener("abort", onAbort);
              resolve(`attempt ${ctx.attempt}`);
            },
          });
        }),
      undefined,
      timing,
    );
  return { clock, attempts, call };
}

describe("a hedged call's cancel signals, reused", () => {
  it("an attempt answered before any hedge hands its signal, unaborted, to the next call", async () => {
    const { attempts, call } = setup();
    const first = call();
    await flush();
    attempts[0]!.answer();
    await expect(first).resolves.toBe("attempt 1");
    const second = call();
    await flush();
    expect(attempts[1]!.ctx.signal).toBe(attempts[0]!.ctx.signal);
    expect(attempts[1]!.ctx.signal?.aborted).toBe(false);
    attempts[1]!.answer();
    await expect(second).resolves.toBe("attempt 1");
  });

  it("a first attempt a hedge beat is cancelled, and its signal is never handed on", async () => {
    const { clock, attempts, call } = setup();
    const hedged = call();
    await flush();
    clock.fireAll(11);
    await flush();
    expect(attempts.length).toBe(2);
    attempts[1]!.answer();
    await expect(hedged).resolves.toBe("attempt 2");
    const loser = attempts[0]!.ctx.signal as AbortSignal;
    expect(loser.aborted).toBe(true);
    // The winner's signal went back (never aborted, no listener): the next two calls get it and a fresh one.
    const later = [call(), call()];
    await flush();
    const given = [attempts[2]!.ctx.signal, attempts[3]!.ctx.signal];
    expect(given).not.toContain(loser);
    expect(given).toContain(attempts[1]!.ctx.signal);
    expect(given.map((s) => s?.aborted)).toEqual([false, false]);
    attempts[2]!.answer();
    attempts[3]!.answer();
    await Promise.all(later);
  });

  it("a signal something still listens on, or a streamed response still runs on, is not handed on", async () => {
    for (const how of [{ keepListening: true }, { stream: true }]) {
      const { attempts, call } = setup();
      const first = call(how);
      await flush();
      attempts[0]!.answer();
      await first;
      const second = call();
      await flush();
      expect(attempts[1]!.ctx.signal).not.toBe(attempts[0]!.ctx.signal);
      attempts[1]!.answer();
      await second;
    }
  });

  it("with the caller's signal an attempt's is combined with it, and its controller is never handed on", async () => {
    const { clock, attempts, call } = setup();
    const first = call({ signal: new AbortController().signal });
    await flush();
    attempts[0]!.answer();
    await first;
    // The next call's first attempt is beaten by its hedge and cancelled: were it running on the first
    // call's controller, that cancel would reach the first call's combined signal too.
    const second = call();
    await flush();
    clock.fireAll(11);
    await flush();
    attempts[2]!.answer();
    await expect(second).resolves.toBe("attempt 2");
    expect(attempts[1]!.ctx.signal?.aborted).toBe(true);
    expect(attempts[0]!.ctx.signal?.aborted).toBe(false);
  });
});

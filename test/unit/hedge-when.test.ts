import { describe, expect, it } from "vitest";
import type { Clock, Timer } from "../../src/core/clock.js";
import type { ChannelEvent } from "../../src/core/events.js";
import { Listeners } from "../../src/core/listeners.js";
import { STALLED_LOOP_MS, hedgedAttempts } from "../../src/dispatch/hedge.js";
import { HedgeTiming } from "../../src/dispatch/hedge-timing.js";
import type { Attempt, DispatchLease, LeaseSource } from "../../src/dispatch/lease.js";

/**
 * When a hedge goes out (issue 25, item 8), in scripted time: a hand-driven
 * clock whose timers can be made to fire late, as they do after our own
 * event loop stalled, and attempts that answer only when the test says so.
 */
class ScriptedClock implements Clock {
  t = 0;
  #timers: { at: number; fn: () => void; live: boolean }[] = [];
  now = (): number => this.t;
  wall = (): number => this.t;
  setTimeout(fn: () => void, ms: number): Timer {
    const timer = { at: this.t + ms, fn, live: true };
    this.#timers.push(timer);
    return { cancel: () => void (timer.live = false) };
  }
  /** Time moves to `t`, firing due timers on time (each at its own due time). */
  async advance(t: number): Promise<void> {
    for (;;) {
      const next = this.#due(t);
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      this.#fire(next);
      await flush();
    }
    this.t = t;
  }
  /** The event loop was held up until `t`: every timer due by then fires late, at `t`. */
  async stallUntil(t: number): Promise<void> {
    this.t = t;
    // Only those due by now: a timer set while these run fires in the next turn, after I/O.
    const due = this.#timers.filter((x) => x.live && x.at <= t).sort((a, b) => a.at - b.at);
    for (const x of due) {
      if (!x.live) continue;
      this.#fire(x);
      await flush();
    }
  }
  #due(t: number) {
    return this.#timers.filter((x) => x.live && x.at <= t).sort((a, b) => a.at - b.at)[0];
  }
  #fire(x: { fn: () => void; live: boolean }): void {
    x.live = false;
    x.fn();
  }
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

type Member = { key: string; id: number };
const MEMBERS: Member[] = [1, 2, 3].map((id) => ({ key: `m${id}`, id }));

function setup(fixed?: HedgeTiming) {
  const clock = new ScriptedClock();
  const listeners = new Listeners<ChannelEvent>();
  let next = 0;
  /** How leases ended: released plainly, or superseded by another attempt's answer after running `ranMs`. */
  const ended: { member: string; how: "released" | "superseded"; ranMs?: number }[] = [];
  const lease = (member: Member): DispatchLease<null> => ({
    member,
    connection: null,
    release: () => void ended.push({ member: member.key, how: "released" }),
    superseded: (ranMs) => void ended.push({ member: member.key, how: "superseded", ranMs }),
  });
  const source: LeaseSource<null> = {
    acquire: () => Promise.resolve(lease(MEMBERS[next++ % MEMBERS.length] as Member)),
    tryAcquire: (exclude) => {
      for (let k = 0; k < MEMBERS.length; k++) {
        const m = MEMBERS[next++ % MEMBERS.length] as Member;
        if (!(exclude ?? []).includes(m)) return lease(m);
      }
      return undefined;
    },
    noteError: () => undefined,
    events: listeners,
    clock,
  };
  // A learnt delay of 10 ms (30 first attempts of 1 ms and 2 of 10: the p95 is 10, the median 1) and no
  // maxExtraLoad: only the rules under test decide.
  const timing = fixed ?? new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: false }, clock.now);
  if (!fixed) for (let i = 0; i < 32; i++) timing.record(i < 30 ? 1 : 10);
  /** Attempts sent per call, and a way to answer each call's first attempt (and its hedge). */
  const calls: { attempts: number; answer: () => void; answerHedge: () => void }[] = [];
  const start = (): number => {
    const i = calls.length;
    const call = { attempts: 0, answer: () => {}, answerHedge: () => {} };
    calls.push(call);
    const attempt: Attempt<null, string> = (_lease, ctx) => {
      call.attempts++;
      return new Promise<string>((resolve, reject) => {
        if (ctx.attempt === 1) call.answer = () => resolve(`call ${i}`);
        else call.answerHedge = () => resolve(`call ${i}, hedge`);
        ctx.signal?.addEventListener("abort", () => reject(new Error("cancelled")));
      });
    };
    void hedgedAttempts(source, { target: "fake", timeout: 5000, idempotent: true, maxRetries: 0, acquireTimeout: 1000 }, attempt, undefined, timing).catch(
      () => undefined,
    );
    return i;
  };
  return { clock, calls, start, ended };
}

describe("hedge: what the loser's member learns", () => {
  it("a first attempt cancelled by its hedge's answer is released as superseded, with the time it ran (a load sample, not an answer)", async () => {
    const { clock, calls, start, ended } = setup();
    start();
    await flush();
    await clock.advance(10);
    expect(calls[0]!.attempts).toBe(2);
    await clock.advance(13);
    calls[0]!.answerHedge();
    await flush();
    await flush();
    // The hedge (on m2) answered: a plain release with its latency; the first attempt (m1) ran 13 ms unanswered.
    expect(ended).toEqual([
      { member: "m2", how: "released" },
      { member: "m1", how: "superseded", ranMs: 13 },
    ]);
  });
});

describe("hedge: no hedge for a wait that is not the member's", () => {
  it("a call alone, unanswered at the delay, is hedged then (the control for the cases below)", async () => {
    const { clock, calls, start } = setup();
    start();
    await flush();
    await clock.advance(10);
    expect(calls[0]!.attempts).toBe(2);
  });

  it(`a hedge timer that fires late (our event loop stalled past the delay and ${STALLED_LOOP_MS} ms) waits for I/O: the answer read then wins, no hedge`, async () => {
    const { clock, calls, start } = setup();
    start();
    await flush();
    // A 40 ms stall: the timer due at 10 fires at 40, before the answer that sits in the socket is read.
    await clock.stallUntil(40);
    expect(calls[0]!.attempts).toBe(1);
    // I/O's turn: the answer is read; the look-again timer then finds the call done.
    calls[0]!.answer();
    await flush();
    await clock.advance(100);
    expect(calls[0]!.attempts).toBe(1);
  });

  it("after the stall, a call still unanswered once I/O had its turn is hedged", async () => {
    const { clock, calls, start } = setup();
    start();
    await flush();
    await clock.stallUntil(40);
    expect(calls[0]!.attempts).toBe(1);
    await clock.advance(41);
    expect(calls[0]!.attempts).toBe(2);
  });

  it("a call is hedged only once a call started after it was answered: while all later ones wait too, it waits", async () => {
    const { clock, calls, start } = setup();
    const a = start();
    await flush();
    await clock.advance(1);
    const b = start();
    await flush();
    // At 10 a is due, but b (started later) has no answer either: no hedge, look again at 20.
    await clock.advance(15);
    expect(calls[a]!.attempts).toBe(1);
    // b answers: a, still waiting, is slow on its own.
    calls[b]!.answer();
    await flush();
    await clock.advance(19);
    expect(calls[a]!.attempts).toBe(1);
    await clock.advance(20);
    expect(calls[a]!.attempts).toBe(2);
    // b, the latest call, had nothing to compare with: it was hedged at its own delay (11).
    expect(calls[b]!.attempts).toBe(2);
  });

  it("with a fixed delay the caller chose when to ask again: every call unanswered then is hedged, whatever the later ones do", async () => {
    const { clock, calls, start } = setup(new HedgeTiming({ delay: 10, max: 1, maxExtraLoad: false }));
    start();
    await flush();
    await clock.advance(1);
    start();
    await flush();
    await clock.advance(11);
    expect(calls.map((c) => c.attempts)).toEqual([2, 2]);
  });
});

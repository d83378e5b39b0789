import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ChannelEvent } from "../../src/core/events.js";
import { Listeners } from "../../src/core/listeners.js";
import { hedgedAttempts } from "../../src/dispatch/hedge.js";
import { HedgeTiming, resolveHedge } from "../../src/dispatch/hedge-timing.js";
import type { Attempt, DispatchLease, LeaseSource } from "../../src/dispatch/lease.js";
import { mulberry32 } from "../helpers/random.js";

/**
 * Hedged calls in fake time: three fake members whose attempts take a
 * scripted latency (a timer) and honour their attempt signal, calls started
 * open-loop every 2 ms. Latencies are in the hundreds of ms so that fake
 * timers' whole milliseconds do not skew a quantile. What is counted is what a backend would: attempts
 * sent per call.
 */
type Member = { key: string; id: number };
const MEMBERS: Member[] = [1, 2, 3].map((id) => ({ key: `m${id}`, id }));

function fakeSource(): { source: LeaseSource<null>; events: ChannelEvent[] } {
  const events: ChannelEvent[] = [];
  const listeners = new Listeners<ChannelEvent>();
  listeners.add((e) => events.push(e));
  let next = 0;
  const lease = (member: Member): DispatchLease<null> => ({ member, connection: null, release: () => undefined });
  const source: LeaseSource<null> = {
    acquire: () => Promise.resolve(lease(MEMBERS[next++ % MEMBERS.length] as Member)),
    tryAcquire: (exclude) => {
      const m = MEMBERS.find((x) => !exclude.includes(x));
      return m ? lease(m) : undefined;
    },
    noteError: () => undefined,
    events: listeners,
  };
  return { source, events };
}

interface Run {
  calls: number;
  attempts: number;
  /** Attempts each call sent. */
  perCall: number[];
  firstLatencies: number[];
  events: ChannelEvent[];
}

/** `calls` idempotent calls, one every 2 ms; `latency(member, callIndex)` scripts each attempt. */
async function run(timing: HedgeTiming, calls: number, latency: (member: Member, call: number) => number): Promise<Run> {
  const { source, events } = fakeSource();
  let attempts = 0;
  const perCall = new Array<number>(calls).fill(0);
  const firstLatencies: number[] = [];
  const done: Promise<unknown>[] = [];
  for (let i = 0; i < calls; i++) {
    setTimeout(() => {
      const attempt: Attempt<null, number> = (lease, ctx) => {
        attempts++;
        perCall[i] = (perCall[i] ?? 0) + 1;
        const ms = latency(lease.member as Member, i);
        if (ctx.attempt === 1) firstLatencies.push(ms);
        return new Promise((resolve, reject) => {
          const t = setTimeout(() => resolve(ms), ms);
          ctx.signal?.addEventListener("abort", () => {
            clearTimeout(t);
            reject(new Error("cancelled"));
          });
        });
      };
      done.push(hedgedAttempts(source, { target: "fake", timeout: 5000, idempotent: true, maxRetries: 0, acquireTimeout: 1000 }, attempt, undefined, timing));
    }, i * 2);
  }
  await vi.advanceTimersByTimeAsync(calls * 2 + 6000);
  await Promise.all(done);
  return { calls, attempts, perCall, firstLatencies, events };
}

/** The bench's tail scenario, scaled: base latency 100–300 ms, member 1 answers 10 % of its attempts 3 s late. */
function tailLatency(seed: number): (member: Member) => number {
  const random = mulberry32(seed);
  return (member) => (member.id === 1 && random() < 0.1 ? 3000 : 0) + 100 + 200 * random();
}

const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.ceil(q * xs.length) - 1] as number;

describe('hedge delay "p95" learns from first attempts, cancelled ones as censored samples', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("hedges about 5 % of calls, at about the first attempts' true p95 (no maxExtraLoad, so only the delay decides)", async () => {
    const timing = new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: false });
    const r = await run(timing, 2000, tailLatency(7));
    const extra = r.attempts / r.calls - 1;
    // Learning from whichever attempt won records each stalled call (3.3 % of calls) as its fast
    // hedge: the p95 then runs low and about 8 % of calls are hedged. From first attempts: 5 %.
    expect(extra).toBeGreaterThan(0.04);
    expect(extra).toBeLessThan(0.065);
    const truth = quantile(r.firstLatencies, 0.95);
    // (Learnt from winners it ends near 0.97 × the truth, where 9 % of first attempts are slower.)
    expect(timing.delayMs()).toBeGreaterThan(truth * 0.98);
    expect(timing.delayMs()).toBeLessThan(truth * 1.03);
  });

  it("a delay learnt low climbs back: censored samples sit above it, so the p95 they give is not below the truth", async () => {
    const timing = new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: false });
    // Learnt at 50 ms (every first attempt took 10–50 ms), then every attempt takes 100–300 ms:
    // at first every call is hedged; each cancelled first attempt records ≥ 50 ms + the hedge's time.
    for (let i = 0; i < 512; i++) timing.record(10 + 10 * (i % 5));
    expect(timing.delayMs()).toBe(50);
    const random = mulberry32(3);
    const r = await run(timing, 1500, () => 100 + 200 * random());
    const truth = quantile(r.firstLatencies, 0.95);
    expect(timing.delayMs()).toBeGreaterThan(truth * 0.95);
    // Once the low samples have left the window (512 calls), calls are hedged at about the true rate.
    const late = r.perCall.slice(600);
    expect(late.reduce((a, b) => a + b, 0) / late.length - 1).toBeLessThan(0.065);
  });
});

describe("hedge.maxExtraLoad: a budget of hedges per hedgeable call", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("when more calls are overdue than maxExtraLoad allows, the hedges stop at 5 % + 1/s; each refusal an event", async () => {
    // A delay at the median: half the calls are overdue. Without the bound half are hedged.
    const latency = (seed: number) => {
      const random = mulberry32(seed);
      return () => 100 + 200 * random();
    };
    const loose = await run(new HedgeTiming({ delay: 200, max: 1, maxExtraLoad: false }), 1500, latency(5));
    const bounded = await run(new HedgeTiming({ delay: 200, max: 1, maxExtraLoad: 0.05 }), 1500, latency(5));
    expect(loose.attempts - loose.calls).toBeGreaterThan(600);
    // 1500 calls over 3 s: 5 % of them, plus the floor of one a second over the 10 s window.
    expect(bounded.attempts - bounded.calls).toBeLessThanOrEqual(0.05 * 1500 + 10);
    expect(bounded.attempts - bounded.calls).toBeGreaterThan(0.05 * 1500 - 5);
    const refused = bounded.events.filter((e) => e.type === "retry-budget-exhausted");
    expect(refused.length).toBeGreaterThan(500);
    expect(refused.every((e) => e.type === "retry-budget-exhausted" && e.kind === "hedge-load")).toBe(true);
  });

  it("the budget slides: fake-clock deposits buy 5 % of hedges each, plus one a second, over 10 s", () => {
    let t = 0;
    const timing = new HedgeTiming({ delay: 20, max: 1, maxExtraLoad: 0.05 }, () => t);
    for (let i = 0; i < 1000; i++) timing.deposit(t);
    let allowed = 0;
    for (let i = 0; i < 200; i++) if (timing.tryWithdraw()) allowed++;
    expect(allowed).toBe(60);
    // 10 s later those calls and hedges have left the window: only the floor is left.
    t += 10_500;
    allowed = 0;
    for (let i = 0; i < 200; i++) if (timing.tryWithdraw()) allowed++;
    expect(allowed).toBe(10);
    // Without the bound, every hedge may go (the retry budget still applies, in the call).
    const free = new HedgeTiming({ delay: 20, max: 1, maxExtraLoad: false }, () => t);
    for (let i = 0; i < 200; i++) expect(free.tryWithdraw()).toBe(true);
  });

  it("options: 0.05 by default with p95, off with a fixed delay; a share in (0, 1] or false", () => {
    expect(resolveHedge({})?.maxExtraLoad).toBe(0.05);
    expect(resolveHedge({ delay: 20 })?.maxExtraLoad).toBe(false);
    expect(resolveHedge({ delay: 20, maxExtraLoad: 0.1 })?.maxExtraLoad).toBe(0.1);
    expect(resolveHedge({ maxExtraLoad: false })?.maxExtraLoad).toBe(false);
    for (const bad of [0, -0.1, 1.5, "5%", Number.NaN]) expect(() => resolveHedge({ maxExtraLoad: bad })).toThrow("hedge.maxExtraLoad");
  });
});

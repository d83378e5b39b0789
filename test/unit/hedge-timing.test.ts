import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import { HedgeTiming, resolveHedge } from "../../src/dispatch/hedge-timing.js";
import { Pool, type PoolMemberRef } from "../../src/pool/pool.js";
import { mulberry32 } from "../helpers/random.js";

describe("HedgeTiming: when a call's next hedge is due", () => {
  it("a fixed delay is that delay, whatever was recorded", () => {
    const t = new HedgeTiming({ delay: 40, max: 2, maxExtraLoad: false });
    for (let i = 0; i < 100; i++) t.record(1000);
    expect(t.delayMs()).toBe(40);
    expect(t.max).toBe(2);
  });

  it('"p95": no hedging before 32 samples, then the 95th percentile of the recent ones', () => {
    const t = new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: 0.05 });
    // Twenty of 1 ms, then 21..32 (a median of 1, well below the p95).
    for (let i = 1; i <= 31; i++) t.record(i <= 20 ? 1 : i);
    expect(t.delayMs()).toBeUndefined();
    t.record(32);
    expect(t.delayMs()).toBe(31); // ceil(0.95 × 32) = 31st smallest
    // Samples of 1 ms (60 in 100) and 61..100 (the p95 is re-sorted every 32 samples): 95.
    const u = new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: 0.05 });
    for (let i = 0; i < 128; i++) u.record(i % 100 < 60 ? 1 : (i % 100) + 1);
    expect(u.delayMs()).toBeGreaterThanOrEqual(90);
    expect(u.delayMs()).toBeLessThanOrEqual(96);
  });

  it('"p95" follows the recent window (512 samples): old latencies leave', () => {
    const t = new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: 0.05 });
    // 1 ms, and one sample in 20 (26 of 512) slow: the p95 is the slow one.
    for (let i = 0; i < 512; i++) t.record(i % 20 === 0 ? 500 : 1);
    expect(t.delayMs()).toBe(500);
    for (let i = 0; i < 512; i++) t.record(i % 20 === 0 ? 7 : 1);
    expect(t.delayMs()).toBe(7);
    t.record(Number.NaN);
    t.record(-1);
    expect(t.delayMs()).toBe(7);
  });

  it('a "p95" within 5 medians is no delay: the delay is then 5 × the median (a hedge there rarely answers first)', () => {
    const t = new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: 0.05 });
    // 100..298 ms evenly: the p95 (~290) is under 2 medians (~200).
    for (let i = 0; i < 512; i++) t.record(100 + 2 * (i % 100));
    expect(t.delayMs()).toBeGreaterThanOrEqual(5 * 190);
    expect(t.delayMs()).toBeLessThanOrEqual(5 * 200);
    // 1 ms mostly, 5 % at 30..40 ms: the p95 (30) is past 5 medians (5).
    for (let i = 0; i < 512; i++) t.record(i % 20 === 0 ? 30 + (i % 11) : 1);
    expect(t.delayMs()).toBeGreaterThanOrEqual(30);
    expect(t.delayMs()).toBeLessThanOrEqual(40);
  });

  it('"p95" moves up to p98 while maxExtraLoad refuses hedges, and back towards p95 once hedges win', () => {
    const t = new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: 0.05 }, () => 0);
    // 1 ms for 60 in 100, then 61..100 ms: the k-th percentile past the 60th is about k ms.
    const feed = (n: number) => {
      for (let i = 0; i < n; i++) t.record(i % 100 < 60 ? 1 : (i % 100) + 1);
    };
    feed(512);
    expect(t.percentile).toBe(0.95);
    const atP95 = t.delayMs() as number;
    expect(atP95).toBeGreaterThanOrEqual(94);
    expect(atP95).toBeLessThanOrEqual(96);
    // More hedges than the budget holds: some are refused (they wait in line).
    const waiting = Array.from({ length: 50 }, () => () => {});
    for (const w of waiting) t.tryWithdraw(w);
    expect(t.waiting).toBeGreaterThan(0);
    feed(32);
    expect(t.percentile).toBe(0.96);
    expect(t.delayMs()).toBeGreaterThan(atP95);
    // Refused in every recompute: it stops at p98.
    for (let k = 0; k < 6; k++) {
      t.tryWithdraw(() => {});
      feed(32);
    }
    expect(t.percentile).toBe(0.98);
    // Room again (the waiting calls ended), but no hedge answered since: nothing says the hedges
    // are worth more, and the percentile holds.
    for (const w of waiting) t.leaveLine(w);
    for (let k = 0; k < 3; k++) feed(32);
    expect(t.percentile).toBe(0.98);
    // Hedges win: half a point down per recompute, to p95 and no lower.
    for (let k = 0; k < 10; k++) {
      for (let i = 0; i < 4; i++) t.hedgeAnswered(true);
      feed(32);
    }
    expect(t.percentile).toBe(0.95);
  });

  it('"p95" moves up while hedges lose (more than half of the hedged calls answered by their first attempt), and down while they do not', () => {
    const t = new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: false });
    const feed = () => {
      for (let i = 0; i < 32; i++) t.record((i % 100) + 1);
    };
    for (let k = 0; k < 16; k++) feed();
    expect(t.percentile).toBe(0.95);
    const answered = (won: number, lost: number) => {
      for (let i = 0; i < won; i++) t.hedgeAnswered(true);
      for (let i = 0; i < lost; i++) t.hedgeAnswered(false);
    };
    // 1 of 4 hedged calls answered by its hedge: a point up per recompute, to p98.
    answered(1, 3);
    feed();
    expect(t.percentile).toBe(0.96);
    answered(1, 3);
    feed();
    answered(1, 3);
    feed();
    expect(t.percentile).toBe(0.98);
    answered(1, 3);
    feed();
    expect(t.percentile).toBe(0.98);
    // Losing at p98 already: the floor of medians rises instead (its own test below); won back
    // first, ÷ √2 per recompute not losing, before the percentile moves.
    expect(t.medians).toBe(10);
    answered(2, 2);
    feed();
    answered(2, 2);
    feed();
    expect(t.medians).toBe(5);
    expect(t.percentile).toBe(0.98);
    // Half won: not losing, so half a point down.
    answered(2, 2);
    feed();
    expect(t.percentile).toBe(0.975);
    // Fewer than 4 outcomes say nothing: the percentile holds, and they count on into the next recompute.
    answered(0, 3);
    feed();
    expect(t.percentile).toBe(0.975);
    answered(0, 1);
    feed();
    expect(t.percentile).toBe(0.98); // 0.975 + 0.01, no higher than p98
    // Not losing from then on: back to p95.
    for (let k = 0; k < 10; k++) {
      answered(2, 2);
      feed();
    }
    expect(t.percentile).toBe(0.95);
  });

  it('"p95": hedges still losing at p98 raise the floor from 5 medians, doubling to 20 at most, and winning ones bring it back', () => {
    const t = new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: false });
    // A median of 1 ms and 3 % at 3 ms: p95 and p98 sit inside 5 medians, the body of the distribution.
    const feed = () => {
      for (let i = 0; i < 32; i++) t.record(i === 0 ? 3 : 1);
    };
    for (let k = 0; k < 16; k++) feed();
    expect(t.delayMs()).toBe(5);
    const answered = (won: number, lost: number) => {
      for (let i = 0; i < won; i++) t.hedgeAnswered(true);
      for (let i = 0; i < lost; i++) t.hedgeAnswered(false);
    };
    // Losing: the percentile rises a point per recompute first (p98 is still within 5 medians) ...
    for (let k = 0; k < 3; k++) {
      answered(1, 3);
      feed();
    }
    expect(t.percentile).toBe(0.98);
    expect(t.delayMs()).toBe(5);
    // ... then, still losing at p98, the floor doubles: 10 medians, 20, and no further.
    const delays: number[] = [];
    for (let k = 0; k < 3; k++) {
      answered(1, 3);
      feed();
      delays.push(t.delayMs() as number);
    }
    expect(delays).toEqual([10, 20, 20]);
    // Too few outcomes to tell: it holds.
    answered(1, 2);
    feed();
    expect(t.delayMs()).toBe(20);
    // Winning: ÷ √2 per recompute, back to 5 medians, and only then the percentile comes down.
    const back: number[] = [];
    for (let k = 0; k < 5; k++) {
      answered(3, 1);
      feed();
      back.push(Math.round((t.delayMs() as number) * 100) / 100);
    }
    expect(back).toEqual([14.14, 10, 7.07, 5, 5]);
    expect(t.percentile).toBe(0.975);
  });

  it("maxExtraLoad refusing hedges at p98 raises the floor of medians too", () => {
    const t = new HedgeTiming({ delay: "p95", max: 1, maxExtraLoad: 0.05 }, () => 0);
    const feed = () => {
      for (let i = 0; i < 32; i++) t.record(i === 0 ? 3 : 1);
    };
    for (let k = 0; k < 16; k++) feed();
    const refusedFeed = () => {
      // The budget (at least one hedge a second, 5 % of the calls) has room for a few; the rest wait.
      for (let i = 0; i < 30; i++) t.tryWithdraw(() => {});
      feed();
    };
    for (let k = 0; k < 3; k++) refusedFeed();
    expect(t.percentile).toBe(0.98);
    expect(t.delayMs()).toBe(5);
    refusedFeed();
    expect(t.delayMs()).toBe(10);
  });

  it("options: off unless given; defaults p95 and 1; bad values are ConfigErrors naming the option", () => {
    expect(resolveHedge(undefined)).toBeUndefined();
    expect(resolveHedge(false)).toBeUndefined();
    expect(resolveHedge({})).toEqual({ delay: "p95", max: 1, maxExtraLoad: 0.05 });
    expect(resolveHedge({ delay: 20, max: 3 })).toEqual({ delay: 20, max: 3, maxExtraLoad: false });
    for (const [input, option] of [
      [{ delay: 0 }, "hedge.delay"],
      [{ delay: "p99" }, "hedge.delay"],
      [{ max: 0 }, "hedge.max"],
      [{ max: 1.5 }, "hedge.max"],
      [{ dealy: 5 }, "hedge.dealy"],
      [5, "hedge"],
    ] as const) {
      expect(() => resolveHedge(input), option).toThrow(ConfigError);
      expect(() => resolveHedge(input)).toThrow(option);
    }
  });
});

describe("Pool.pick(exclude): a hedge goes to a different member or nowhere", () => {
  it("never returns an excluded member; undefined when only excluded ones are usable", () => {
    const pool = new Pool<null>({ balancer: "in-flight", random: mulberry32(11) });
    const ms = [1, 2, 3].map((i) => {
      const m = pool.admit(i, `k${i}`, null);
      pool.setPickable(m, true);
      return m;
    });
    const [a, b, c] = ms as [PoolMemberRef<null>, PoolMemberRef<null>, PoolMemberRef<null>];
    for (let i = 0; i < 200; i++) {
      const m = pool.pick([a]) as PoolMemberRef<null>;
      expect(m === b || m === c).toBe(true);
      pool.release(m, 1);
    }
    // One usable member left: a draw that touches an excluded one looks at every member, so c always.
    let toC = 0;
    for (let i = 0; i < 200; i++) {
      const m = pool.pick([a, b]);
      expect(m === c || m === undefined).toBe(true);
      if (m) {
        toC++;
        pool.release(m, 1);
      }
    }
    expect(toC).toBe(200);
    expect(pool.pick([a, b, c])).toBeUndefined();
    expect(ms.every((m) => m.inFlight === 0)).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import { InFlight, PeakEwma } from "../../src/pool/load.js";
import { Pool, type PoolMemberRef } from "../../src/pool/pool.js";
import { mulberry32 } from "../helpers/random.js";

/** A hand-driven clock, ms. */
function fakeClock(start = 0): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms), set: (ms) => (t = ms) };
}

/** A PeakEwma on a fake clock; `rtt` is the member's PING round trip (setRtt changes it, as the health loop does). */
function peakEwma(decay = 10_000, rtt?: number) {
  const clock = fakeClock();
  const load = new PeakEwma({ now: clock.now, decay });
  load.setRtt(rtt);
  return { load, clock };
}

describe("InFlight (tower's PendingRequests)", () => {
  it("counts started minus ended requests, never below 0, and that count is its cost", () => {
    const l = new InFlight();
    expect(l.inFlight).toBe(0);
    expect(l.cost()).toBe(0);
    for (let i = 0; i < 5; i++) l.start();
    expect(l.inFlight).toBe(5);
    expect(l.cost()).toBe(5);
    l.end(1000); // a latency sample means nothing to it
    expect(l.cost()).toBe(4);
    for (let i = 0; i < 10; i++) l.end();
    expect(l.inFlight).toBe(0);
    expect(l.cost()).toBe(0);
    l.start();
    expect(l.cost()).toBe(1);
  });
});

describe("cost functions, as load objects (moved from picker.test.ts)", () => {
  it("peak-EWMA cost is latency × (in-flight + 1), falling back to the RTT, then 1", () => {
    const withRtt = (rtt: number | undefined, latency: number | undefined, inFlight: number): number => {
      const { load } = peakEwma(10_000, rtt);
      if (latency !== undefined) {
        load.start();
        load.end(latency);
      }
      for (let i = 0; i < inFlight; i++) load.start();
      return load.cost();
    };
    expect(withRtt(3, 100, 0)).toBe(100);
    expect(withRtt(3, 10, 2)).toBe(30);
    expect(withRtt(4, undefined, 1)).toBe(8);
    expect(withRtt(undefined, undefined, 3)).toBe(4);
  });
});

describe("PeakEwma: decays on read", () => {
  it("with no new sample, the cost falls with time toward the RTT (never below it)", () => {
    const { load, clock } = peakEwma(10_000, 5);
    load.start();
    load.end(1000);
    expect(load.cost()).toBe(1000);
    clock.set(10_000);
    expect(load.cost()).toBeCloseTo(1000 * Math.exp(-1), 6);
    expect(load.estimate()).toBeCloseTo(1000 * Math.exp(-1), 6);
    clock.set(30_000);
    expect(load.cost()).toBeCloseTo(1000 * Math.exp(-3), 6);
    // 1000·e^-6 ≈ 2.5 ms is below the 5 ms PING round trip: the RTT is the floor.
    clock.set(60_000);
    expect(load.estimate()).toBeLessThan(5);
    expect(load.cost()).toBe(5);
    clock.set(3_600_000);
    expect(load.cost()).toBe(5);
  });

  it("without an RTT it falls toward 1 ms; the in-flight count still multiplies it", () => {
    const { load, clock } = peakEwma(1000);
    load.start();
    load.end(500);
    load.start();
    load.start();
    expect(load.cost()).toBe(1500);
    clock.set(20_000);
    expect(load.cost()).toBe(3);
  });

  it("the RTT floor follows the member's current RTT (the health loop keeps updating it)", () => {
    const { load, clock } = peakEwma(1000, 2);
    load.start();
    load.end(100);
    clock.set(60_000);
    expect(load.cost()).toBe(2);
    load.setRtt(7);
    expect(load.cost()).toBe(7);
  });

  it("is monotonically non-increasing between samples, and reading changes nothing", () => {
    const read = peakEwma(10_000, 1);
    const unread = peakEwma(10_000, 1);
    for (const { load } of [read, unread]) {
      load.start();
      load.end(800);
    }
    let last = Number.POSITIVE_INFINITY;
    for (let t = 0; t <= 30_000; t += 250) {
      read.clock.set(t);
      const c = read.load.cost();
      expect(c).toBeLessThanOrEqual(last);
      last = c;
    }
    // Many reads, or none: the next sample lands on the same estimate.
    for (const { load, clock } of [read, unread]) {
      clock.set(30_000);
      load.start();
      load.end(10);
    }
    expect(read.load.estimate()).toBe(unread.load.estimate());
    expect(read.load.cost()).toBe(unread.load.cost());
  });
});

describe("PeakEwma: decay without Math.exp just after an update", () => {
  it("matches e^(-elapsed/decay) to within 1e-6 at every elapsed time, on both sides of the shortcut", () => {
    const decay = 10_000;
    for (const elapsed of [0, 0.001, 0.5, 5, 9.99, 10, 10.01, 50, 1000, 20_000]) {
      const { load, clock } = peakEwma(decay);
      load.start();
      load.end(100);
      clock.advance(elapsed);
      expect(Math.abs((load.estimate() as number) / (100 * Math.exp(-elapsed / decay)) - 1)).toBeLessThan(1e-6);
      // The clock reading passed by the pool gives the same as the load's own.
      expect(load.cost(clock.now())).toBe(load.cost());
    }
  });
});

describe("PeakEwma: peak-sensitive", () => {
  it("a slower sample replaces the estimate at once; a faster one moves it by the time elapsed", () => {
    const { load, clock } = peakEwma(1000);
    load.start();
    load.end(10);
    expect(load.estimate()).toBe(10);
    // No time has passed: a single slow answer still takes over entirely.
    load.start();
    load.end(500);
    expect(load.estimate()).toBe(500);
    // And a fast one at the same instant does not move it at all.
    load.start();
    load.end(1);
    expect(load.estimate()).toBe(500);
    clock.set(1000);
    load.start();
    load.end(0);
    expect(load.estimate()).toBeCloseTo(500 * Math.exp(-1), 6);
    load.start();
    load.end(500);
    expect(load.estimate()).toBe(500);
  });

  it("a peak is measured against the decayed estimate, not the stale one", () => {
    const { load, clock } = peakEwma(10_000);
    load.start();
    load.end(2000);
    clock.set(30_000); // decayed to 2000·e^-3 ≈ 99.6
    load.start();
    load.end(150);
    expect(load.estimate()).toBe(150);
  });

  it("ignores samples that are not durations (NaN, negative, infinite)", () => {
    const { load } = peakEwma();
    load.start();
    load.end(20);
    for (const bad of [Number.NaN, -5, Number.POSITIVE_INFINITY]) {
      load.start();
      load.end(bad);
      expect(load.inFlight).toBe(0);
      expect(load.estimate()).toBe(20);
    }
  });
});

describe("Pool with the peak-ewma balancer: a member slow once is not starved (issue 9, bug 3)", () => {
  /**
   * Three members that answer in 20 ms; one of them answers a single request
   * in 1.8 s and is fine again afterwards. Then one request a second for 10
   * simulated minutes. Before decay on read, the slow member's estimate only
   * changed when it was picked, so it lost every comparison: 0 of 600.
   */
  it("gets picks again within a minute, and a fair share over 10 simulated minutes", () => {
    const clock = fakeClock(1000);
    const pool = new Pool<null>({ balancer: "peak-ewma", random: mulberry32(3), now: clock.now });
    const ms = [1, 2, 3].map((i) => {
      const m = pool.admit(i, `127.0.0.${i + 1}:1`, null);
      pool.recordRtt(m, 2);
      pool.setPickable(m, true);
      return m;
    });
    for (const m of ms) pool.release(m, 20);
    const slow = ms[0] as PoolMemberRef<null>;
    pool.release(slow, 1800);

    const start = clock.now();
    let slowPicks = 0;
    let firstSlowPickAfter: number | undefined;
    for (let s = 0; s < 600; s++) {
      clock.set(start + s * 1000);
      const m = pool.pick() as PoolMemberRef<null>;
      if (m === slow) {
        slowPicks++;
        firstSlowPickAfter ??= clock.now() - start;
      }
      clock.advance(20);
      pool.release(m, 20);
    }
    // 1800·e^(-t/10 s) falls below 20 ms after 10 s·ln 90 ≈ 45 s.
    expect(firstSlowPickAfter).toBeDefined();
    expect(firstSlowPickAfter).toBeLessThanOrEqual(60_000);
    // Back to a fair share (about 200 of 600) once it has been sampled again.
    expect(slowPicks).toBeGreaterThanOrEqual(120);
  });

  it("the pool gives each member its balancer's load, on the pool's clock", () => {
    const clock = fakeClock();
    const ewma = new Pool<null>({ balancer: "peak-ewma", decay: 1000, now: clock.now });
    const plain = new Pool<null>({ balancer: "in-flight", now: clock.now });
    const a = ewma.admit(1, "a", null);
    const b = plain.admit(2, "b", null);
    expect(a.load).toBeInstanceOf(PeakEwma);
    expect(b.load).toBeInstanceOf(InFlight);
    ewma.release(a, 100);
    plain.release(b, 100);
    expect(a.latency).toBe(100);
    expect(b.latency).toBeUndefined();
    clock.set(1000);
    expect(a.latency).toBeCloseTo(100 * Math.exp(-1), 6);
  });
});

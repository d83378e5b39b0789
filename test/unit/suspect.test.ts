import { describe, expect, it, vi } from "vitest";
import { HealthChecker, type Pingable } from "../../src/health/health-checker.js";
import { PassiveSuspicion } from "../../src/health/passive.js";
import { PoolMember } from "../../src/pool/member.js";
import { Pool, type PoolEvent } from "../../src/pool/pool.js";
import { mulberry32 } from "../helpers/random.js";

/** A pool on a hand-driven clock, three ready members. */
function setup(suspectAfter = 250) {
  let now = 1000;
  const pool = new Pool({ balancer: "in-flight", random: mulberry32(9), suspect: new PassiveSuspicion(suspectAfter), now: () => now });
  const events: PoolEvent[] = [];
  pool.events.add((e) => events.push(e));
  const ms = [1, 2, 3].map((i) => {
    const m = pool.admit(i, `127.0.0.${i}:1`, {});
    pool.setPickable(m, true);
    pool.heard(m);
    // White-box: some tests play the part of pool.pick() on the member's record.
    return m as PoolMember;
  });
  return { pool, ms, events, advance: (d: number) => (now += d) };
}

describe("passive suspicion: busy and silent members are avoided and reported", () => {
  it("two members stuck with work in flight: after suspectAfter, every pick goes to the third", () => {
    const { pool, ms, events, advance } = setup();
    const [a, b, c] = ms as [PoolMember, PoolMember, PoolMember];
    // a and b each take a request that never completes (frozen peers).
    a.load.start(); // a request in flight, as pool.pick() would start it
    a.busySince = 1000;
    b.load.start(); // a request in flight, as pool.pick() would start it
    b.busySince = 1000;
    advance(300);
    const picks = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const m = pool.pick() as PoolMember;
      picks.set(m.id, (picks.get(m.id) ?? 0) + 1);
      if (m === c) pool.release(m, 1);
    }
    expect(picks.get(3)).toBeGreaterThanOrEqual(297);
    expect(
      events
        .filter((e) => e.type === "suspect")
        .map((e) => (e.type === "suspect" ? e.member.id : 0))
        .sort(),
    ).toEqual([1, 2]);
  });

  it("before suspectAfter nothing is suspect; an idle member is never suspect however long it was silent", () => {
    const { pool, ms, events, advance } = setup();
    advance(10_000);
    const m = pool.pick() as PoolMember;
    // It was idle: the silence clock starts when it became busy.
    advance(100);
    expect(events.some((e) => e.type === "suspect")).toBe(false);
    expect(m.inFlight).toBe(1);
    expect(ms.length).toBe(3);
  });

  it("a PONG or a completed response clears suspicion; it is reported once per episode", () => {
    const { pool, ms, events, advance } = setup();
    const a = ms[0] as PoolMember;
    a.load.start(); // a request in flight, as pool.pick() would start it
    a.busySince = 1000;
    advance(300);
    for (let i = 0; i < 50; i++) {
      const m = pool.pick() as PoolMember;
      pool.release(m, 1);
    }
    expect(events.filter((e) => e.type === "suspect")).toHaveLength(1);
    expect(a.suspected).toBe(true);
    pool.heard(a);
    expect(a.suspected).toBe(false);
    advance(300);
    for (let i = 0; i < 50; i++) pool.release(pool.pick() as PoolMember, 1);
    expect(events.filter((e) => e.type === "suspect")).toHaveLength(2);
  });

  it("when every member is suspect, picks still happen (nothing better exists)", () => {
    const { pool, ms, advance } = setup();
    for (const m of ms) {
      m.load.start(); // a request in flight, as pool.pick() would start it
      m.busySince = 1000;
    }
    advance(300);
    expect(pool.pick()).toBeDefined();
  });

  it("suspectAfter 0 turns it off", () => {
    const { pool, ms, events, advance } = setup(0);
    const a = ms[0] as PoolMember;
    a.load.start(); // a request in flight, as pool.pick() would start it
    advance(100_000);
    for (let i = 0; i < 30; i++) pool.pick();
    expect(events.some((e) => e.type === "suspect")).toBe(false);
  });
});

describe("HealthChecker.probeNow", () => {
  it("PINGs at once instead of at the next interval, and never overlaps an outstanding PING", async () => {
    vi.useFakeTimers();
    try {
      const sent: number[] = [];
      let answer: ((rtt: number) => void) | undefined;
      const peer: Pingable = {
        ping: () => {
          sent.push(Date.now());
          return new Promise((r) => (answer = r));
        },
      };
      const start = Date.now();
      const h = new HealthChecker(peer, { interval: 1000, timeout: 750, unhealthyAfter: 2, healthyAfter: 2, jitter: 0, suspectAfter: 250 }, () => {});
      h.start(1);
      await vi.advanceTimersByTimeAsync(100);
      h.probeNow();
      h.probeNow();
      expect(sent.map((t) => t - start)).toEqual([100]);
      answer?.(1);
      await vi.advanceTimersByTimeAsync(0);
      // Back on the regular schedule: the next PING an interval after the answer.
      await vi.advanceTimersByTimeAsync(999);
      expect(sent).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(sent).toHaveLength(2);
      h.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("PassiveSuspicion (health/passive.ts): the rule alone, time passed in", () => {
  it("suspect only when busy and silent for longer than suspectAfter, since last heard or since busy; 0 is off", () => {
    const rule = new PassiveSuspicion(250);
    expect(rule.enabled).toBe(true);
    expect(rule.isSuspect({ inFlight: 0, lastHeardAt: 0, busySince: 0 }, 10_000)).toBe(false);
    expect(rule.isSuspect({ inFlight: 1, lastHeardAt: 1000, busySince: 900 }, 1250)).toBe(false);
    expect(rule.isSuspect({ inFlight: 1, lastHeardAt: 1000, busySince: 900 }, 1251)).toBe(true);
    // Busy since after it was last heard: the silence counts from when it became busy.
    expect(rule.isSuspect({ inFlight: 2, lastHeardAt: 0, busySince: 5000 }, 5200)).toBe(false);
    const off = new PassiveSuspicion(0);
    expect(off.enabled).toBe(false);
    expect(off.isSuspect({ inFlight: 5, lastHeardAt: 0, busySince: 0 }, 1e9)).toBe(false);
  });
});

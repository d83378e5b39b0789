import { describe, expect, it } from "vitest";
import { PassiveSuspicion } from "../../src/health/passive.js";
import { OVERDUE_MIN_MS, Progress, overdueFactor, overtaken, pingDeadline } from "../../src/pool/overdue.js";
import { Pool, type Balancer, type PoolMemberRef } from "../../src/pool/pool.js";
import { mulberry32 } from "../helpers/random.js";

/** A pool of three ready members on a hand-driven clock; suspicion off so only the load decides. */
function setup(balancer: Balancer = "in-flight", seed = 5) {
  let t = 1000;
  const now = () => t;
  const pool = new Pool<null>({ balancer, random: mulberry32(seed), now });
  const ms = [1, 2, 3].map((i) => {
    const m = pool.admit(i, `127.0.0.${i + 1}:1`, null);
    pool.recordRtt(m, 0.2);
    pool.setPickable(m, true);
    return m;
  });
  return { pool, ms, now, set: (ms: number) => (t = ms), advance: (d: number) => (t += d) };
}

describe("overdueFactor: the pure rule", () => {
  it("is 1 with nothing pending, however long the member was silent", () => {
    const p = new Progress();
    expect(overdueFactor(p, 1_000_000, undefined)).toBe(1);
  });

  it("is 1 within the expected time, then grows linearly with the silence past it", () => {
    const p = new Progress();
    p.start(100);
    // No latency known yet: expected is the floor.
    expect(overdueFactor(p, 100 + OVERDUE_MIN_MS, undefined)).toBe(1);
    expect(overdueFactor(p, 100 + 2 * OVERDUE_MIN_MS, undefined)).toBe(2);
    expect(overdueFactor(p, 100 + 11 * OVERDUE_MIN_MS, undefined)).toBe(11);
  });

  it("expects 4 × the member's typical latency, at least its PING round trip", () => {
    const p = new Progress();
    p.start(0);
    p.answer(0, 10); // typical 10 ms → expected 40 ms
    p.start(0);
    expect(overdueFactor(p, 40, undefined)).toBe(1);
    expect(overdueFactor(p, 80, undefined)).toBe(2);
    // A long round trip raises the bar: nothing answers faster than a round trip.
    expect(overdueFactor(p, 80, 80)).toBe(1);
  });

  it("an answer is progress and resets the silence; a dropped request is not", () => {
    const p = new Progress();
    p.start(0);
    p.start(0);
    p.drop();
    expect(p.pending).toBe(1);
    expect(overdueFactor(p, 20, undefined)).toBe(10);
    p.start(20);
    p.answer(20, 1);
    expect(p.pending).toBe(1);
    expect(overdueFactor(p, 21, undefined)).toBe(1);
    // Never below zero: a double end must not make a stuck member look idle forever.
    p.drop();
    p.drop();
    expect(p.pending).toBe(0);
  });
});

describe("Pool: a member that stopped answering loses every comparison within milliseconds (issue 17, item 4)", () => {
  it("one unanswered request, silent past the expected time, loses even to members with more in flight", () => {
    const { pool, ms, advance } = setup();
    const [a, b, c] = ms as [PoolMemberRef<null>, PoolMemberRef<null>, PoolMemberRef<null>];
    for (const m of ms) {
      const got = pool.pick();
      pool.release(got ?? m, 0.5);
    }
    // b and c each hold two requests but keep answering others; a holds one that never ends.
    for (const m of [b, c]) {
      for (let i = 0; i < 3; i++) {
        m.load.start();
        m.progress.start(1000);
      }
    }
    a.load.start();
    a.progress.start(1000);
    // Silent for 5 ms: past 2 × the 2 ms floor, a's cost (1 × 2.5) is above b's and c's (2), who just answered one.
    advance(5);
    pool.release(b, 0.5);
    pool.release(c, 0.5);
    let toA = 0;
    for (let i = 0; i < 1000; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      if (m === a) {
        toA++;
        continue;
      }
      pool.release(m, 0.5);
    }
    // Without the overdue factor a (cost 1) beats b and c (cost 2) in every comparison it is drawn for.
    expect(toA).toBe(0);
  });

  /**
   * bench/failover in miniature: 300 req/s open loop over three members that
   * answer in 0.5 ms to 1.5 ms (loopback); then a backend freezes while two of the three
   * members are on it (after a SIGKILL the lost slot stacks on a live
   * address, which may be the one that freezes next). Counting in-flight
   * alone, a third of the draws are the two frozen members, and one of them
   * wins each: about 25 requests in 250 ms, the 22–30 failed calls per round
   * of bench/failover. With the overdue factor and its redraws, the frozen
   * members get their first requests and then (nearly) nothing: 2 to 4
   * over these seeds, against 20 to 33 with the factor taken out.
   */
  it.each(["in-flight", "peak-ewma"] as const)("open loop, two members on a frozen backend (%s): they get at most 4 requests in 250 ms", (balancer) => {
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const { pool, ms, now, advance } = setup(balancer, seed);
      const rnd = mulberry32(seed * 7);
      const frozen = new Set([ms[0], ms[2]]);
      const outstanding: { m: PoolMemberRef<null>; at: number; endAt: number }[] = [];
      let frozenFrom: number | undefined;
      let toFrozen = 0;
      // 1 s healthy, then frozen for 250 ms (the default suspectAfter).
      for (let step = 0; step < 375; step++) {
        advance(10 / 3);
        if (step === 300) frozenFrom = now();
        for (let i = outstanding.length - 1; i >= 0; i--) {
          const o = outstanding[i] as (typeof outstanding)[number];
          if (o.endAt > now()) continue;
          outstanding.splice(i, 1);
          pool.release(o.m, o.endAt - o.at);
        }
        const m = pool.pick() as PoolMemberRef<null>;
        if (frozenFrom !== undefined && frozen.has(m)) {
          toFrozen++;
          continue; // never answered
        }
        outstanding.push({ m, at: now(), endAt: now() + 0.5 + rnd() });
      }
      expect(toFrozen, `seed ${seed}`).toBeLessThanOrEqual(4);
    }
  });

  /**
   * The same freeze held until a PING would notice (1.75 s), with passive
   * suspicion on. A frozen member's first request after the freeze cannot be
   * avoided (nothing tells yet; under peak-EWMA an idle member may get it
   * late), but once it has gone unanswered for a few ms, no pick may reach
   * that member: a draw that touches an avoided member looks at every member
   * instead. The random redraws this replaced still sent 1 pick in 243 (both
   * frozen drawn five times running) to a frozen member, seconds into the
   * freeze: bench/failover's "frozen backend still picked 1.74 s" on a busy
   * machine (issue 25, item 8). Deterministic: fake clock, seeded draws, and
   * the check holds for every draw sequence, not by chance.
   */
  it.each(["in-flight", "peak-ewma"] as const)(
    "two members on a frozen backend (%s): none picked 20 ms after its first unanswered request, over a 1.75 s freeze",
    (balancer) => {
      for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
        let t = 1000;
        const pool = new Pool<null>({ balancer, random: mulberry32(seed), now: () => t, suspect: new PassiveSuspicion(250) });
        const ms = [1, 2, 3].map((i) => {
          const m = pool.admit(i, `127.0.0.${i + 1}:1`, null);
          pool.recordRtt(m, 0.2);
          pool.setPickable(m, true);
          return m;
        });
        const rnd = mulberry32(seed * 7);
        const frozen = new Set([ms[0], ms[2]]);
        const outstanding: { m: PoolMemberRef<null>; at: number; endAt: number }[] = [];
        let frozenFrom: number | undefined;
        /** Per frozen member, when it got its first request after the freeze. */
        const firstPick = new Map<PoolMemberRef<null>, number>();
        let latePick = 0;
        let toFrozen = 0;
        // 1 s healthy, then frozen for 1.75 s.
        for (let step = 0; step < 300 + 525; step++) {
          t += 10 / 3;
          if (step === 300) frozenFrom = t;
          for (let i = outstanding.length - 1; i >= 0; i--) {
            const o = outstanding[i] as (typeof outstanding)[number];
            if (o.endAt > t) continue;
            outstanding.splice(i, 1);
            pool.release(o.m, o.endAt - o.at);
          }
          const m = pool.pick() as PoolMemberRef<null>;
          if (frozenFrom !== undefined && frozen.has(m)) {
            toFrozen++;
            const first = firstPick.get(m) ?? t;
            firstPick.set(m, first);
            latePick = Math.max(latePick, t - first);
            continue; // never answered
          }
          outstanding.push({ m, at: t, endAt: t + 0.5 + rnd() });
        }
        expect(latePick, `seed ${seed}`).toBeLessThanOrEqual(20);
        expect(toFrozen, `seed ${seed}`).toBeLessThanOrEqual(4);
      }
    },
  );

  /**
   * Order, not elapsed time: b answered a request that started after a's
   * unanswered one should have ended (a's typical latency past it), so a is
   * avoided at once — 1 ms into a's silence, half its expected 2 ms, when
   * the clock rule sees nothing yet — and takes picks again the moment it
   * answers. Without the rule a (1 in flight) wins every draw against b and
   * c (2 each).
   */
  it("a member holding a request that a later one on another member overtook is avoided until it answers", () => {
    const { pool, ms, set } = setup("in-flight", 11);
    const [a, b, c] = ms as [PoolMemberRef<null>, PoolMemberRef<null>, PoolMemberRef<null>];
    const only = (m: PoolMemberRef<null>): void => {
      for (const x of ms) pool.setPickable(x, x === m);
    };
    // Each member answers one request in 0.5 ms: typical latency 0.5 ms.
    set(990);
    for (const m of ms) {
      only(m);
      pool.release(pool.pick() as PoolMemberRef<null>, 0.5, false, 990.5);
    }
    // a takes a request at 1000 that will not answer for a while.
    set(1000);
    only(a);
    const slow = pool.pick() as PoolMemberRef<null>;
    // At 1000.6 b and c each take two requests that stay open, and b one more that it answers at 1001.
    set(1000.6);
    for (const m of [b, c]) {
      only(m);
      pool.pick();
      pool.pick();
    }
    only(b);
    const quick = pool.pick() as PoolMemberRef<null>;
    for (const m of ms) pool.setPickable(m, true);
    set(1001);
    pool.release(quick, 0.4, false, 1001);
    // The clock alone sees nothing: a has been silent 1 ms, below its expected 2 ms.
    expect(overdueFactor(a.progress, 1001, a.rtt)).toBe(1);
    expect(overtaken(a.progress, 1000.6)).toBe(true);
    expect(overtaken(c.progress, 1000.6)).toBe(false);
    let toA = 0;
    for (let i = 0; i < 300; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      if (m === a) toA++;
      pool.release(m);
    }
    expect(toA).toBe(0);
    // a answers: at once the cheapest member again, not starved.
    set(1001.2);
    pool.release(slow, 1.2, false, 1001.2);
    for (let i = 0; i < 300; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      if (m === a) toA++;
      pool.release(m);
    }
    expect(toA).toBeGreaterThan(150);
  });

  /**
   * bench/failover's stacked case: after a SIGKILL, a slot's member stacks on
   * a live address, which may be the one that freezes next. a1 is found
   * overtaken; a2, on the same address and idle, is the cheapest member of
   * all (b and c are busy) and, without the address's mark, would take the
   * next request and hang on it too. It is avoided while the address holds
   * that request (a PONG is no answer), and picked again once it ends (here
   * it times out: the freeze outlasted the deadline).
   */
  it("the idle members stacked on an overtaken member's address are avoided until that address answers or its requests end", () => {
    let t = 990;
    const pool = new Pool<null>({ balancer: "in-flight", random: mulberry32(13), now: () => t });
    const [a1, a2, b, c] = ["10.0.0.1:1", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"].map((key, i) => {
      const m = pool.admit(i, key, null);
      pool.recordRtt(m, 0.2);
      return m;
    }) as [PoolMemberRef<null>, PoolMemberRef<null>, PoolMemberRef<null>, PoolMemberRef<null>];
    const all = [a1, a2, b, c];
    const only = (m: PoolMemberRef<null>): void => {
      for (const x of all) pool.setPickable(x, x === m);
    };
    for (const m of all) {
      only(m);
      pool.release(pool.pick() as PoolMemberRef<null>, 0.5, false, 990.5);
    }
    // a1 takes a request at 1000 that hangs; at 1000.6 b and c take one each that stay open, and b one it answers.
    t = 1000;
    only(a1);
    const hung = pool.pick() as PoolMemberRef<null>;
    t = 1000.6;
    for (const m of [b, c]) {
      only(m);
      pool.pick();
    }
    only(b);
    const quick = pool.pick() as PoolMemberRef<null>;
    for (const m of all) pool.setPickable(m, true);
    t = 1001;
    pool.release(quick, 0.4, false, 1001);
    // a2 is idle and costs 0; b and c cost 1, a1 is overtaken.
    let toA2 = 0;
    for (let i = 0; i < 300; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      expect(m).not.toBe(a1);
      if (m === a2) toA2++;
      pool.release(m);
    }
    expect(toA2).toBe(0);
    // A PONG is no answer to a request: still avoided.
    pool.heard(a2);
    for (let i = 0; i < 100; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      expect(m).not.toBe(a2);
      pool.release(m);
    }
    // The hung request times out: nothing is pending on the address, a2 takes picks again at once.
    pool.release(hung);
    for (let i = 0; i < 300; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      if (m === a2) toA2++;
      pool.release(m);
    }
    expect(toA2).toBeGreaterThan(100);
  });

  /**
   * A stall of our own event loop: a's and b's answers both arrived during
   * it and are read one after the other, b's (the younger request) first. a
   * looks overtaken only between the two reads; once its own answer is read
   * it takes picks as before, and the stall's 100 ms count against nobody.
   */
  it("after an event-loop stall, answers read in any order leave no member overtaken", () => {
    const { pool, ms, set } = setup("in-flight", 12);
    const [a, b] = ms as [PoolMemberRef<null>, PoolMemberRef<null>];
    pool.setPickable(ms[2] as PoolMemberRef<null>, false);
    set(990);
    for (const m of [a, b]) {
      pool.setPickable(m === a ? b : a, false);
      pool.release(pool.pick() as PoolMemberRef<null>, 0.5, false, 990.5);
      pool.setPickable(m === a ? b : a, true);
    }
    set(1000);
    pool.setPickable(b, false);
    const ra = pool.pick() as PoolMemberRef<null>;
    pool.setPickable(b, true);
    set(1000.6);
    pool.setPickable(a, false);
    const rb = pool.pick() as PoolMemberRef<null>;
    pool.setPickable(a, true);
    // The loop stalls for 100 ms; both answers came in meanwhile (1 ms each) and are read now, the younger first.
    set(1100.6);
    pool.release(rb, 100, false, 1100.6);
    expect(overtaken(a.progress, 1000.6)).toBe(true);
    pool.release(ra, 100.6, false, 1100.6);
    expect(a.progress.pending).toBe(0);
    const counts = new Map<PoolMemberRef<null>, number>();
    for (let i = 0; i < 200; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      counts.set(m, (counts.get(m) ?? 0) + 1);
      pool.release(m, 0.5, false, 1100.6);
    }
    expect(counts.get(a) ?? 0).toBeGreaterThan(50);
    expect(counts.get(b) ?? 0).toBeGreaterThan(50);
  });

  it("a member whose PING went unanswered is avoided, busy or idle, until it is heard from again", () => {
    const { pool, ms } = setup("peak-ewma", 3);
    const [a, b, c] = ms as [PoolMemberRef<null>, PoolMemberRef<null>, PoolMemberRef<null>];
    pool.pingLost(a);
    // Idle, and the cheapest of the three (b and c hold requests): still never picked.
    for (const m of [b, c]) m.load.start();
    for (let i = 0; i < 300; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      expect(m).not.toBe(a);
      pool.release(m, 0.5);
    }
    // The only usable member left is still picked: avoiding is not ejecting.
    pool.setPickable(b, false);
    pool.setPickable(c, false);
    expect(pool.pick()).toBe(a);
    pool.release(a, 0.5);
    // A completed response (or a PONG) clears it.
    pool.setPickable(b, true);
    let toA = 0;
    for (let i = 0; i < 100; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      if (m === a) toA++;
      pool.release(m, 0.5);
    }
    expect(toA).toBeGreaterThan(0);
  });

  it("an idle member whose PING is overdue (out for 4 × 4 × its round trip, at least 4 ms) is avoided until it is heard from", () => {
    const { pool, ms, advance } = setup("peak-ewma", 4);
    const [a, b, c] = ms as [PoolMemberRef<null>, PoolMemberRef<null>, PoolMemberRef<null>];
    // b and c are busy, a idle: a is the cheapest, and nothing it has pending can look overdue.
    for (const m of [b, c]) m.load.start();
    pool.pingSent(a);
    // Within the bound (rtt 0.2 ms → 2 × max(2, 0.8) = 4 ms) a PING is just in flight: a still takes picks.
    advance(3);
    expect(pingDeadline(a.pingSentAt, a.rtt)).toBeGreaterThanOrEqual(1003);
    const early = pool.pick() as PoolMemberRef<null>;
    pool.release(early);
    advance(2);
    expect(pingDeadline(a.pingSentAt, a.rtt)).toBeLessThan(1005);
    for (let i = 0; i < 200; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      expect(m).not.toBe(a);
      pool.release(m, 0.5);
    }
    // The PONG (heard) ends it.
    pool.heard(a);
    let toA = 0;
    for (let i = 0; i < 100; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      if (m === a) toA++;
      pool.release(m, 0.5);
    }
    expect(toA).toBeGreaterThan(0);
  });

  it("an idle member silent to its PING loses to busy members whose requests are overdue after a stall (the flake-check's frozen NATS server)", () => {
    const { pool, ms, advance } = setup("in-flight", 7);
    const [a, b, c] = ms as [PoolMemberRef<null>, PoolMemberRef<null>, PoolMemberRef<null>];
    // a froze: its PING is out, it has nothing pending (its requests timed out), so its load costs 0.
    pool.pingSent(a);
    // b and c are healthy but each holds a request the stalled event loop has not read yet.
    for (const m of [b, c]) {
      m.load.start();
      m.progress.start(1000);
    }
    advance(100);
    // All three are avoided; silence to a PING is the worse rank, however cheap the member.
    for (let i = 0; i < 200; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      expect(m).not.toBe(a);
      pool.release(m, 0.5);
      // Keep b and c overdue: the stall goes on.
      m.load.start();
      m.progress.start(1000);
    }
  });

  it("a request superseded by another attempt's answer is a load sample of the time it ran, not an answer", () => {
    const { pool, ms, advance } = setup("peak-ewma", 6);
    const a = ms[0] as PoolMemberRef<null>;
    for (const m of ms.slice(1)) pool.setPickable(m, false);
    const got = pool.pick() as PoolMemberRef<null>;
    expect(got).toBe(a);
    const heardBefore = a.lastHeardAt;
    advance(50);
    pool.releaseSuperseded(a, 50, false, 1050);
    expect(a.inFlight).toBe(0);
    expect(a.progress.pending).toBe(0);
    // Peak-EWMA took the 50 ms at once (peak-sensitive): the member now looks as slow as it was.
    expect(a.latency).toBeCloseTo(50, 5);
    // No proof of life: not heard from, no progress.
    expect(a.lastHeardAt).toBe(heardBefore);
    expect(Number.isNaN(a.progress.typical)).toBe(true);
  });

  it("when every member is avoided, the pick still spreads (no herd on the first one scanned)", () => {
    const { pool, ms, advance } = setup("in-flight", 9);
    // Every member holds a request it has not answered for 100 ms: all overdue alike (an event-loop stall).
    for (const m of ms) {
      m.load.start();
      m.progress.start(1000);
    }
    advance(100);
    const counts = new Map<PoolMemberRef<null>, number>();
    for (let i = 0; i < 300; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      counts.set(m, (counts.get(m) ?? 0) + 1);
    }
    // In-flight counts still balance them: each takes its third, give or take one.
    for (const m of ms) expect(Math.abs((counts.get(m) ?? 0) - 100)).toBeLessThanOrEqual(1);
  });

  it("a streamed response counts as answered at its head: long streams do not make a member look stuck", () => {
    const { pool, ms, advance } = setup();
    const [a] = ms as [PoolMemberRef<null>];
    // Force picks onto a: the others are not usable.
    for (const m of ms.slice(1)) pool.setPickable(m, false);
    const streams = [pool.pick(), pool.pick()] as PoolMemberRef<null>[];
    for (const s of streams) pool.answered(s);
    advance(60_000);
    expect(a.progress.pending).toBe(0);
    expect(a.load.cost()).toBe(2);
    for (const s of streams) pool.release(s, 60_000, true);
    expect(a.progress.pending).toBe(0);
    expect(a.inFlight).toBe(0);
  });

  it("a PONG is not progress: a member that answers PINGs but not requests still looks overdue", () => {
    const { pool, ms, advance } = setup();
    const a = ms[0] as PoolMemberRef<null>;
    a.load.start();
    a.progress.start(1000);
    advance(20);
    pool.heard(a);
    expect(overdueFactor(a.progress, 1020, a.rtt)).toBe(10);
  });
});

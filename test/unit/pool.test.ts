import { describe, expect, it } from "vitest";
import { Pool, type PoolEvent, type PoolMemberRef, type PoolOptions } from "../../src/pool/pool.js";
import { isUsable } from "../helpers/pool.js";
import { mulberry32 } from "../helpers/random.js";

let nextId = 1;
function member(pool: Pool<string>, i = nextId): PoolMemberRef<string> {
  const id = nextId++;
  return pool.admit(id, `127.0.0.${(i % 250) + 2}:8443`, `conn-${id}`);
}

function makePool(over: Partial<PoolOptions> = {}): { pool: Pool<string>; events: PoolEvent[] } {
  const pool = new Pool<string>({ balancer: "in-flight", random: mulberry32(99), now: () => 0, ...over });
  const events: PoolEvent[] = [];
  pool.events.add((e) => events.push(e));
  return { pool, events };
}

/** Adds `n` members, made pickable (as the regulator's action would) unless `pickable` is false. */
function addMembers(pool: Pool<string>, n: number, pickable = true): PoolMemberRef<string>[] {
  const ms: PoolMemberRef<string>[] = [];
  for (let i = 0; i < n; i++) {
    const m = member(pool);
    if (pickable) pool.setPickable(m, true);
    ms.push(m);
  }
  return ms;
}

/** Picks many times and releases each pick at once; returns the set of members seen. */
function pickedSet(pool: Pool<string>, times = 200): Set<PoolMemberRef<string>> {
  const seen = new Set<PoolMemberRef<string>>();
  for (let i = 0; i < times; i++) {
    const m = pool.pick();
    if (!m) continue;
    seen.add(m);
    pool.release(m);
  }
  return seen;
}

// Who may take picks (ready, or unhealthy while degraded; never connecting or draining) is the
// regulator's one rule (regulator.test.ts, "who takes picks"); the pool holds no member state and
// only indexes what setPickable() tells it, filtered by its own load facts (stream limit, ejection).
describe("Pool: an index driven by setPickable", () => {
  it("an admitted member takes no picks until it is made pickable", () => {
    const { pool } = makePool();
    const m = member(pool);
    expect(m.pickable).toBe(false);
    expect(pool.pick()).toBeUndefined();
    expect(isUsable(m)).toBe(false);
    expect(pool.usableCount).toBe(0);
    pool.setPickable(m, true);
    expect(isUsable(m)).toBe(true);
    expect(pool.usableCount).toBe(1);
    expect(pool.pick()).toBe(m);
  });

  it("pick increments inFlight, release decrements (never below 0)", () => {
    const { pool } = makePool();
    const [m] = addMembers(pool, 1);
    expect(pool.pick()).toBe(m);
    expect(pool.pick()).toBe(m);
    expect(m!.inFlight).toBe(2);
    pool.release(m!);
    expect(m!.inFlight).toBe(1);
    pool.release(m!);
    pool.release(m!);
    expect(m!.inFlight).toBe(0);
  });

  it("a member at its stream limit is not picked, and is pickable again after a release", () => {
    const { pool } = makePool();
    const [m] = addMembers(pool, 1);
    pool.setMaxConcurrent(m!, 2);
    expect(pool.pick()).toBe(m);
    expect(pool.pick()).toBe(m);
    expect(m!.inFlight).toBe(2);
    expect(isUsable(m!)).toBe(false);
    expect(pool.pick()).toBeUndefined();
    expect(m!.inFlight).toBe(2);
    expect(m!.pickable).toBe(true);
    pool.release(m!);
    expect(isUsable(m!)).toBe(true);
    expect(pool.pick()).toBe(m);
  });

  it("lowering the limit below the in-flight count makes a member unusable; raising it restores it", () => {
    const { pool } = makePool();
    const [a, b] = addMembers(pool, 2);
    pool.setMaxConcurrent(b!, 0);
    expect(pickedSet(pool)).toEqual(new Set([a]));
    pool.setMaxConcurrent(b!, 10);
    expect(pickedSet(pool)).toEqual(new Set([a, b]));
  });

  it("with one member at its limit, every pick goes to the other", () => {
    const { pool } = makePool();
    const [a, b] = addMembers(pool, 2);
    pool.setMaxConcurrent(a!, 1);
    // Fill a: pick (bounded) until a takes one; picks that land on b are released.
    for (let i = 0; i < 100 && a!.inFlight < 1; i++) {
      const m = pool.pick();
      if (m !== a) pool.release(m!);
    }
    expect(a!.inFlight).toBe(1);
    expect(b!.inFlight).toBe(0);
    for (let i = 0; i < 50; i++) expect(pool.pick()).toBe(b);
    expect(b!.inFlight).toBe(50);
  });

  it("a member made unpickable takes no more picks (its in-flight work still releases)", () => {
    const { pool } = makePool();
    const [a, b] = addMembers(pool, 2);
    pool.setPickable(a!, false);
    expect(isUsable(a!)).toBe(false);
    expect(pool.usableCount).toBe(1);
    expect(pickedSet(pool)).toEqual(new Set([b]));
    pool.setPickable(b!, false);
    expect(pool.pick()).toBeUndefined();
    expect(pool.usableCount).toBe(0);
  });

  it("a removed member leaves the pool for good: setPickable cannot bring it back", () => {
    const { pool } = makePool();
    const [a] = addMembers(pool, 1);
    const held = pool.pick()!;
    pool.remove(a!);
    expect(pool.usableCount).toBe(0);
    expect(isUsable(a!)).toBe(false);
    pool.setPickable(a!, true);
    expect(a!.pickable).toBe(false);
    expect(pool.usableCount).toBe(0);
    expect(pool.pick()).toBeUndefined();
    // A lease still held on it releases without putting it back.
    pool.release(held);
    expect(held.inFlight).toBe(0);
    expect(pool.pick()).toBeUndefined();
  });

  it("usable events report the usable count once per change; a repeated setPickable says nothing", () => {
    const { pool, events } = makePool();
    const [a, b] = addMembers(pool, 2);
    const usable = (): number[] => events.flatMap((e) => (e.type === "usable" ? [e.count] : []));
    expect(usable()).toEqual([1, 2]);
    pool.setPickable(a!, true);
    expect(usable()).toEqual([1, 2]);
    pool.setPickable(a!, false);
    pool.remove(b!);
    expect(usable()).toEqual([1, 2, 1, 0]);
    // Only usable events: the pool reports no member states (the regulator's actions do).
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(["usable"]));
  });
});

describe("Pool: peak-EWMA balancer", () => {
  it("after release(slow, 100) and release(fast, 1), the slow member loses P2C at equal in-flight", () => {
    const { pool } = makePool({ balancer: "peak-ewma", random: mulberry32(5) });
    const [slow, fast] = addMembers(pool, 2);
    pool.release(slow!, 100);
    pool.release(fast!, 1);
    expect(slow!.latency).toBe(100);
    expect(fast!.latency).toBe(1);
    for (let i = 0; i < 100; i++) {
      expect(slow!.inFlight).toBe(fast!.inFlight);
      const m = pool.pick();
      expect(m).toBe(fast);
      pool.release(m!);
    }
  });

  it("a slow member wins only once the fast one is proportionally busier", () => {
    const { pool } = makePool({ balancer: "peak-ewma", random: mulberry32(6) });
    const [slow, fast] = addMembers(pool, 2);
    pool.release(slow!, 10.5);
    pool.release(fast!, 1);
    // fast costs 1 × (in-flight + 1): it takes the first 10 picks (cost ≤ 10 < 10.5); at 10 in flight it costs 11 > 10.5.
    const picks: PoolMemberRef<string>[] = [];
    for (let i = 0; i < 11; i++) picks.push(pool.pick()!);
    expect(picks.slice(0, 10).every((m) => m === fast)).toBe(true);
    expect(picks[10]).toBe(slow);
  });

  it("in-flight balancer ignores latency", () => {
    const { pool } = makePool({ balancer: "in-flight", random: mulberry32(8) });
    const [slow, fast] = addMembers(pool, 2);
    pool.release(slow!, 100);
    pool.release(fast!, 1);
    expect(pickedSet(pool)).toEqual(new Set([slow, fast]));
  });

  it("a faster sample decays the peak estimate over the decay window", () => {
    let now = 0;
    const { pool } = makePool({ balancer: "peak-ewma", decay: 1000, now: () => now });
    const [m] = addMembers(pool, 1);
    pool.release(m!, 100);
    expect(m!.latency).toBe(100);
    now = 1000;
    pool.release(m!, 0);
    expect(m!.latency).toBeCloseTo(100 * Math.exp(-1), 6);
    pool.release(m!, 500); // a slower sample moves it at once
    expect(m!.latency).toBe(500);
  });
});

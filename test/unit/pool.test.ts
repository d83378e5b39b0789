import { describe, expect, it } from "vitest";
import type { Address } from "../../src/core/address.js";
import type { MemberState } from "../../src/pool/member.js";
import { Pool, type PoolEvent, type PoolMemberRef, type PoolOptions } from "../../src/pool/pool.js";
import { isUsable } from "../helpers/pool.js";
import { mulberry32 } from "../helpers/random.js";

let nextId = 1;
function member(pool: Pool<string>, i = nextId): PoolMemberRef<string> {
  const id = nextId++;
  const address: Address = { host: `127.0.0.${(i % 250) + 2}`, port: 8443, family: 4 };
  return pool.admit(id, address, `127.0.0.${(i % 250) + 2}:8443`, `conn-${id}`);
}

function makePool(over: Partial<PoolOptions> = {}): { pool: Pool<string>; events: PoolEvent[] } {
  const pool = new Pool<string>({ balancer: "in-flight", random: mulberry32(99), now: () => 0, ...over });
  const events: PoolEvent[] = [];
  pool.events.add((e) => events.push(e));
  return { pool, events };
}

/** Adds `n` members and moves them to `state` (through connecting). */
function addMembers(pool: Pool<string>, n: number, state: MemberState = "ready"): PoolMemberRef<string>[] {
  const ms: PoolMemberRef<string>[] = [];
  for (let i = 0; i < n; i++) {
    const m = member(pool);
    if (state !== "connecting") pool.setState(m, state, "test");
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

describe("Pool: who takes picks", () => {
  it("never picks a connecting member", () => {
    const { pool } = makePool();
    const [m] = addMembers(pool, 1, "connecting");
    expect(m!.state).toBe("connecting");
    expect(pool.pick()).toBeUndefined();
    expect(isUsable(m!)).toBe(false);
    expect(pool.usableCount).toBe(0);
  });

  it("picks a ready member", () => {
    const { pool } = makePool();
    const [m] = addMembers(pool, 1, "connecting");
    pool.setState(m!, "ready", "first PONG");
    expect(isUsable(m!)).toBe(true);
    expect(pool.pick()).toBe(m);
  });

  it("a member is admitted connecting: counted, not ready, not pickable", () => {
    const { pool } = makePool();
    const m = member(pool);
    expect(m.state).toBe("connecting");
    expect(pool.size).toBe(1);
    expect(pool.readyCount).toBe(0);
    expect(pool.pick()).toBeUndefined();
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

  it.each(["draining", "closed"] as const)("never picks a %s member", (state) => {
    const { pool } = makePool();
    const [a, b] = addMembers(pool, 2);
    pool.setState(a!, state, "test");
    expect(isUsable(a!)).toBe(false);
    expect(pickedSet(pool)).toEqual(new Set([b]));
    pool.setState(b!, state, "test");
    expect(pool.pick()).toBeUndefined();
  });

  it("a closed member leaves the pool and stays closed", () => {
    const { pool } = makePool();
    const [a] = addMembers(pool, 1);
    pool.setState(a!, "closed", "gone");
    expect(pool.size).toBe(0);
    expect(pool.readyCount).toBe(0);
    pool.setState(a!, "ready", "resurrect?");
    expect(a!.state).toBe("closed");
    expect(pool.pick()).toBeUndefined();
  });

  it("a draining member is not picked even while degraded", () => {
    const { pool } = makePool();
    const [a, b] = addMembers(pool, 2);
    pool.setState(a!, "unhealthy", "x");
    pool.setState(b!, "draining", "goaway");
    pool.setDegraded(true);
    expect(pool.degraded).toBe(true);
    expect(pickedSet(pool)).toEqual(new Set([a]));
  });
});

// Degraded mode itself (when it starts and ends) is the regulator's rule (regulator.test.ts);
// the pool only indexes members by it.
describe("Pool: an index of usable members, by the degraded mode it is given", () => {
  it("an unhealthy member serving in degraded mode still takes no more than its peer's stream limit", () => {
    const { pool } = makePool();
    const [a] = addMembers(pool, 1);
    pool.setMaxConcurrent(a!, 3);
    pool.setState(a!, "unhealthy", "frozen");
    pool.setDegraded(true);
    const picks = [pool.pick(), pool.pick(), pool.pick(), pool.pick()];
    expect(picks.filter((m) => m === a)).toHaveLength(3);
    expect(picks[3]).toBeUndefined();
    expect(pool.usableCount).toBe(0);
    pool.release(a!);
    expect(pool.pick()).toBe(a);
  });

  it("unhealthy members take picks only while degraded; the pool never changes the mode itself", () => {
    const { pool, events } = makePool();
    const [a, b, c] = addMembers(pool, 3);
    for (const m of [a, b, c]) pool.setState(m!, "unhealthy", "PING timeout");
    // Every member unhealthy: the pool has no rule of its own that would make them pickable.
    expect(pool.degraded).toBe(false);
    expect(pool.servingCount).toBe(0);
    expect(pool.pick()).toBeUndefined();
    events.length = 0;
    pool.setDegraded(true);
    expect(pool.servingCount).toBe(3);
    expect(pickedSet(pool)).toEqual(new Set([a, b, c]));
    expect(events.filter((e) => e.type === "usable")).toEqual([{ type: "usable", count: 3 }]);
    // A member back to ready while still degraded: all three remain usable.
    pool.setState(b!, "ready", "PINGs answered again");
    expect(pickedSet(pool)).toEqual(new Set([a, b, c]));
    pool.setDegraded(false);
    expect(pool.servingCount).toBe(1);
    expect(isUsable(a!)).toBe(false);
    expect(pickedSet(pool)).toEqual(new Set([b]));
    // Setting the mode it already has changes nothing and says nothing.
    events.length = 0;
    pool.setDegraded(false);
    expect(events).toEqual([]);
  });

  it("emits the state event before the usable change it causes", () => {
    const { pool, events } = makePool();
    const [a] = addMembers(pool, 1);
    events.length = 0;
    pool.setState(a!, "unhealthy", "PING timeout");
    expect(events.map((e) => e.type)).toEqual(["state", "usable"]);
    expect(events[0]).toMatchObject({ type: "state", member: a, from: "ready", to: "unhealthy", reason: "PING timeout" });
  });

  it("usable events report the usable count as members come and go", () => {
    const { pool, events } = makePool();
    const [a, b] = addMembers(pool, 2);
    const usable = (): number[] => events.flatMap((e) => (e.type === "usable" ? [e.count] : []));
    expect(usable()).toEqual([1, 2]);
    pool.setState(a!, "draining", "goaway");
    pool.setState(b!, "closed", "gone");
    expect(usable()).toEqual([1, 2, 1, 0]);
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

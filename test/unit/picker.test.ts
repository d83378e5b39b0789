import { describe, expect, it, vi } from "vitest";
import { Pool, type PoolMemberRef } from "../../src/pool/pool.js";
import { UsableSet, type Indexed } from "../../src/pool/usable-set.js";
import { mulberry32 } from "../helpers/random.js";

interface Item extends Indexed {
  id: number;
}

function makeItems(costs: number[]): Item[] {
  return costs.map((_, id) => ({ id, usableIndex: -1 }));
}

function setOf(items: Item[]): UsableSet<Item> {
  const s = new UsableSet<Item>();
  for (const it of items) s.add(it);
  return s;
}

/** A `random` that returns the given values in order and fails the test when it runs out. */
function sequence(values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error("random() called more often than pinned");
    return values[i++] as number;
  };
}

/**
 * A pool (in-flight balancer, clock fixed) whose members cost `costs`: each
 * holds that many requests, picked while it was the only pickable member (a
 * lone member is taken without a draw). Its usable index then lists them in
 * order, so index i of a draw is member i. The pool reads `draws.random`,
 * which a test may swap.
 */
function p2cPool(costs: number[]): { pool: Pool<null>; ms: PoolMemberRef<null>[]; draws: { random: () => number } } {
  const draws = { random: (): number => 0.5 };
  const pool = new Pool<null>({ balancer: "in-flight", random: () => draws.random(), now: () => 0 });
  const ms = costs.map((_, i) => pool.admit(i, `127.0.0.${i + 2}:1`, null));
  ms.forEach((m, i) => {
    pool.setPickable(m, true);
    for (let k = 0; k < (costs[i] as number); k++) pool.pick();
    pool.setPickable(m, false);
  });
  for (const m of ms) pool.setPickable(m, true);
  return { pool, ms, draws };
}

/** Picks once and releases the pick at once (no answer: the costs stay as they were). */
function pickOnce(pool: Pool<null>): PoolMemberRef<null> | undefined {
  const m = pool.pick();
  if (m) pool.release(m);
  return m;
}

// Power of two choices, as pool.ts's pick draws it: two distinct members at random (both from one random
// number: a random() call is a fifth of a pick), the cheaper wins, ties to the first.
describe("Pool: the P2C draw", () => {
  it("returns undefined for an empty pool, without drawing", () => {
    const random = vi.fn(() => 0.5);
    const pool = new Pool<null>({ balancer: "in-flight", random, now: () => 0 });
    expect(pool.pick()).toBeUndefined();
    expect(random).not.toHaveBeenCalled();
  });

  it("returns the only usable member, without drawing", () => {
    const { pool, ms, draws } = p2cPool([7]);
    const random = vi.fn(() => 0.5);
    draws.random = random;
    for (let k = 0; k < 3; k++) expect(pickOnce(pool)).toBe(ms[0]);
    expect(random).not.toHaveBeenCalled();
  });

  it("with two members always picks the cheaper one, whatever the draws", () => {
    for (const costs of [
      [1, 5],
      [5, 1],
      [0, 3],
      [3, 0],
    ]) {
      const { pool, ms, draws } = p2cPool(costs);
      const cheaper = costs[0]! < costs[1]! ? ms[0] : ms[1];
      draws.random = mulberry32(1);
      for (let k = 0; k < 200; k++) expect(pickOnce(pool)).toBe(cheaper);
      // The extremes of random() as well.
      draws.random = sequence([0]);
      expect(pickOnce(pool)).toBe(cheaper);
      draws.random = sequence([0.999999]);
      expect(pickOnce(pool)).toBe(cheaper);
    }
  });

  it("draws two distinct members from one random number, covering every ordered pair exactly once over a pinned grid", () => {
    for (const n of [2, 3, 5, 8]) {
      // Costs rising with the index, then falling: the pick is the lower index of the pair drawn, then the higher.
      const rising = p2cPool(Array.from({ length: n }, (_, k) => k));
      const falling = p2cPool(Array.from({ length: n }, (_, k) => n - k));
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n - 1; j++) {
          // floor(r * n) is i; the midpoint of j's bucket within it, rescaled to n − 1 members, is j.
          const pinned = [(i + (j + 0.5) / (n - 1)) / n];
          rising.draws.random = sequence(pinned);
          falling.draws.random = sequence(pinned);
          const low = rising.ms.indexOf(pickOnce(rising.pool) as PoolMemberRef<null>);
          const high = falling.ms.indexOf(pickOnce(falling.pool) as PoolMemberRef<null>);
          expect(low).toBeLessThan(high);
          // The first draw is member i; the other one drawn is the second.
          expect([low, high]).toContain(i);
          seen.add(`${i}-${low === i ? high : low}`);
        }
      }
      // n*(n-1) ordered pairs of distinct members: the mapping is a bijection, so draws are uniform.
      expect(seen.size).toBe(n * (n - 1));
    }
  });

  it("ties go to the first draw", () => {
    const { pool, ms, draws } = p2cPool([4, 4, 4]);
    // r = 0.75 · 3 = 2.25: i = 2; its fraction 0.25 · 2 → j = 0.
    draws.random = sequence([0.75]);
    expect(pickOnce(pool)).toBe(ms[2]);
    // r = 0.25 · 3 = 0.75: i = 0; 0.75 · 2 → 1, then 2 after skipping i.
    draws.random = sequence([0.25]);
    expect(pickOnce(pool)).toBe(ms[0]);
  });

  it("never returns a member that is not usable, as members come and go", () => {
    const rnd = mulberry32(42);
    const { pool, ms, draws } = p2cPool(Array.from({ length: 40 }, (_, i) => i % 7));
    draws.random = rnd;
    const ref = new Set(ms);
    for (let step = 0; step < 2000; step++) {
      const m = ms[Math.floor(rnd() * ms.length)] as PoolMemberRef<null>;
      const on = rnd() < 0.5;
      pool.setPickable(m, on);
      if (on) ref.add(m);
      else ref.delete(m);
      const picked = pickOnce(pool);
      if (ref.size === 0) expect(picked).toBeUndefined();
      else expect(ref.has(picked as PoolMemberRef<null>)).toBe(true);
    }
  });

  it("with costs [0, 0, 10] (seeded), the costly member is never picked", () => {
    const { pool, ms, draws } = p2cPool([0, 0, 10]);
    draws.random = mulberry32(12345);
    const counts = [0, 0, 0];
    const N = 10_000;
    for (let k = 0; k < N; k++) counts[ms.indexOf(pickOnce(pool) as PoolMemberRef<null>)]!++;
    // Any two distinct draws include a free member, so the costly one never wins.
    expect(counts[2]).toBe(0);
    // The two free members share the load about evenly.
    expect(counts[0]! / N).toBeGreaterThan(0.45);
    expect(counts[1]! / N).toBeGreaterThan(0.45);
  });

  it("with costs [1, 2, 3] (seeded), picks follow P2C's 2/3, 1/3, 0 split", () => {
    const { pool, ms, draws } = p2cPool([1, 2, 3]);
    draws.random = mulberry32(7);
    const counts = [0, 0, 0];
    const N = 10_000;
    for (let k = 0; k < N; k++) counts[ms.indexOf(pickOnce(pool) as PoolMemberRef<null>)]!++;
    expect(counts[0]! / N).toBeCloseTo(2 / 3, 1);
    expect(counts[1]! / N).toBeCloseTo(1 / 3, 1);
    expect(counts[2]).toBe(0);
  });

  it.each([3, 16, 256, 4096])("is O(1): exactly 1 random call per pick at %i members, busy or idle", (n) => {
    for (const busy of [0, 1]) {
      const { pool, draws } = p2cPool(Array.from({ length: n }, (_, i) => (busy ? i % 3 : 0)));
      const random = vi.fn(mulberry32(n));
      draws.random = random;
      for (let k = 0; k < 50; k++) {
        random.mockClear();
        expect(pickOnce(pool)).toBeDefined();
        expect(random).toHaveBeenCalledTimes(1);
      }
    }
  });
});

describe("UsableSet", () => {
  /** Every way the set can disagree with the reference, as readable strings (empty when consistent). */
  function inconsistencies(s: UsableSet<Item>, ref: Set<Item>, all: Item[]): string[] {
    const problems: string[] = [];
    if (s.size !== ref.size) problems.push(`size ${s.size} != ${ref.size}`);
    if (new Set(s.items).size !== s.items.length) problems.push("duplicate items");
    s.items.forEach((item, i) => {
      if (item.usableIndex !== i) problems.push(`item ${item.id} at ${i} has usableIndex ${item.usableIndex}`);
      if (!ref.has(item)) problems.push(`item ${item.id} in set but deleted`);
    });
    for (const item of all) {
      if (item.usableIndex >= 0 !== ref.has(item)) problems.push(`item ${item.id} has usableIndex ${item.usableIndex}`);
      if (!ref.has(item) && item.usableIndex !== -1) problems.push(`deleted item ${item.id} has usableIndex ${item.usableIndex}`);
      if (ref.has(item) && s.at(item.usableIndex) !== item) problems.push(`at(${item.usableIndex}) is not item ${item.id}`);
    }
    return problems;
  }

  it("keeps usableIndex consistent with a reference Set over 1000 random add/delete ops", () => {
    const rnd = mulberry32(2024);
    const all = makeItems(new Array<number>(30).fill(0));
    const s = new UsableSet<Item>();
    const ref = new Set<Item>();
    for (let op = 0; op < 1000; op++) {
      const item = all[Math.floor(rnd() * all.length)] as Item;
      // Biased so the set both fills up and empties out over the run.
      if (rnd() < (op % 200 < 100 ? 0.7 : 0.3)) {
        s.add(item);
        ref.add(item);
      } else {
        s.delete(item);
        ref.delete(item);
      }
      const problems = inconsistencies(s, ref, all);
      if (problems.length > 0) expect.fail(`after op ${op}: ${problems.join("; ")}`);
    }
  });

  it("delete swaps the last item into the hole; add and delete are idempotent", () => {
    const [a, b, c] = makeItems([0, 0, 0]) as [Item, Item, Item];
    const s = setOf([a, b, c]);
    s.add(a);
    expect(s.size).toBe(3);
    s.delete(a);
    expect(s.items).toEqual([c, b]);
    expect(c.usableIndex).toBe(0);
    expect(b.usableIndex).toBe(1);
    expect(a.usableIndex).toBe(-1);
    s.delete(a);
    expect(s.size).toBe(2);
    s.delete(b); // the last one: no swap
    expect(s.items).toEqual([c]);
    expect(c.usableIndex).toBe(0);
    s.delete(c);
    expect(s.size).toBe(0);
    expect(c.usableIndex).toBe(-1);
  });
});

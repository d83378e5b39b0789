import { describe, expect, it, vi } from "vitest";
import { pickP2C } from "../../src/pool/picker.js";
import { UsableSet, type Indexed } from "../../src/pool/usable-set.js";
import { mulberry32 } from "../helpers/random.js";

interface Item extends Indexed {
  id: number;
  cost: number;
}

/** A `random` that returns the given values in order and fails the test when it runs out. */
function sequence(values: number[]): () => number {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error("random() called more often than pinned");
    return values[i++] as number;
  };
}

function makeItems(costs: number[]): Item[] {
  return costs.map((cost, id) => ({ id, cost, usableIndex: -1 }));
}

function setOf(items: Item[]): UsableSet<Item> {
  const s = new UsableSet<Item>();
  for (const it of items) s.add(it);
  return s;
}

const byCost = (m: Item): number => m.cost;

describe("pickP2C", () => {
  it("returns undefined for an empty set, without drawing", () => {
    const random = vi.fn(() => 0.5);
    const cost = vi.fn(byCost);
    expect(pickP2C(new UsableSet<Item>(), cost, random)).toBeUndefined();
    expect(random).not.toHaveBeenCalled();
    expect(cost).not.toHaveBeenCalled();
  });

  it("returns the only item of a one-item set", () => {
    const [only] = makeItems([7]);
    const s = setOf([only as Item]);
    for (const r of [0, 0.5, 0.999999]) expect(pickP2C(s, byCost, () => r)).toBe(only);
  });

  it("with two items always picks the cheaper one, whatever the draws", () => {
    const rnd = mulberry32(1);
    for (const costs of [
      [1, 5],
      [5, 1],
      [0, 3],
      [3, 0],
    ]) {
      const items = makeItems(costs);
      const cheaper = costs[0]! < costs[1]! ? items[0] : items[1];
      const s = setOf(items);
      for (let k = 0; k < 200; k++) expect(pickP2C(s, byCost, rnd)).toBe(cheaper);
      // The extremes of random() as well.
      expect(pickP2C(s, byCost, sequence([0, 0]))).toBe(cheaper);
      expect(pickP2C(s, byCost, sequence([0.999999, 0.999999]))).toBe(cheaper);
    }
  });

  it("draws two distinct members, covering every ordered pair exactly once over a pinned grid", () => {
    for (const n of [2, 3, 5, 8]) {
      const items = makeItems(new Array<number>(n).fill(0));
      const s = setOf(items);
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n - 1; j++) {
          const compared: Item[] = [];
          const cost = (m: Item): number => {
            compared.push(m);
            return m.cost;
          };
          // Midpoints of each bucket, so floor(r * n) lands exactly on i and floor(r * (n-1)) on j.
          pickP2C(s, cost, sequence([(i + 0.5) / n, (j + 0.5) / (n - 1)]));
          expect(compared).toHaveLength(2);
          const [a, b] = compared as [Item, Item];
          expect(a).not.toBe(b);
          seen.add(`${a.id}-${b.id}`);
        }
      }
      // n*(n-1) ordered pairs of distinct members: the mapping is a bijection, so draws are uniform.
      expect(seen.size).toBe(n * (n - 1));
    }
  });

  it("ties go to the first draw", () => {
    const items = makeItems([4, 4, 4]);
    const s = setOf(items);
    // i = floor(0.9 * 3) = 2, j = floor(0.1 * 2) = 0.
    expect(pickP2C(s, byCost, sequence([0.9, 0.1]))).toBe(items[2]);
    // i = floor(0.1 * 3) = 0, j = floor(0.9 * 2) = 1 → 2 after skipping i.
    expect(pickP2C(s, byCost, sequence([0.1, 0.9]))).toBe(items[0]);
  });

  it("never returns an item that is not in the set, as items come and go", () => {
    const rnd = mulberry32(42);
    const items = makeItems(Array.from({ length: 40 }, (_, i) => i % 7));
    const s = new UsableSet<Item>();
    const ref = new Set<Item>();
    for (let step = 0; step < 2000; step++) {
      const it = items[Math.floor(rnd() * items.length)] as Item;
      if (rnd() < 0.5) {
        s.add(it);
        ref.add(it);
      } else {
        s.delete(it);
        ref.delete(it);
      }
      const picked = pickP2C(s, byCost, rnd);
      if (ref.size === 0) expect(picked).toBeUndefined();
      else expect(ref.has(picked as Item)).toBe(true);
    }
  });

  it("with costs [0, 0, 10] (seeded), the costly member is (almost) never picked", () => {
    const rnd = mulberry32(12345);
    const items = makeItems([0, 0, 10]);
    const s = setOf(items);
    const counts = [0, 0, 0];
    const N = 10_000;
    for (let k = 0; k < N; k++) {
      const p = pickP2C(s, byCost, rnd) as Item;
      counts[p.id]!++;
    }
    // Any two distinct draws include a free member, so the costly one never wins.
    expect(counts[2]! / N).toBeLessThan(0.01);
    expect(counts[2]! / N).toBeLessThan(1 / 3);
    // The two free members share the load about evenly.
    expect(counts[0]! / N).toBeGreaterThan(0.45);
    expect(counts[1]! / N).toBeGreaterThan(0.45);
  });

  it("with costs [1, 2, 3] (seeded), picks follow P2C's 2/3, 1/3, 0 split", () => {
    const rnd = mulberry32(7);
    const s = setOf(makeItems([1, 2, 3]));
    const counts = [0, 0, 0];
    const N = 10_000;
    for (let k = 0; k < N; k++) counts[(pickP2C(s, byCost, rnd) as Item).id]!++;
    expect(counts[0]! / N).toBeCloseTo(2 / 3, 1);
    expect(counts[1]! / N).toBeCloseTo(1 / 3, 1);
    expect(counts[2]).toBe(0);
  });

  it.each([3, 16, 256, 4096])("is O(1): exactly 2 cost calls, 2 random calls and 2 reads for %i members", (n) => {
    const s = setOf(makeItems(Array.from({ length: n }, (_, i) => i)));
    const rnd = mulberry32(n);
    const random = vi.fn(rnd);
    const cost = vi.fn(byCost);
    const at = vi.spyOn(s, "at");
    for (let k = 0; k < 50; k++) {
      random.mockClear();
      cost.mockClear();
      at.mockClear();
      expect(pickP2C(s, cost, random)).toBeDefined();
      expect(random).toHaveBeenCalledTimes(2);
      expect(cost).toHaveBeenCalledTimes(2);
      expect(at).toHaveBeenCalledTimes(2);
    }
  });
});

// The cost functions moved into load objects: see load.test.ts ("cost functions, as load objects").

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

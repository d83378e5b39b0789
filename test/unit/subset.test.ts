import { describe, expect, it } from "vitest";
import type { Address } from "../../src/core/address.js";
import { AddressBook } from "../../src/supervisor/address-book.js";
import { subsetOrder } from "../../src/supervisor/subset.js";
import { mulberry32 } from "../helpers/random.js";

const keys = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 255}:80`);

/** Connections per backend when clients 0…clients−1 each take the first `size` keys of their order. */
function perBackend(n: number, clients: number, size: number): number[] {
  const count = new Map(keys(n).map((k) => [k, 0]));
  for (let c = 0; c < clients; c++) for (const k of subsetOrder(keys(n), c, size).slice(0, size)) count.set(k, (count.get(k) ?? 0) + 1);
  return [...count.values()];
}

describe("subsetOrder (SRE book deterministic subsetting)", () => {
  it("lists every key exactly once, subset first", () => {
    for (const [n, c, size] of [
      [10, 0, 3],
      [10, 7, 3],
      [7, 100, 3],
      [3, 5, 10],
      [1, 0, 1],
    ] as const) {
      const order = subsetOrder(keys(n), c, size);
      expect(order).toHaveLength(n);
      expect(new Set(order).size).toBe(n);
    }
    expect(subsetOrder([], 3, 3)).toEqual([]);
  });

  it("does not depend on the order the keys come in (every process agrees)", () => {
    const ks = keys(50);
    const shuffled = [...ks].reverse();
    for (const c of [0, 13, 49]) expect(subsetOrder(shuffled, c, 3)).toEqual(subsetOrder(ks, c, 3));
  });

  it("clients of one round take disjoint subsets that cover the backends (the book's algorithm when size divides them)", () => {
    const n = 300;
    const subsets = Array.from({ length: 100 }, (_, c) => subsetOrder(keys(n), c, 3).slice(0, 3));
    expect(new Set(subsets.flat()).size).toBe(n);
  });

  it("spreads a fleet evenly: 1,000 × 300 × 3 and 100 × 100 × 3 give every backend the mean exactly", () => {
    expect(new Set(perBackend(300, 1000, 3))).toEqual(new Set([10]));
    // 100 is not a multiple of 3: a subset that runs past one round's shuffle continues in the next.
    expect(new Set(perBackend(100, 100, 3))).toEqual(new Set([3]));
  });

  it("the book's 300 × 300 × 90 gives every backend 90: subsets that span two rounds meet no backend twice", () => {
    expect(new Set(perBackend(300, 300, 90))).toEqual(new Set([90]));
    for (let c = 0; c < 300; c++) expect(new Set(subsetOrder(keys(300), c, 90).slice(0, 90)).size).toBe(90);
  });

  it("different rounds shuffle differently", () => {
    // Clients 0 and 100 are subset 0 of rounds 0 and 1 (300 backends / 3).
    expect(subsetOrder(keys(300), 0, 3).slice(0, 3)).not.toEqual(subsetOrder(keys(300), 100, 3).slice(0, 3));
  });
});

describe("AddressBook with subset", () => {
  const backoff = { initial: 100, multiplier: 2, max: 1000, timeout: 0, jitter: 0 };
  const addr = (i: number): Address => ({ host: `10.1.0.${i}`, port: 80, family: 4 });
  const list = (n: number): Address[] => Array.from({ length: n }, (_, i) => addr(i));

  it("ranks by the client's subset whatever the process's randomness or the SRV weights", () => {
    const ranks = (seed: number, weight: number): string[] => {
      const b = new AddressBook({ backoff, minHold: 0, random: mulberry32(seed), subset: { clientId: 4, size: 3 } });
      b.update(
        list(12).map((a, i) => ({ ...a, weight: i === 0 ? weight : 1 })),
        0,
      );
      return b.entries().map((e) => e.key);
    };
    const expected = subsetOrder(
      list(12).map((a) => `${a.host}:80`),
      4,
      3,
    );
    expect(ranks(1, 1)).toEqual(expected);
    expect(ranks(99, 50)).toEqual(expected);
  });

  it("takes precedence over retainOrder (NATS retainServerOrder)", () => {
    const b = new AddressBook({ backoff, minHold: 0, random: mulberry32(1), retainOrder: true, subset: { clientId: 3, size: 2 } });
    b.update(list(8), 0);
    expect(b.entries().map((e) => e.key)).toEqual(
      subsetOrder(
        list(8).map((a) => `${a.host}:80`),
        3,
        2,
      ),
    );
  });

  it("choose() fills the subset first, then (with a subset address failing) the next positions", () => {
    const b = new AddressBook({ backoff, minHold: 0, random: mulberry32(1), subset: { clientId: 2, size: 3 } });
    b.update(list(9), 0);
    const order = b.entries().map((e) => e.key);
    const use = new Map<string, { members: number; proving: boolean; live: boolean }>();
    const placed: string[] = [];
    for (let i = 0; i < 3; i++) {
      const d = b.choose(use, 0);
      if (d.kind !== "dial") throw new Error("expected a dial");
      const k = `${d.address.host}:80`;
      placed.push(k);
      use.set(k, { members: 1, proving: false, live: true });
    }
    expect(placed).toEqual(order.slice(0, 3));
    b.failed(order[1] as string, new Error("refused"), 0);
    use.delete(order[1] as string);
    const d = b.choose(use, 0);
    expect(d.kind === "dial" && `${d.address.host}:80`).toBe(order[3]);
  });

  it("re-ranks when the set changes; addresses that stay keep their entries (failures, cooling)", () => {
    const b = new AddressBook({ backoff, minHold: 0, random: mulberry32(1), subset: { clientId: 0, size: 3 } });
    b.update(list(10), 0);
    b.failed("10.1.0.5:80", new Error("refused"), 0);
    b.update(list(9), 0);
    expect(b.entries().map((e) => e.key)).toEqual(
      subsetOrder(
        list(9).map((a) => `${a.host}:80`),
        0,
        3,
      ),
    );
    expect(b.get("10.1.0.5:80")?.failures).toBe(1);
  });
});

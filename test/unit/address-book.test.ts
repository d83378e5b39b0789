import { describe, expect, it } from "vitest";
import type { Address } from "../../src/core/address.js";
import { AddressBook, chooseAddress, type AddressLoad, type AddressUse, type SpreadDecision } from "../../src/supervisor/address-book.js";
import { mulberry32 } from "../helpers/random.js";

const NOW = 10_000;

function addr(i: number): Address {
  return { host: `127.0.0.${i + 2}`, port: 8443, family: 4 };
}

function load(i: number, over: Partial<Omit<AddressLoad, "address">> = {}): AddressLoad {
  return { address: addr(i), members: 0, proving: false, coolingUntil: 0, ...over };
}

function dialed(d: SpreadDecision): string {
  if (d.kind !== "dial") throw new Error(`expected a dial decision, got ${JSON.stringify(d)}`);
  return d.address.host;
}

describe("chooseAddress (Spread rule)", () => {
  it("picks the address with the fewest members", () => {
    const loads = [load(0, { members: 2 }), load(1, { members: 1 }), load(2, { members: 3 })];
    expect(dialed(chooseAddress(loads, NOW))).toBe(addr(1).host);
  });

  it("breaks ties by list order (the first of the least loaded wins)", () => {
    expect(dialed(chooseAddress([load(0), load(1), load(2)], NOW))).toBe(addr(0).host);
    const loads = [load(0, { members: 2 }), load(1, { members: 1 }), load(2, { members: 1 })];
    expect(dialed(chooseAddress(loads, NOW))).toBe(addr(1).host);
    const reversed = [load(2, { members: 1 }), load(1, { members: 1 }), load(0, { members: 2 })];
    expect(dialed(chooseAddress(reversed, NOW))).toBe(addr(2).host);
  });

  it("skips an address whose member is still proving itself (stacking waits)", () => {
    // Both addresses hold one member; the first one's member is still proving itself.
    const loads = [load(0, { members: 1, proving: true }), load(1, { members: 1 })];
    expect(dialed(chooseAddress(loads, NOW))).toBe(addr(1).host);
    // Even when the proving address is listed first with fewer members than a free one.
    const loads2 = [load(0, { members: 1, proving: true }), load(1, { members: 1 }), load(2, { members: 2 })];
    expect(dialed(chooseAddress(loads2, NOW))).toBe(addr(1).host);
  });

  it("stacks no address deeper than one whose member is still proving", () => {
    // B would get its 3rd member while A's 1st is unproven: wait for A instead.
    const loads = [load(0, { members: 1, proving: true }), load(1, { members: 2 })];
    expect(chooseAddress(loads, NOW)).toEqual({ kind: "wait", until: undefined });
    // Stacking to the same depth as the proving address is fine.
    const level = [load(0, { members: 2, proving: true }), load(1, { members: 2 })];
    expect(dialed(chooseAddress(level, NOW))).toBe(addr(1).host);
    // A proving address that is backing off does not hold the others back.
    const cooling = [load(0, { members: 1, proving: true, coolingUntil: NOW + 100 }), load(1, { members: 2 })];
    expect(dialed(chooseAddress(cooling, NOW))).toBe(addr(1).host);
  });

  it("waits for a change when the only address with room is still proving", () => {
    expect(chooseAddress([load(0, { members: 1, proving: true })], NOW)).toEqual({ kind: "wait", until: undefined });
  });

  it("treats a proving address with 0 members as eligible", () => {
    const loads = [load(0, { members: 0, proving: true }), load(1, { members: 1 })];
    expect(dialed(chooseAddress(loads, NOW))).toBe(addr(0).host);
  });

  it("skips a cooling address while a non-cooling one exists, even if that means stacking", () => {
    const loads = [load(0, { coolingUntil: NOW + 500 }), load(1, { members: 3 })];
    expect(dialed(chooseAddress(loads, NOW))).toBe(addr(1).host);
  });

  it("an address whose cooling has ended (coolingUntil <= now) is eligible again", () => {
    const loads = [load(0, { coolingUntil: NOW }), load(1, { members: 1 })];
    expect(dialed(chooseAddress(loads, NOW))).toBe(addr(0).host);
    const loads2 = [load(0, { coolingUntil: NOW - 1 }), load(1, { members: 1 })];
    expect(dialed(chooseAddress(loads2, NOW))).toBe(addr(0).host);
  });

  it("when every eligible address is cooling, waits until the earliest one ends", () => {
    const loads = [load(0, { coolingUntil: NOW + 900 }), load(1, { coolingUntil: NOW + 300 }), load(2, { coolingUntil: NOW + 600 })];
    expect(chooseAddress(loads, NOW)).toEqual({ kind: "wait", until: NOW + 300 });
  });

  it("a proving address does not count as the earliest cooling one", () => {
    const loads = [load(0, { members: 1, proving: true, coolingUntil: NOW + 100 }), load(1, { coolingUntil: NOW + 700 })];
    expect(chooseAddress(loads, NOW)).toEqual({ kind: "wait", until: NOW + 700 });
  });

  it("with nothing eligible at all, waits for a change (until undefined)", () => {
    expect(chooseAddress([], NOW)).toEqual({ kind: "wait", until: undefined });
    const loads = [load(0, { members: 1, proving: true }), load(1, { members: 2, proving: true })];
    expect(chooseAddress(loads, NOW)).toEqual({ kind: "wait", until: undefined });
  });

  describe("simulation: N slots assigned one at a time", () => {
    /** Assigns `slots` members over `addresses` addresses; each member proves itself before the next slot dials. */
    function simulate(slots: number, addresses: number): number[] {
      const loads: AddressLoad[] = Array.from({ length: addresses }, (_, i) => load(i));
      for (let s = 0; s < slots; s++) {
        const d = chooseAddress(loads, NOW);
        const host = dialed(d);
        const i = loads.findIndex((l) => l.address.host === host);
        expect(i).toBeGreaterThanOrEqual(0);
        const l = loads[i] as AddressLoad;
        // Dialing: one more member, still proving.
        loads[i] = { ...l, members: l.members + 1, proving: true };
        // While it proves itself, a second member may not stack on it.
        const during = chooseAddress(loads, NOW);
        if (during.kind === "dial") expect(during.address.host).not.toBe(host);
        // "ready": the member has proven itself.
        loads[i] = { ...(loads[i] as AddressLoad), proving: false };
      }
      return loads.map((l) => l.members);
    }

    it.each([
      [1, 1],
      [3, 1],
      [3, 2],
      [7, 3],
      [10, 4],
      [16, 5],
      [64, 7],
    ])("%i slots over %i addresses stack evenly (counts differ by at most 1)", (slots, addresses) => {
      const counts = simulate(slots, addresses);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(slots);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    });

    it.each([
      [1, 1],
      [3, 3],
      [3, 5],
      [5, 12],
      [32, 32],
    ])("%i slots over %i addresses land on distinct addresses", (slots, addresses) => {
      const counts = simulate(slots, addresses);
      expect(counts.filter((c) => c === 1)).toHaveLength(slots);
      expect(counts.filter((c) => c > 1)).toHaveLength(0);
    });
  });
});

describe("AddressBook", () => {
  const backoff = { initial: 100, multiplier: 2, max: 1000, timeout: 0, jitter: 0 };
  const k = (i: number): string => `${addr(i).host}:8443`;
  function book(over: { minHold?: number; random?: () => number; jitter?: number } = {}): AddressBook {
    return new AddressBook({ backoff: { ...backoff, jitter: over.jitter ?? 0 }, minHold: over.minHold ?? 30_000, random: over.random ?? mulberry32(3) });
  }
  const use = (entries: Array<[number, Partial<AddressUse>]>): Map<string, AddressUse> =>
    new Map(entries.map(([i, u]) => [k(i), { members: 0, proving: false, live: false, ...u }]));

  it("each address backs off on its own clock with p-retry's formula: initial × multiplier^(n-1), capped at max", () => {
    const b = book();
    b.update([addr(0), addr(1)], 0);
    const cooling: number[] = [];
    for (let n = 0; n < 6; n++) {
      b.failed(k(0), new Error("refused"), 1000);
      cooling.push(b.get(k(0))!.coolingUntil - 1000);
    }
    expect(cooling).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(b.get(k(1))!.coolingUntil).toBe(0);
    b.stable(k(0));
    expect(b.get(k(0))).toMatchObject({ failures: 0, coolingUntil: 0 });
  });

  it("jitter only lengthens a delay, by at most the jitter fraction", () => {
    const b = book({ jitter: 0.2, random: () => 0.999 });
    b.update([addr(0)], 0);
    b.failed(k(0), new Error("x"), 0);
    expect(b.get(k(0))!.coolingUntil).toBeGreaterThanOrEqual(100);
    expect(b.get(k(0))!.coolingUntil).toBeLessThanOrEqual(120);
  });

  it("choose() stacks on a live address rather than dial one that is failing, even with fewer members there", () => {
    const b = book();
    b.update([addr(0), addr(1)], 0);
    b.failed(k(1), new Error("refused"), 0);
    // Address 1 has finished backing off but is still failing: the slot stacks on 0.
    const d = b.choose(use([[0, { members: 2, live: true }]]), 500);
    expect(d).toEqual({ kind: "dial", address: addr(0) });
  });

  it("choose() treats a failing address that holds a ready member as live", () => {
    const b = book();
    b.update([addr(0), addr(1)], 0);
    b.failed(k(0), new Error("flap"), 0);
    b.failed(k(1), new Error("refused"), 0);
    expect(b.choose(use([[0, { members: 1, live: true }]]), 500)).toEqual({ kind: "dial", address: addr(0) });
    // Even while its backoff from another connection's loss runs: it answers now.
    expect(b.choose(use([[0, { members: 1, live: true }]]), 50)).toEqual({ kind: "dial", address: addr(0) });
    expect(b.choose(use([[0, { members: 1, live: false }]]), 50)).toEqual({ kind: "wait", until: 100 });
  });

  it("choose() dials failing addresses only when no good one is left, waiting for the earliest backoff to end", () => {
    const b = book();
    b.update([addr(0), addr(1)], 0);
    b.failed(k(0), new Error("refused"), 0);
    b.failed(k(1), new Error("refused"), 50);
    expect(b.choose(use([]), 10)).toEqual({ kind: "wait", until: 100 });
    expect(b.choose(use([]), 100)).toEqual({ kind: "dial", address: addr(0) });
    expect(b.allFailing(use([]))).toBe(true);
    expect(b.allFailing(use([[0, { members: 1, live: true }]]))).toBe(false);
  });

  it("an answer that overlaps the book holds the addresses it omits for minHold; one that shares nothing replaces the book", () => {
    const b = book({ minHold: 1000 });
    expect(b.update([addr(0), addr(1)], 0)).toEqual([]);
    expect(b.update([addr(1), addr(2)], 500)).toEqual([]);
    expect(b.has(k(0))).toBe(true);
    expect(b.update([addr(1), addr(2)], 1000)).toEqual([k(0)]);
    expect(b.update([addr(5)], 1100).sort()).toEqual([k(1), k(2)].sort());
    expect(b.entries().map((e) => e.key)).toEqual([k(5)]);
    // An empty answer (NXDOMAIN) shares nothing either.
    expect(b.update([], 1200)).toEqual([k(5)]);
    expect(b.size).toBe(0);
  });

  it("ranks are a per-process shuffle, and SRV weights pull heavier addresses forward", () => {
    const firsts = new Map<string, number>();
    for (let seed = 1; seed <= 400; seed++) {
      const b = book({ random: mulberry32(seed) });
      b.update(
        [
          { ...addr(0), weight: 1 },
          { ...addr(1), weight: 9 },
        ],
        0,
      );
      const first = b.entries()[0]!.key;
      firsts.set(first, (firsts.get(first) ?? 0) + 1);
    }
    // P(heavier first) = 9 / 10.
    expect(firsts.get(k(1))! / 400).toBeGreaterThan(0.8);
    expect(firsts.get(k(0))! / 400).toBeGreaterThan(0.03);
    const plain = new Map<string, number>();
    for (let seed = 1; seed <= 400; seed++) {
      const b = book({ random: mulberry32(seed) });
      b.update([addr(0), addr(1), addr(2)], 0);
      const first = b.entries()[0]!.key;
      plain.set(first, (plain.get(first) ?? 0) + 1);
    }
    for (const i of [0, 1, 2]) expect(plain.get(k(i))! / 400).toBeGreaterThan(0.25);
  });
});

describe("AddressBook: caller-supplied order and delays (NATS retainServerOrder and a backoff function)", () => {
  const backoff = { initial: 100, multiplier: 2, max: 10_000, timeout: 0, jitter: 0.2 };

  it("retainOrder ranks addresses in the resolver's order; without it the order is shuffled", () => {
    const list = Array.from({ length: 8 }, (_, i) => addr(i));
    const kept = new AddressBook({ backoff, minHold: 30_000, random: mulberry32(7), retainOrder: true });
    kept.update(list, NOW);
    expect(kept.entries().map((e) => e.address.host)).toEqual(list.map((a) => a.host));
    const shuffled = new AddressBook({ backoff, minHold: 30_000, random: mulberry32(7) });
    shuffled.update(list, NOW);
    expect(shuffled.entries().map((e) => e.address.host)).not.toEqual(list.map((a) => a.host));
  });

  it("backoffDelay decides each failure's cooling, with the failure count, and no jitter on top", () => {
    const asked: number[] = [];
    const book = new AddressBook({ backoff, minHold: 30_000, random: () => 0.99, backoffDelay: (n) => (asked.push(n), n * 1000) });
    book.update([addr(0)], NOW);
    for (let i = 1; i <= 3; i++) {
      book.failed(addr(0).host + ":8443", new Error("refused"), NOW);
      expect(book.get(`${addr(0).host}:8443`)!.coolingUntil).toBe(NOW + i * 1000);
    }
    expect(asked).toEqual([1, 2, 3]);
  });
});

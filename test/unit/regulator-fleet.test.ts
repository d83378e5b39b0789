import { describe, expect, it } from "vitest";
import { subsetOrder } from "../../src/supervisor/subset.js";
import { Sim, addr, key } from "../helpers/regulator-sim.js";

/** Proves every open dial, round after round, until none is left; returns how many rounds it took. */
function warmUp(s: Sim, limit = 1000): number {
  let rounds = 0;
  while (s.open.size > 0 && rounds < limit) {
    rounds++;
    for (const d of [...s.open.values()]) s.prove(d);
  }
  return rounds;
}

describe("Regulator: fast warm-up", () => {
  it("1,000 members over 10 addresses warm up in growing batches: a handful of round trips, not one per member", () => {
    const s = new Sim({ members: 1000 });
    s.answer(...Array.from({ length: 10 }, (_, i) => i + 1));
    // First round: one dial per address, nothing stacked on an unproven address.
    expect(s.open.size).toBe(10);
    const rounds = warmUp(s);
    expect(s.of("state").filter((a) => a.to === "ready")).toHaveLength(1000);
    // Batches double per address (1, 1, 2, 4, … proving at once): ⌈log2 100⌉ + 1 rounds, where one at a time took 100.
    expect(rounds).toBeLessThanOrEqual(9);
    const per = new Map<string, number>();
    for (const d of s.of("dial")) per.set(d.address.host, (per.get(d.address.host) ?? 0) + 1);
    expect(new Set(per.values())).toEqual(new Set([100]));
  });

  it("a proven address takes at most as many proving dials at once as it has proven members", () => {
    const s = new Sim({ members: 20 });
    s.answer(1);
    const batches: number[] = [];
    while (s.open.size > 0) {
      batches.push(s.open.size);
      for (const d of [...s.open.values()]) s.prove(d);
    }
    expect(batches).toEqual([1, 1, 2, 4, 8, 4]);
  });

  it("an address whose first member is still proving holds back deeper stacking elsewhere, as before", () => {
    const s = new Sim({ members: 6 });
    s.answer(1, 2);
    s.up(1);
    // 1 has one proven member; 2's first is unproven: 1 may take its second (same depth as 2), not a third.
    expect(s.dialsTo(1)).toHaveLength(1);
    s.up(1);
    expect(s.dialsTo(1)).toHaveLength(0);
    s.up(2);
    expect(s.open.size).toBeGreaterThan(0);
  });
});

describe("Regulator: subsetting", () => {
  it("with subset.clientId, slots dial the client's subset (members = subset size)", () => {
    const keys = Array.from({ length: 12 }, (_, i) => key(i + 1));
    for (const clientId of [0, 5, 11]) {
      const s = new Sim({ members: 3, subset: { clientId } });
      s.answer(...Array.from({ length: 12 }, (_, i) => i + 1));
      const dialed = s.of("dial").map((d) => `${d.address.host}:${d.address.port}`);
      expect(new Set(dialed)).toEqual(new Set(subsetOrder(keys, clientId, 3).slice(0, 3)));
    }
  });

  it("a backend leaving moves only the members that were on it", () => {
    const all = Array.from({ length: 9 }, (_, i) => i + 1);
    const s = new Sim({ members: 3, subset: { clientId: 1 }, minHold: 0 });
    s.answer(...all);
    warmUp(s);
    const before = s.of("dial").map((d) => d.address.host);
    const gone = Number((before[0] as string).split(".")[3]);
    s.clear();
    s.answer(...all.filter((i) => i !== gone));
    warmUp(s);
    expect(s.of("dial")).toHaveLength(1);
    expect(s.of("drain")).toHaveLength(1);
    expect(before).not.toContain(s.of("dial")[0]?.address.host);
  });
});

/** Members that follow load: samples every 250 ms of fake time, as the supervisor sends them. */
function sample(s: Sim, inFlight: number, ms: number, streamLimit = Number.POSITIVE_INFINITY): void {
  for (let t = 0; t < ms; t += 250) {
    s.advance(250);
    s.send({ type: "load", inFlight, streamLimit });
    // Every dial the regulator asks for connects and proves at once: load, not warm-up, is under test.
    warmUp(s);
  }
}

function changes(s: Sim): Array<[number, number]> {
  return s.of("members").map((a) => [a.from, a.to]);
}

describe("Regulator: members that follow load", () => {
  const range = { members: { min: 2, max: 6, target: 10, growAfter: 1000, shrinkAfter: 5000 } };

  function started(): Sim {
    const s = new Sim(range);
    s.answer(1, 2, 3, 4, 5, 6);
    warmUp(s);
    s.clear();
    return s;
  }

  it("grows one member at a time while load stays above target, up to max", () => {
    const s = started();
    // 2 members × 30 in flight: far above 10 per member.
    sample(s, 60, 20_000);
    expect(changes(s)).toEqual([
      [2, 3],
      [3, 4],
      [4, 5],
      [5, 6],
    ]);
    expect(s.reg.wanted).toBe(6);
    // Each new member got its own slot and a distinct address.
    expect(new Set(s.of("dial").map((d) => d.address.host)).size).toBe(4);
  });

  it("needs growAfter of sustained load: a short burst changes nothing", () => {
    const s = started();
    sample(s, 60, 750);
    sample(s, 10, 5000);
    expect(changes(s)).toEqual([]);
  });

  it("shrinks to min after load stays below a quarter of target for shrinkAfter, draining the surplus members", () => {
    const s = started();
    sample(s, 100, 10_000);
    expect(s.reg.wanted).toBe(6);
    s.clear();
    sample(s, 0, 4750);
    expect(changes(s)).toEqual([]);
    sample(s, 0, 30_000);
    expect(changes(s)).toEqual([
      [6, 5],
      [5, 4],
      [4, 3],
      [3, 2],
    ]);
    expect(s.of("drain").map((a) => a.reason)).toEqual(["surplus", "surplus", "surplus", "surplus"]);
    expect(s.reg.wanted).toBe(2);
  });

  it("steady load between a quarter of target and target never flaps", () => {
    const s = started();
    sample(s, 50, 3000);
    const grown = s.reg.wanted;
    s.clear();
    // 4 members × 5 = 20 in flight: 5 per member, between 2.5 and 10.
    sample(s, grown * 5, 120_000);
    expect(changes(s)).toEqual([]);
    // And a load that sits exactly at target after growing does not shrink it back.
    sample(s, grown * 10, 60_000);
    expect(changes(s)).toEqual([]);
  });

  it("without a target, it is half the peers' stream limit (or 64 with none)", () => {
    const s = new Sim({ members: { ...range.members, target: undefined } });
    s.answer(1, 2, 3);
    warmUp(s);
    s.clear();
    // 2 members × 40: above 64/2? No — target 64 without a limit: no growth.
    sample(s, 80, 5000);
    expect(changes(s)).toEqual([]);
    // With a stream limit of 50, target is 25: 40 per member is above it.
    sample(s, 80, 1250, 50);
    expect(changes(s)).toEqual([[2, 3]]);
  });

  it("a fixed member count ignores load samples", () => {
    const s = new Sim({ members: 2 });
    s.answer(1, 2, 3);
    warmUp(s);
    sample(s, 10_000, 10_000);
    expect(changes(s)).toEqual([]);
  });

  it("shrinking while the last slot's dial is still open cancels it", () => {
    const s = started();
    sample(s, 60, 1250);
    expect(s.reg.wanted).toBe(3);
    // Grow once more but leave the new dial open, then let load fall for shrinkAfter.
    s.advance(1000);
    s.send({ type: "load", inFlight: 90, streamLimit: Number.POSITIVE_INFINITY });
    s.advance(250);
    s.send({ type: "load", inFlight: 90, streamLimit: Number.POSITIVE_INFINITY });
    const open = [...s.open.values()];
    expect(s.reg.wanted).toBe(4);
    expect(open).toHaveLength(1);
    for (let t = 0; t <= 5000; t += 250) {
      s.advance(250);
      s.send({ type: "load", inFlight: 0, streamLimit: Number.POSITIVE_INFINITY });
    }
    expect(s.of("cancel").map((a) => a.dial)).toContain(open[0]?.dial);
    expect(addr(1).port).toBe(443);
  });
});

describe("Regulator: members that follow latency", () => {
  const range = { members: { min: 2, max: 4, target: 10, growAfter: 1000, shrinkAfter: 5000 } };

  function at(s: Sim, inFlight: number, latency: number | undefined, ms: number): void {
    for (let t = 0; t < ms; t += 250) {
      s.advance(250);
      s.send({ type: "load", inFlight, streamLimit: Number.POSITIVE_INFINITY, latency });
      warmUp(s);
    }
  }

  function started(): Sim {
    const s = new Sim(range);
    s.answer(1, 2, 3, 4);
    warmUp(s);
    s.clear();
    return s;
  }

  it("grows while there is load and the latency estimate stays above twice its quiet level", () => {
    const s = started();
    at(s, 2, 5, 3000); // quiet: 1 per member, 5 ms
    at(s, 10, 6, 3000); // load in the band, latency unchanged: nothing
    expect(changes(s)).toEqual([]);
    at(s, 10, 15, 1250); // 3 × the quiet level, 5 per member (below target): one more member
    expect(changes(s)).toEqual([[2, 3]]);
  });

  it("a latency rise while quiet is not load: no growth", () => {
    const s = started();
    at(s, 2, 5, 3000);
    at(s, 1, 50, 5000);
    expect(changes(s)).toEqual([]);
  });

  it("an idle estimate (decayed toward zero) is not learned as the quiet level, and sub-2 ms rises are noise", () => {
    const s = started();
    at(s, 0, 0.01, 3000);
    at(s, 10, 1.5, 3000);
    expect(changes(s)).toEqual([]);
    // Learned at 0.2 ms with requests flowing: 1.5 ms is 7 × that, but only 1.3 ms more.
    at(s, 2, 0.2, 3000);
    at(s, 10, 1.5, 3000);
    expect(changes(s)).toEqual([]);
  });

  it("without a latency estimate (in-flight balancer) only the in-flight count decides", () => {
    const s = started();
    at(s, 2, undefined, 3000);
    at(s, 10, undefined, 5000);
    expect(changes(s)).toEqual([]);
  });
});

describe("Regulator: shrinking never costs a good member", () => {
  it("waits while another slot lacks a ready member (here the first is evicted and re-dialing)", () => {
    const s = new Sim({ members: { min: 1, max: 3, target: 10, growAfter: 1000, shrinkAfter: 2000 }, criticalMin: 0 });
    s.answer(1, 2, 3);
    warmUp(s);
    sample(s, 100, 5000);
    expect(s.reg.wanted).toBe(3);
    // Degraded mode is off (criticalMin 0): take the first ready member's slot out of the count by making it unhealthy
    // while its eviction's replacement dial stays open.
    const first = s.of("state").find((a) => a.to === "ready")?.member as number;
    s.send({ type: "unhealthy", member: first, error: new Error("no PONG") });
    s.clear();
    for (let t = 0; t < 5000; t += 250) {
      s.advance(250);
      s.send({ type: "load", inFlight: 0, streamLimit: Number.POSITIVE_INFINITY });
    }
    expect(changes(s)).toEqual([]);
    warmUp(s);
    sample(s, 0, 2500);
    expect(changes(s)[0]).toEqual([3, 2]);
  });
});

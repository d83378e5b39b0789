import { describe, expect, it } from "vitest";
import { DEFAULT_OUTLIER } from "../../src/pool/outlier-options.js";
import { Sim, addr, key, type Dial } from "../helpers/regulator-sim.js";

describe("Regulator: where slots dial", () => {
  it("fills every slot on distinct addresses", () => {
    const s = new Sim();
    s.answer(1, 2, 3, 4);
    expect(new Set(s.of("dial").map((d) => d.address.host)).size).toBe(3);
    expect(
      s
        .of("dial")
        .map((d) => d.slot)
        .sort(),
    ).toEqual([0, 1, 2]);
  });

  it("stacks on a live address at once when an address refuses, and waits for the first member there to prove itself", () => {
    const s = new Sim();
    s.answer(1, 2);
    // Two slots dial 1 and 2; the third waits: stacking must wait for a proven member.
    expect(s.of("dial")).toHaveLength(2);
    s.refuse(2);
    // Address 2 failed; 1 is still proving, so nothing more yet.
    expect(s.open.size).toBe(1);
    s.up(1);
    // Now both free slots may stack on 1 — one at a time, each after the previous proved.
    expect(s.dialsTo(1)).toHaveLength(1);
    s.up(1);
    expect(s.dialsTo(1)).toHaveLength(1);
    s.up(1);
    expect(s.open.size).toBe(0);
    expect(s.of("state").filter((a) => a.to === "ready")).toHaveLength(3);
  });

  it("never dials a failing address while a good one has room, and retries dead addresses on their own backoff", () => {
    const s = new Sim({ members: 2 });
    s.answer(1, 2);
    s.up(1);
    s.refuse(2);
    s.up(1);
    expect(s.open.size).toBe(0);
    // Spread repair probes address 2 when its backoff (100 ms) ends: dial first, drain later.
    s.clear();
    s.advance(99);
    expect(s.of("dial")).toEqual([]);
    s.advance(1);
    expect(s.of("dial").map((d) => d.address.host)).toEqual([addr(2).host]);
    s.refuse(2);
    // The next probe waits 200 ms, then 400 ms: one clock per address.
    s.clear();
    s.advance(199);
    expect(s.of("dial")).toEqual([]);
    s.advance(1);
    expect(s.of("dial")).toHaveLength(1);
    s.refuse(2);
    s.clear();
    s.advance(399);
    expect(s.of("dial")).toEqual([]);
    s.advance(1);
    expect(s.of("dial")).toHaveLength(1);
  });

  it("with every address failing, empty slots dial the one whose backoff ends first and ask the resolver for a fresh answer", () => {
    const s = new Sim({ members: 1 });
    s.answer(1, 2);
    // Whichever is dialed first, both get refused once.
    s.refuse(1);
    s.refuse(2);
    s.refuse(1);
    expect(s.reg.book.entries().map((e) => e.failures)).toEqual([1, 1]);
    expect(s.of("refresh")).toHaveLength(1);
    s.clear();
    s.advance(99);
    expect(s.of("dial")).toEqual([]);
    s.advance(1);
    expect(s.of("dial")).toHaveLength(1);
  });
});

describe("Regulator: giving up", () => {
  it("with a finite backoff.timeout, an empty slot that keeps failing that long gives up and dials no more", () => {
    const s = new Sim({ members: 1, backoff: { initial: 100, multiplier: 2, max: 10_000, timeout: 500, jitter: 0 } });
    s.answer(1);
    for (let i = 0; i < 10 && s.of("gave-up").length === 0; i++) {
      s.refuse(1);
      s.advance(1000);
    }
    const [gaveUp] = s.of("gave-up");
    expect(gaveUp).toMatchObject({ slot: 0 });
    expect(gaveUp!.error.message).toContain("ECONNREFUSED");
    expect(s.now).toBeGreaterThanOrEqual(500);
    s.clear();
    s.advance(60_000);
    expect(s.of("dial")).toEqual([]);
  });
});

describe("Regulator: eviction and degraded mode", () => {
  function full(): { s: Sim; ids: number[] } {
    const s = new Sim();
    s.answer(1, 2, 3);
    const ids = [...s.up(1), ...s.up(2), ...s.up(3)];
    s.clear();
    return { s, ids };
  }

  it("an unhealthy member is evicted and its slot re-dialed elsewhere", () => {
    const { s, ids } = full();
    const slot = s.reg.slotOf(ids[0]!);
    s.send({ type: "unhealthy", member: ids[0]!, error: new Error("no PONG") });
    expect(s.actions.filter((a) => a.type !== "wake").map((a) => a.type)).toEqual(["state", "evict", "dial"]);
    expect(s.of("state")[0]).toMatchObject({ member: ids[0], to: "unhealthy" });
    expect(s.of("evict")[0]).toMatchObject({ member: ids[0], reason: "unhealthy" });
    const dial = s.of("dial")[0]!;
    expect(dial.slot).toBe(slot);
    // Address 1 now backs off: the slot stacks on a live address instead.
    expect(dial.address.host).not.toBe(addr(1).host);
    expect(s.reg.book.get(key(1))!.failures).toBe(1);
  });

  it("enters degraded mode when the last ready member turns unhealthy (no eviction), and leaves it — evicting — when one is ready again", () => {
    const s = new Sim({ members: 2 });
    s.answer(1, 2);
    const [a] = s.up(1);
    const [b] = s.up(2);
    s.clear();
    s.send({ type: "unhealthy", member: a!, error: new Error("no PONG") });
    expect(s.of("evict")).toHaveLength(1);
    s.refuse(1);
    s.refuse(2);
    s.clear();
    s.send({ type: "unhealthy", member: b!, error: new Error("no PONG") });
    expect(s.actions.filter((x) => x.type !== "wake").map((x) => x.type)).toEqual(["state", "degraded"]);
    expect(s.of("degraded")[0]).toMatchObject({ degraded: true, healthy: 0 });
    expect(s.reg.degraded).toBe(true);
    // A new member proves itself: degraded mode ends, the doubtful member goes.
    s.clear();
    s.advance(200);
    const dial = [...s.open.values()][0]!;
    s.prove(dial);
    expect(s.of("degraded")[0]).toMatchObject({ degraded: false, healthy: 1 });
    expect(s.of("evict").map((e) => e.member)).toEqual([b]);
  });

  it("an unhealthy member that answers again in degraded mode ends it and is kept", () => {
    const s = new Sim({ members: 1 });
    s.answer(1);
    const [a] = s.up(1);
    s.clear();
    s.send({ type: "unhealthy", member: a!, error: new Error("no PONG") });
    expect(s.of("evict")).toEqual([]);
    s.send({ type: "healthy", member: a! });
    expect(s.of("degraded").map((d) => d.degraded)).toEqual([true, false]);
    expect(s.of("evict")).toEqual([]);
  });

  it("criticalMin=2: not degraded before two were ready together", () => {
    const s = new Sim({ members: 3, criticalMin: 2 });
    s.answer(1, 2, 3);
    const [a] = s.up(1);
    s.refuse(2);
    s.refuse(3);
    s.clear();
    // Only one ever ready: below criticalMin, but it was never reached, so the member is evicted.
    s.send({ type: "unhealthy", member: a!, error: new Error("no PONG") });
    expect(s.of("degraded")).toEqual([]);
    expect(s.of("evict").map((e) => e.member)).toEqual([a]);
  });

  it("criticalMin=2: degraded below two ready after having had two; it ends at two again", () => {
    const s = new Sim({ members: 3, criticalMin: 2 });
    s.answer(1, 2, 3);
    const [a] = s.up(1);
    const [b] = s.up(2);
    s.up(3);
    s.clear();
    s.send({ type: "unhealthy", member: a!, error: new Error("no PONG") }); // two ready: still at criticalMin
    expect(s.of("degraded")).toEqual([]);
    expect(s.of("evict").map((e) => e.member)).toEqual([a]);
    for (let i = 1; i <= 3; i++) s.refuse(i);
    s.clear();
    s.send({ type: "unhealthy", member: b!, error: new Error("no PONG") }); // one ready: below
    expect(s.of("degraded")).toEqual([{ type: "degraded", degraded: true, healthy: 1 }]);
    expect(s.of("evict")).toEqual([]);
    s.clear();
    s.send({ type: "healthy", member: b! });
    expect(s.of("degraded")).toEqual([{ type: "degraded", degraded: false, healthy: 2 }]);
  });

  it("criticalMin=0 never degrades: an unhealthy last member is evicted", () => {
    const s = new Sim({ members: 1, criticalMin: 0 });
    s.answer(1);
    const [a] = s.up(1);
    s.clear();
    s.send({ type: "unhealthy", member: a!, error: new Error("no PONG") });
    expect(s.of("degraded")).toEqual([]);
    expect(s.of("evict").map((e) => e.member)).toEqual([a]);
  });

  it("a peer that closes a serving member is evicted as peer-closed; closing the channel blames nobody", () => {
    const { s, ids } = full();
    s.send({ type: "lost", member: ids[0]!, error: new Error("ECONNRESET") });
    expect(s.of("evict")[0]).toMatchObject({ member: ids[0], reason: "peer-closed" });
    s.clear();
    s.send({ type: "close" });
    s.send({ type: "lost", member: ids[1]!, error: new Error("ECONNRESET") });
    s.send({ type: "goaway", member: ids[2]!, kind: "goaway", detail: "bye", error: new Error("bye") });
    s.send({ type: "unhealthy", member: ids[2]!, error: new Error("no PONG") });
    s.send({ type: "lost", member: ids[2]!, error: undefined });
    expect(s.actions).toEqual([
      { type: "close", member: ids[1], from: "ready", reason: "channel closed", error: undefined },
      { type: "close", member: ids[2], from: "ready", reason: "channel closed", error: undefined },
    ]);
    expect([key(1), key(2), key(3)].map((k) => s.reg.book.get(k)!.failures)).toEqual([1, 0, 0]);
    expect(s.of("dial")).toEqual([]);
  });
});

// The regulator's member table is the one record of member state; the pool only indexes
// what the `pickable` actions tell it (pool.test.ts), so who takes picks is decided here alone.
describe("Regulator: who takes picks (the one record, the one degraded rule)", () => {
  it("a member is recorded connecting, and takes picks once proven: state, then pickable", () => {
    const s = new Sim({ members: 1 });
    s.answer(1);
    const d = s.of("dial")[0]!;
    s.clear();
    s.send({ type: "connected", dial: d.dial, member: 7 });
    expect(s.reg.member(7)).toMatchObject({ id: 7, key: key(1), slot: 0, state: "connecting", pickable: false, provenAt: undefined });
    expect(s.actions.filter((a) => a.type !== "wake")).toEqual([]);
    s.now = 50;
    s.send({ type: "proven", member: 7 });
    expect(s.actions.filter((a) => a.type !== "wake")).toEqual([
      { type: "state", member: 7, from: "connecting", to: "ready", reason: "first PONG" },
      { type: "pickable", member: 7, pickable: true },
    ]);
    expect(s.reg.member(7)).toMatchObject({ state: "ready", pickable: true, provenAt: 50 });
    expect(s.reg.readyCount).toBe(1);
    expect([...s.reg.members()].map((m) => m.id)).toEqual([7]);
  });

  it("the last ready member turning unhealthy stays pickable through the batch that enters degraded mode", () => {
    const s = new Sim({ members: 1 });
    s.answer(1);
    const [a] = s.up(1);
    s.clear();
    s.send({ type: "unhealthy", member: a!, error: new Error("no PONG") });
    // No pickable:false then true: nothing in between sees the channel without a member.
    expect(s.actions.filter((x) => x.type !== "wake")).toEqual([
      { type: "state", member: a, from: "ready", to: "unhealthy", reason: "no PONG" },
      { type: "degraded", degraded: true, healthy: 0 },
    ]);
    expect(s.reg.member(a!)).toMatchObject({ state: "unhealthy", pickable: true });
    expect(s.reg.readyCount).toBe(0);
    // Answering again: ready, still pickable, degraded mode over; no pickable action at all.
    s.clear();
    s.send({ type: "healthy", member: a! });
    expect(s.of("pickable")).toEqual([]);
    expect(s.reg.member(a!)).toMatchObject({ state: "ready", pickable: true });
  });

  it("criticalMin=3: unhealthy members keep picks while degraded, a draining one never does; the mode ends at three ready", () => {
    const s = new Sim({ members: 3, criticalMin: 3 });
    s.answer(1, 2, 3);
    const [a] = s.up(1);
    const [b] = s.up(2);
    const [c] = s.up(3);
    s.clear();
    s.send({ type: "unhealthy", member: a!, error: new Error("no PONG") });
    expect(s.of("degraded")).toEqual([{ type: "degraded", degraded: true, healthy: 2 }]);
    expect(s.of("evict")).toEqual([]);
    expect(s.reg.member(a!)?.pickable).toBe(true);
    // Told to go away while degraded: out of picks before it drains.
    s.clear();
    s.send({ type: "goaway", member: b!, kind: "goaway", detail: "bye", error: new Error("bye") });
    expect(s.actions.filter((x) => x.type === "pickable" || x.type === "drain")).toEqual([
      { type: "pickable", member: b, pickable: false },
      { type: "drain", member: b, from: "ready", reason: "goaway", detail: "bye" },
    ]);
    expect(s.reg.member(b!)).toMatchObject({ state: "draining", pickable: false });
    // b's slot re-dials; its replacement and a's recovery bring three ready back.
    expect(s.open.size).toBe(1);
    const d = s.prove([...s.open.values()][0]!);
    expect(s.reg.degraded).toBe(true);
    s.clear();
    s.send({ type: "healthy", member: a! });
    expect(s.of("degraded")).toEqual([{ type: "degraded", degraded: false, healthy: 3 }]);
    expect([a, c, d].map((id) => s.reg.member(id!)?.pickable)).toEqual([true, true, true]);
    expect(s.reg.member(b!)?.pickable).toBe(false);
  });
});

describe("Regulator: spread repair (dial first, then drain)", () => {
  it("a member stacked while an address was down moves back once that address answers, and only after its replacement proved itself", () => {
    const s = new Sim({ members: 2 });
    s.answer(1, 2);
    s.up(1);
    s.refuse(2);
    const stacked = s.up(1);
    s.clear();
    s.advance(100);
    const probe = s.of("dial")[0]!;
    expect(probe.address.host).toBe(addr(2).host);
    expect(s.of("drain")).toEqual([]);
    s.prove(probe);
    expect(s.of("drain")).toEqual([{ type: "drain", member: stacked[0], from: "ready", reason: "rebalanced", detail: `rebalanced to ${key(2)}` }]);
  });
});

describe("Regulator: a repair dial never holds a slot hostage", () => {
  function stackedWithProbe(): { s: Sim; stacked: number; probe: Dial } {
    const s = new Sim({ members: 2 });
    s.answer(1, 2);
    s.up(1);
    s.refuse(2);
    const [stacked] = s.up(1);
    s.advance(100);
    const probe = s.of("dial").at(-1)!;
    expect(probe.address.host).toBe(addr(2).host);
    s.clear();
    return { s, stacked: stacked!, probe };
  }

  it("the stacked member dies while a probe to a failing address is under way: the probe is cancelled and the slot stacks again at once", () => {
    const { s, stacked, probe } = stackedWithProbe();
    s.send({ type: "lost", member: stacked, error: new Error("ECONNRESET") });
    expect(s.of("cancel")).toEqual([{ type: "cancel", dial: probe.dial }]);
    const redial = s.of("dial")[0]!;
    expect(redial.address.host).toBe(addr(1).host);
    // The cancelled dial's failure blames nobody.
    const before = s.reg.book.get(key(2))!.failures;
    s.send({ type: "dial-failed", dial: probe.dial, member: undefined, error: new Error("aborted") });
    expect(s.reg.book.get(key(2))!.failures).toBe(before);
  });

  it("a repair dial to an address not known to fail takes over the slot instead", () => {
    const s = new Sim({ members: 2 });
    s.answer(1);
    s.up(1);
    const [stacked] = s.up(1);
    s.answer(1, 2);
    const move = s.of("dial").at(-1)!;
    expect(move).toMatchObject({ address: addr(2), attempt: 0 });
    s.clear();
    s.send({ type: "lost", member: stacked!, error: new Error("ECONNRESET") });
    expect(s.of("cancel")).toEqual([]);
    expect(s.of("dial")).toEqual([]);
    s.prove(move);
    expect(s.of("drain")).toEqual([]);
    expect(s.of("state").at(-1)).toMatchObject({ to: "ready" });
  });
});

describe("Regulator: flapping", () => {
  it("a connection lost within flapWindow of its first PONG is a failure: the delays grow instead of resetting", () => {
    const s = new Sim({ members: 1 });
    s.answer(1);
    const gaps: number[] = [];
    let lastDialAt = 0;
    for (let i = 0; i < 6; i++) {
      const [id] = s.up(1);
      s.advance(100);
      s.send({ type: "goaway", member: id!, kind: "goaway", detail: "bye", error: new Error("bye") });
      s.send({ type: "lost", member: id!, error: undefined });
      const before = s.now;
      while (s.open.size === 0 && s.now - before < 60_000) s.advance(10);
      gaps.push(s.now - lastDialAt);
      lastDialAt = s.now;
    }
    // 100 ms alive plus 100, 200, 400, 800, 1600, 3200 ms of backoff.
    expect(gaps.slice(1)).toEqual([300, 500, 900, 1700, 3300]);
  });

  it("a member that outlives flapWindow clears its address's failures", () => {
    const s = new Sim({ members: 1 });
    s.answer(1);
    s.refuse(1);
    s.advance(100);
    s.refuse(1);
    expect(s.reg.book.get(key(1))!.failures).toBe(2);
    s.advance(200);
    s.up(1);
    expect(s.reg.book.get(key(1))!.failures).toBe(2);
    s.advance(4999);
    expect(s.reg.book.get(key(1))!.failures).toBe(2);
    s.advance(1);
    expect(s.reg.book.get(key(1))!.failures).toBe(0);
  });
});

describe("Regulator: rotating answers and minHold", () => {
  it("answers that rotate within a stable superset move no member", () => {
    const s = new Sim();
    s.answer(1, 2, 3);
    s.up(1);
    s.up(2);
    s.up(3);
    s.clear();
    for (const set of [
      [1, 4, 5],
      [2, 5, 6],
      [3, 4, 6],
      [1, 2, 6],
    ]) {
      s.advance(1000);
      s.answer(...set);
    }
    expect(s.of("dial")).toEqual([]);
    expect(s.of("drain")).toEqual([]);
  });

  it("an address no answer has named for minHold leaves; its member drains only after its replacement proved itself", () => {
    const s = new Sim({ members: 1 });
    s.answer(1, 2);
    const first = s.of("dial")[0]!;
    const on = first.address.host === addr(1).host ? 1 : 2;
    const other = on === 1 ? 2 : 1;
    const a = s.prove(first);
    s.clear();
    // Answers keep naming only the other address: held for minHold (30 s) since last named.
    for (let t = 0; t < 29; t++) {
      s.advance(1000);
      s.answer(other);
    }
    expect(s.reg.book.has(key(on))).toBe(true);
    expect(s.of("dial")).toEqual([]);
    s.advance(1000);
    s.answer(other);
    expect(s.reg.book.has(key(on))).toBe(false);
    const replacement = s.of("dial")[0]!;
    expect(replacement.address.host).toBe(addr(other).host);
    expect(s.of("drain")).toEqual([]);
    s.prove(replacement);
    expect(s.of("drain")).toEqual([{ type: "drain", member: a, from: "ready", reason: "address-removed", detail: "address removed by resolver" }]);
  });

  it("an answer that shares nothing with the book (a migration) replaces it at once", () => {
    const s = new Sim({ members: 1 });
    s.answer(1);
    const [a] = s.up(1);
    s.clear();
    s.answer(2);
    expect(s.reg.book.has(key(1))).toBe(false);
    const d = s.of("dial")[0]!;
    expect(d.address.host).toBe(addr(2).host);
    s.prove(d);
    expect(s.of("drain").map((x) => x.member)).toEqual([a]);
  });
});

describe("Regulator: outlier ejection is its decision", () => {
  it("never past maxEjectedPercent: a second failing member is not ejected until the first one's member is gone", () => {
    const s = new Sim({ members: 3, outlier: { ...DEFAULT_OUTLIER, baseEjection: 1000, maxEjection: 2500, maxEjectedPercent: 50 } });
    s.answer(1, 2, 3);
    const [a, b] = [1, 2, 3].map((i) => s.up(i)[0] as number);
    s.clear();
    s.send({ type: "outlier", member: a!, reason: "consecutive-5xx" });
    s.send({ type: "outlier", member: b!, reason: "consecutive-gateway" });
    expect(s.of("eject").map((e) => e.member)).toEqual([a]);
    expect([a, b].map((id) => s.reg.member(id!)?.ejected)).toEqual([true, false]);
    expect([a, b].map((id) => s.reg.member(id!)?.pickable)).toEqual([false, true]);
    // A report on a member already ejected changes nothing and plans nothing.
    s.clear();
    expect(s.send({ type: "outlier", member: a!, reason: "consecutive-5xx" })).toEqual([]);
    // The ejected member's connection is lost: its share is free.
    s.send({ type: "lost", member: a!, error: new Error("ECONNRESET") });
    s.clear();
    s.send({ type: "outlier", member: b!, reason: "consecutive-gateway" });
    expect(s.of("eject")).toEqual([{ type: "eject", member: b, reason: "consecutive-gateway", durationMs: 1000 }]);
  });

  it("each ejection of a member lasts longer (base × times ejected, capped); a draining member is never ejected", () => {
    const s = new Sim({ members: 3 });
    s.answer(1, 2, 3);
    const [a, b] = [1, 2, 3].map((i) => s.up(i)[0] as number);
    s.clear();
    for (let i = 0; i < 4; i++) {
      s.send({ type: "outlier", member: a!, reason: "consecutive-local" });
      s.send({ type: "ejection-ended", member: a! });
    }
    expect(s.of("eject").map((e) => e.durationMs)).toEqual([1000, 2000, 2500, 2500]);
    expect(s.reg.member(a!)).toMatchObject({ ejected: false, pickable: true });
    s.send({ type: "goaway", member: b!, kind: "goaway", detail: "bye", error: new Error("bye") });
    s.clear();
    expect(s.send({ type: "outlier", member: b!, reason: "consecutive-5xx" })).toEqual([]);
    expect(s.reg.member(b!)?.ejected).toBe(false);
  });
});

describe("Regulator: an ejected member's slot dials a replacement", () => {
  /** Four addresses, three members, all proven: address 4 is the one no member uses. */
  function warm(): { s: Sim; byAddress: Map<number, number> } {
    const s = new Sim({ members: 3, retainOrder: true });
    s.answer(1, 2, 3, 4);
    const byAddress = new Map<number, number>();
    for (const i of [1, 2, 3]) byAddress.set(i, s.up(i)[0] as number);
    expect(s.open.size).toBe(0);
    s.clear();
    return { s, byAddress };
  }

  it("dials the address no member uses; once proven it serves the slot, the ejected member stays until its ejection ends, then drains as surplus", () => {
    const { s, byAddress } = warm();
    const bad = byAddress.get(1) as number;
    s.send({ type: "outlier", member: bad, reason: "consecutive-5xx" });
    // Out of picks first, then the ejection (its time grows with each one: the first is baseEjection).
    expect(s.actions.filter((a) => "member" in a && a.member === bad)).toEqual([
      { type: "pickable", member: bad, pickable: false },
      { type: "eject", member: bad, reason: "consecutive-5xx", durationMs: 1000 },
    ]);
    expect(s.of("dial")).toEqual([expect.objectContaining({ slot: s.reg.slotOf(bad), address: addr(4), attempt: 0 })]);
    const dial = s.of("dial")[0] as Dial;
    s.clear();
    const replacement = s.prove(dial);
    // The replacement serves the slot; the ejected member is neither drained nor closed while it sits out.
    expect(s.reg.slotOf(replacement)).toBe(s.reg.slotOf(bad));
    expect(s.actions.filter((a) => "member" in a && a.member === bad)).toEqual([]);
    expect(s.of("dial")).toEqual([]);
    s.clear();
    s.send({ type: "ejection-ended", member: bad });
    // Its counts start over; it never takes picks again (still out of them since its ejection): it drains.
    expect(s.actions).toEqual([
      { type: "ejection-ended", member: bad },
      { type: "drain", member: bad, from: "ready", reason: "surplus", detail: "ejection ended; a replacement serves its slot" },
    ]);
    // Settled: three members on 2, 3 and 4; no dial back to 1 (it is drained, not failed, and no slot is empty).
    s.send({ type: "lost", member: bad, error: undefined });
    s.advance(60_000);
    expect(s.of("dial")).toEqual([]);
  });

  it("never dials the backend of an ejected spare: a replacement that is ejected in turn is replaced on yet another address", () => {
    const s = new Sim({ members: 3, retainOrder: true });
    s.answer(1, 2, 3, 4, 5);
    const first = [1, 2, 3].map((i) => s.up(i)[0] as number)[0] as number;
    s.clear();
    s.send({ type: "outlier", member: first, reason: "consecutive-5xx" });
    const second = s.prove(s.of("dial")[0] as Dial);
    expect(s.of("dial").map((d) => d.address)).toEqual([addr(4)]);
    s.send({ type: "outlier", member: second, reason: "consecutive-5xx" });
    // Address 1 has no member in a slot, but its ejected spare still sits there: 5 it is.
    expect(s.of("dial").map((d) => d.address)).toEqual([addr(4), addr(5)]);
    const third = s.prove(s.of("dial")[1] as Dial);
    expect(s.reg.slotOf(third)).toBe(s.reg.slotOf(first));
    s.clear();
    s.send({ type: "ejection-ended", member: first });
    s.send({ type: "ejection-ended", member: second });
    expect(s.of("drain").map((a) => a.member)).toEqual([first, second]);
  });

  it("as many addresses as members: nothing to dial, the ejected member sits out its time in its slot", () => {
    const s = new Sim({ members: 3 });
    s.answer(1, 2, 3);
    const ids = [1, 2, 3].map((i) => s.up(i)[0] as number);
    s.clear();
    s.send({ type: "outlier", member: ids[0] as number, reason: "consecutive-5xx" });
    s.advance(60_000);
    expect(s.of("dial")).toEqual([]);
    s.clear();
    s.send({ type: "ejection-ended", member: ids[0] as number });
    expect(s.actions).toEqual([
      { type: "ejection-ended", member: ids[0] },
      { type: "pickable", member: ids[0], pickable: true },
    ]);
  });

  it("an ejection that ends before the replacement proved cancels its dial (and closes its connection if it had one)", () => {
    const { s, byAddress } = warm();
    const bad = byAddress.get(2) as number;
    s.send({ type: "outlier", member: bad, reason: "consecutive-5xx" });
    const d = s.of("dial")[0] as Dial;
    s.send({ type: "connected", dial: d.dial, member: 999 });
    s.send({ type: "ejection-ended", member: bad });
    expect(s.of("cancel")).toEqual([{ type: "cancel", dial: d.dial }]);
    expect(s.of("close")).toEqual([expect.objectContaining({ member: 999 })]);
    expect(s.of("drain")).toEqual([]);
    // Its late PONG changes nothing.
    s.send({ type: "proven", member: 999 });
    expect(s.reg.slotOf(bad)).toBeGreaterThanOrEqual(0);
    expect(s.of("state").filter((a) => a.member === 999)).toEqual([]);
  });

  it("a replacement refused backs off like any dial: the next one goes when that address's backoff ends", () => {
    const { s, byAddress } = warm();
    s.send({ type: "outlier", member: byAddress.get(3) as number, reason: "consecutive-5xx" });
    expect(s.dialsTo(4)).toHaveLength(1);
    s.refuse(4);
    s.clear();
    s.advance(99);
    expect(s.of("dial")).toEqual([]);
    s.advance(1);
    expect(s.of("dial").map((d) => d.address)).toEqual([addr(4)]);
  });

  it("the ejected member lost before its replacement proved: the replacement fills the slot", () => {
    const { s, byAddress } = warm();
    const bad = byAddress.get(1) as number;
    const slot = s.reg.slotOf(bad);
    s.send({ type: "outlier", member: bad, reason: "consecutive-5xx" });
    const d = s.of("dial")[0] as Dial;
    s.send({ type: "lost", member: bad, error: new Error("reset") });
    // No second dial for the emptied slot: the replacement already under way fills it.
    expect(s.of("dial")).toHaveLength(1);
    const id = s.prove(d);
    expect(s.reg.slotOf(id)).toBe(slot);
    expect(s.of("drain")).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import { OutlierState, noteOutcome, type OutlierOptions } from "../../src/pool/outlier.js";
import { ejectionTime, mayEject } from "../../src/supervisor/ejection.js";
import { DEFAULT_OUTLIER, resolveOutlier } from "../../src/pool/outlier-options.js";
import { Pool, type PoolEvent, type PoolMemberRef } from "../../src/pool/pool.js";
import { isUsable } from "../helpers/pool.js";
import { mulberry32 } from "../helpers/random.js";

const O: OutlierOptions = {
  ...DEFAULT_OUTLIER,
  consecutive5xx: 3,
  consecutiveGatewayErrors: 0,
  consecutiveLocalFailures: 2,
  baseEjection: 1000,
  maxEjection: 2500,
};

describe("outlier rules (Envoy's detectors), pure", () => {
  it("counts in a row; any ok answer starts over", () => {
    const s = new OutlierState();
    expect(noteOutcome(s, "5xx", O)).toBeUndefined();
    expect(noteOutcome(s, "5xx", O)).toBeUndefined();
    expect(noteOutcome(s, "ok", O)).toBeUndefined();
    expect(noteOutcome(s, "5xx", O)).toBeUndefined();
    expect(noteOutcome(s, "gateway", O)).toBeUndefined(); // a gateway error is a 5xx too
    expect(noteOutcome(s, "5xx", O)).toBe("consecutive-5xx");
  });

  it("gateway errors have their own threshold (off at 0); local failures theirs, and an answer breaks their run", () => {
    const g = { ...O, consecutiveGatewayErrors: 2, consecutive5xx: 0 };
    const s = new OutlierState();
    expect(noteOutcome(s, "gateway", g)).toBeUndefined();
    expect(noteOutcome(s, "gateway", g)).toBe("consecutive-gateway");
    const l = new OutlierState();
    expect(noteOutcome(l, "local", O)).toBeUndefined();
    expect(noteOutcome(l, "5xx", O)).toBeUndefined();
    expect(noteOutcome(l, "local", O)).toBeUndefined();
    expect(noteOutcome(l, "local", O)).toBe("consecutive-local");
  });

  it("the ejection time grows with each repeat, capped at maxEjection; never past maxEjectedPercent", () => {
    expect(ejectionTime(1, O)).toBe(1000);
    expect(ejectionTime(2, O)).toBe(2000);
    expect(ejectionTime(5, O)).toBe(2500);
    expect(mayEject(0, 3, O)).toBe(true); // 1 of 3 = 33 % ≤ 50 %
    expect(mayEject(1, 3, O)).toBe(false); // 2 of 3 = 67 %
    expect(mayEject(0, 1, O)).toBe(false); // the only member is never ejected at 50 %
    expect(mayEject(1, 4, O)).toBe(true);
  });

  it("options: off unless given; defaults fill in; bad values are ConfigErrors naming the option", () => {
    expect(resolveOutlier(undefined)).toBeUndefined();
    expect(resolveOutlier(false)).toBeUndefined();
    expect(resolveOutlier({})).toEqual(DEFAULT_OUTLIER);
    expect(DEFAULT_OUTLIER).toMatchObject({ baseEjection: 30_000, maxEjectedPercent: 50 });
    for (const [input, option] of [
      [{ consecutive5xx: -1 }, "outlier.consecutive5xx"],
      [{ baseEjection: 0 }, "outlier.baseEjection"],
      [{ maxEjectedPercent: 101 }, "outlier.maxEjectedPercent"],
      [{ baseEjection: 5000, maxEjection: 1000 }, "outlier.maxEjection"],
      [{ consecutive5XX: 1 }, "outlier.consecutive5XX"],
    ] as const) {
      expect(() => resolveOutlier(input), option).toThrow(ConfigError);
      expect(() => resolveOutlier(input)).toThrow(option);
    }
  });
});

// The pool counts outcomes and reports a run past a threshold; whether the member is ejected, for
// how long and how many may be, is the regulator's decision (one record of the member's state).
describe("Pool: counts outcomes, reports outlier runs, decides nothing", () => {
  function setup(n = 3) {
    const pool = new Pool<null>({ balancer: "in-flight", random: mulberry32(4), outlier: O });
    const events: PoolEvent[] = [];
    pool.events.add((e) => events.push(e));
    const ms = Array.from({ length: n }, (_, i) => {
      const m = pool.admit(i + 1, `k${i + 1}`, null);
      pool.setPickable(m, true);
      return m;
    });
    return { pool, ms, events };
  }

  it("a run past the threshold is reported (every outcome past it), and leaves the member usable until told otherwise", () => {
    const { pool, ms, events } = setup();
    const a = ms[0] as PoolMemberRef<null>;
    pool.outcome(a, "5xx");
    pool.outcome(a, "5xx");
    expect(events.filter((e) => e.type === "outlier")).toEqual([]);
    pool.outcome(a, "5xx");
    pool.outcome(a, "5xx");
    expect(events.filter((e) => e.type === "outlier")).toEqual([
      { type: "outlier", member: a, reason: "consecutive-5xx" },
      { type: "outlier", member: a, reason: "consecutive-5xx" },
    ]);
    expect(isUsable(a)).toBe(true);
    // The regulator's ejection arrives as setPickable(false): no picks until it says otherwise.
    pool.setPickable(a, false);
    for (let i = 0; i < 100; i++) {
      const m = pool.pick() as PoolMemberRef<null>;
      expect(m).not.toBe(a);
      pool.release(m, 1);
    }
  });

  it("resetOutcomes (an ejection ended) starts the counts over; a removed member reports nothing", () => {
    const { pool, ms, events } = setup();
    const [a, b] = ms as [PoolMemberRef<null>, PoolMemberRef<null>];
    for (let i = 0; i < 3; i++) pool.outcome(a, "5xx");
    pool.resetOutcomes(a);
    events.length = 0;
    pool.outcome(a, "5xx");
    pool.outcome(a, "5xx");
    expect(events).toEqual([]);
    pool.outcome(a, "5xx");
    expect(events).toEqual([{ type: "outlier", member: a, reason: "consecutive-5xx" }]);
    pool.remove(b);
    events.length = 0;
    for (let i = 0; i < 5; i++) pool.outcome(b, "local");
    expect(events).toEqual([]);
  });

  it("off unless configured: no counts, no reports", () => {
    const pool = new Pool<null>({ balancer: "in-flight", random: mulberry32(4) });
    const events: PoolEvent[] = [];
    pool.events.add((e) => events.push(e));
    const m = pool.admit(1, "k1", null);
    pool.setPickable(m, true);
    for (let i = 0; i < 20; i++) pool.outcome(m, "5xx");
    expect(events.filter((e) => e.type === "outlier")).toEqual([]);
    expect(m.outlier.consecutive5xx).toBe(0);
  });
});

describe("http2Outcome: what an HTTP/2 answer counts as", () => {
  it("502/503/504 and gRPC UNAVAILABLE (headers of a trailers-only response, or trailers) are gateway errors; other 5xx are 5xx", async () => {
    const { http2Outcome } = await import("../../src/transport/http2/outcome.js");
    expect(http2Outcome(200, {})).toBe("ok");
    expect(http2Outcome(404, {})).toBe("ok");
    expect(http2Outcome(500, {})).toBe("5xx");
    for (const s of [502, 503, 504]) expect(http2Outcome(s, {})).toBe("gateway");
    expect(http2Outcome(200, { "grpc-status": "14" })).toBe("gateway");
    expect(http2Outcome(200, {}, { "grpc-status": "14" })).toBe("gateway");
    expect(http2Outcome(200, {}, { "grpc-status": "2" })).toBe("ok");
  });
});

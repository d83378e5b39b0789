import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { REQUEST_BUCKETS, RequestTally, TallyHistogram } from "../../src/metrics/request-tally.js";

describe("request tally (no sockets)", () => {
  it("formats exactly as a prom-client Histogram given the same observations", async () => {
    const durations = [0, 0.0001, 0.0005, 0.00051, 0.003, 0.2, 0.25, 1, 9.99, 10, 10.01, 120];
    const theirs = new Registry();
    const h = new Histogram({ name: "d_seconds", help: "Durations.", labelNames: ["channel"], buckets: REQUEST_BUCKETS, registers: [theirs] });
    const ours = new Registry();
    const tallies = new Set<RequestTally>();
    new TallyHistogram(ours, "d_seconds", "Durations.", tallies);
    for (const channel of ["a", "b"]) {
      const t = new RequestTally(channel);
      tallies.add(t);
      for (const d of durations) {
        h.observe({ channel }, channel === "a" ? d : d * 2);
        t.record("ok", channel === "a" ? d : d * 2, 0, 0, false);
      }
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
    ours.resetMetrics();
    h.reset();
    h.zero({ channel: "a" });
    h.zero({ channel: "b" });
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it("counts outcomes, retries and hedges per call", () => {
    const t = new RequestTally("c");
    t.record("ok", 0.001, 0, 1, true);
    t.record("no-member", 0.002, 2, 0, false);
    t.record("no-member", 0.002, 0, 0, false);
    expect(Object.fromEntries(t.outcomes)).toEqual({ ok: 1, no_member: 2 });
    expect([t.retries, t.hedges, t.hedgesWon, t.count]).toEqual([2, 1, 1, 3]);
    expect(t.sum).toBeCloseTo(0.005, 9);
    // A duration that is not one counts the call but not its time.
    t.record("ok", Number.NaN, 0, 0, false);
    t.record("ok", -1, 0, 0, false);
    expect(t.outcomes.get("ok")).toBe(3);
    expect(t.count).toBe(3);
    expect(Number.isFinite(t.sum)).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import { describeAnswers, FamilyMemory, mergeFamilies, negativeTtl, nextRefresh, type FamilyOutcome } from "../../src/resolve/family-answers.js";

const ok = (ips: string[], ttl = 30_000): FamilyOutcome => ({ kind: "addresses", ips, ttl });
const none = (answer: "nodata" | "nxdomain", ttl = 5000): FamilyOutcome => ({ kind: "none", answer, ttl, server: "127.0.0.1:53" });
const failed = (answer: "timeout" | "servfail" | "refused" | "notimp" | "malformed", type = "AAAA"): FamilyOutcome => ({
  kind: "failed",
  answer,
  server: "127.0.0.1:53",
  message: `127.0.0.1:53 answered ${answer.toUpperCase()} for api.test ${type}`,
});
const soa = (ttl: number, minimum: number) => ({
  type: "SOA",
  name: "test",
  ttl,
  data: { mname: "ns.test", rname: "h.test", serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
});

describe("the per-family rule (family-answers.ts)", () => {
  it("one refused family does not make a name unreachable: A's addresses, AAAA's refusal reported", () => {
    const m = mergeFamilies(
      "api.test",
      [
        ["A", ok(["127.0.0.2"])],
        ["AAAA", failed("refused")],
      ],
      new FamilyMemory(),
    );
    expect(m.status).toBe("addresses");
    expect(m.ips).toEqual(["127.0.0.2"]);
    expect(m.partial).toBe(true);
    expect(m.answers).toEqual([
      { name: "api.test", type: "AAAA", answer: "refused", server: "127.0.0.1:53", kept: 0, message: "127.0.0.1:53 answered REFUSED for api.test AAAA" },
    ]);
    // The failed family's TTL does not count: the set lives as long as A's answer.
    expect(m.ttl).toBe(30_000);
  });

  it("a failed family keeps its own last good addresses (A lost, AAAA empty: A's stay)", () => {
    const memory = new FamilyMemory();
    mergeFamilies(
      "svc.test",
      [
        ["A", ok(["127.0.0.2", "127.0.0.3"])],
        ["AAAA", none("nodata")],
      ],
      memory,
    );
    const m = mergeFamilies(
      "svc.test",
      [
        ["A", failed("timeout", "A")],
        ["AAAA", none("nodata", 2000)],
      ],
      memory,
    );
    expect(m.status).toBe("addresses");
    expect(m.ips).toEqual(["127.0.0.2", "127.0.0.3"]);
    expect(m.answers.map((a) => [a.type, a.answer, a.kept])).toEqual([
      ["A", "timeout", 2],
      ["AAAA", "nodata", 0],
    ]);
    expect(m.ttl).toBe(2000);
  });

  it("both families kept: the last good of each, A first, each from its own memory", () => {
    const memory = new FamilyMemory();
    mergeFamilies(
      "dual.test",
      [
        ["A", ok(["127.0.0.3"])],
        ["AAAA", ok(["::1"])],
      ],
      memory,
    );
    const aaaaFails = mergeFamilies(
      "dual.test",
      [
        ["A", ok(["127.0.0.4"])],
        ["AAAA", failed("servfail")],
      ],
      memory,
    );
    expect(aaaaFails.ips).toEqual(["127.0.0.4", "::1"]);
    const aFails = mergeFamilies(
      "dual.test",
      [
        ["A", failed("servfail", "A")],
        ["AAAA", ok(["::2"])],
      ],
      memory,
    );
    expect(aFails.ips).toEqual(["127.0.0.4", "::2"]);
  });

  it("NODATA and NXDOMAIN empty a family: its old addresses are not kept by a later failure", () => {
    const memory = new FamilyMemory();
    mergeFamilies(
      "move.test",
      [
        ["A", ok(["127.0.0.2"])],
        ["AAAA", ok(["::1"])],
      ],
      memory,
    );
    mergeFamilies(
      "move.test",
      [
        ["A", ok(["127.0.0.2"])],
        ["AAAA", none("nodata")],
      ],
      memory,
    );
    const m = mergeFamilies(
      "move.test",
      [
        ["A", ok(["127.0.0.2"])],
        ["AAAA", failed("timeout")],
      ],
      memory,
    );
    expect(m.ips).toEqual(["127.0.0.2"]);
    expect(m.answers[0]?.kept).toBe(0);
  });

  it("every family answered with nothing: an empty answer (a real one), with the smallest negative TTL", () => {
    const m = mergeFamilies(
      "txt.test",
      [
        ["A", none("nodata", 3000)],
        ["AAAA", none("nxdomain", 2000)],
      ],
      new FamilyMemory(),
    );
    expect(m.status).toBe("empty");
    expect(m.ips).toEqual([]);
    expect(m.ttl).toBe(2000);
    expect(describeAnswers(m.answers)).toBe("127.0.0.1:53 answered NODATA for txt.test A; 127.0.0.1:53 answered NXDOMAIN for txt.test AAAA");
  });

  it("no address and one family failed: the lookup fails (the name may have addresses), saying what each family got", () => {
    const m = mergeFamilies(
      "api.test",
      [
        ["A", none("nodata")],
        ["AAAA", failed("refused")],
      ],
      new FamilyMemory(),
    );
    expect(m.status).toBe("failed");
    expect(describeAnswers(m.answers)).toBe("127.0.0.1:53 answered NODATA for api.test A; 127.0.0.1:53 answered REFUSED for api.test AAAA");
  });

  it("every family failed: the lookup fails even with last good addresses (nothing was learnt; the channel keeps its set)", () => {
    const memory = new FamilyMemory();
    mergeFamilies(
      "api.test",
      [
        ["A", ok(["127.0.0.2"])],
        ["AAAA", none("nodata")],
      ],
      memory,
    );
    const m = mergeFamilies(
      "api.test",
      [
        ["A", failed("timeout", "A")],
        ["AAAA", failed("timeout")],
      ],
      memory,
    );
    expect(m.status).toBe("failed");
    expect(m.ips).toEqual(["127.0.0.2"]);
    expect(describeAnswers(m.answers)).toMatch(/TIMEOUT for api\.test A \(kept 1 last good\)/);
  });

  it("names are remembered case-insensitively, and forgotten once a lookup no longer asks them", () => {
    const memory = new FamilyMemory();
    mergeFamilies("A.svc.test.", [["A", ok(["127.0.0.2"])]], memory);
    mergeFamilies("b.svc.test", [["A", ok(["127.0.0.3"])]], memory);
    expect(memory.get("a.svc.test", "A")).toEqual(["127.0.0.2"]);
    memory.retain(new Set(["b.svc.test"]));
    expect(memory.size).toBe(1);
    expect(memory.get("a.svc.test", "A")).toEqual([]);
    expect(memory.get("b.svc.test", "A")).toEqual(["127.0.0.3"]);
  });
});

describe("negative TTL (RFC 2308 §5)", () => {
  it("is the smaller of the SOA record's TTL and its MINIMUM field", () => {
    expect(negativeTtl({ authorities: [soa(30, 2)] })).toBe(2000);
    expect(negativeTtl({ authorities: [soa(3, 600)] })).toBe(3000);
  });

  it("without an SOA it is unknown (Infinity: the resolver uses minTtl)", () => {
    expect(negativeTtl({ authorities: [] })).toBe(Number.POSITIVE_INFINITY);
  });

  it("an SOA whose MINIMUM is not a number falls back to its TTL", () => {
    expect(negativeTtl({ authorities: [{ type: "SOA", name: "test", ttl: 7, data: {} }] })).toBe(7000);
  });
});

describe("refresh schedule after family failures (a fake clock: times are plain numbers)", () => {
  const retry = { initial: 250, max: 30_000 };

  it("a clean lookup refreshes at its TTL", () => {
    expect(nextRefresh(30_000, 0, retry)).toBe(30_000);
  });

  it("a family that keeps failing is asked again on the backoff, never later than the other family's TTL", () => {
    // An IPv4-only name behind a server that refuses AAAA for good: A's TTL is 30 s.
    let now = 0;
    const times: number[] = [];
    for (let failures = 1; failures <= 10; failures++) {
      now += nextRefresh(30_000, failures, retry);
      times.push(now);
    }
    expect(times).toEqual([250, 750, 1750, 3750, 7750, 15_750, 31_750, 61_750, 91_750, 121_750]);
  });

  it("a record that moves with TTL 1 s is followed each second even while the other family fails", () => {
    expect(nextRefresh(1000, 8, retry)).toBe(1000);
  });

  it("a whole failed lookup (no TTL) waits the backoff, capped at retryMax", () => {
    expect(nextRefresh(Number.POSITIVE_INFINITY, 1, retry)).toBe(250);
    expect(nextRefresh(Number.POSITIVE_INFINITY, 20, retry)).toBe(30_000);
  });
});

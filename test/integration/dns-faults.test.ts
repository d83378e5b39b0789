import dnsPacket, { type Answer, type Question } from "dns-packet";
import { afterEach, describe, expect, it } from "vitest";
import { DnsResolver, ResolveError, type AddressSet } from "../../src/index.js";
import { askServer } from "../../src/resolve/dns-transport.js";
import { a, startFaultDns, type FaultDns } from "../helpers/fault-dns.js";
import { SimClock } from "../helpers/sim-clock.js";

const servers: FaultDns[] = [];
const resolvers: DnsResolver[] = [];
afterEach(async () => {
  for (const r of resolvers.splice(0)) r.close();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function fault(handler: Parameters<typeof startFaultDns>[0]): Promise<FaultDns> {
  const s = await startFaultDns(handler);
  servers.push(s);
  return s;
}

function resolver(target: string, opts: ConstructorParameters<typeof DnsResolver>[1], runtime?: ConstructorParameters<typeof DnsResolver>[3]): DnsResolver {
  const r = new DnsResolver(target, { hostsFile: false, timeout: 300, attempts: 1, family: 4, ...opts }, undefined, runtime);
  resolvers.push(r);
  return r;
}

const hosts = (set: AddressSet): string[] => set.addresses.map((x) => x.host).sort();

/** Waits (bounded: 100 × 20 ms) until `done()` holds. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((res) => setTimeout(res, 20));
}

/** A well-formed response to `q` carrying `answers`, with its last `lost` bytes cut off, as a datagram cut in flight. */
function cutAnswer(q: { id: number; question: Question }, answers: Answer[], lost: number): Buffer {
  const bytes = dnsPacket.encode({ type: "response", id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: [q.question], answers });
  return bytes.subarray(0, bytes.length - lost);
}

const aaaa = (name: string, ip: string, ttl = 30): Answer => ({ type: "AAAA", name, ttl, class: "IN", data: ip });

describe("DNS resolver against a fault-injection DNS server (dns-packet, UDP and TCP)", () => {
  it("fault injection: a truncated UDP answer is retried over TCP", async () => {
    const s = await fault((q) =>
      q.transport === "udp" ? { kind: "answer", truncate: true } : { kind: "answer", answers: [a("svc.test", "127.0.0.2"), a("svc.test", "127.0.0.3")] },
    );
    const set = await resolver("dns:///svc.test:80", { nameservers: [s.server] }).lookup();
    expect(hosts(set)).toEqual(["127.0.0.2", "127.0.0.3"]);
    expect(s.queries.map((q) => q.transport)).toEqual(["udp", "tcp"]);
  });

  it("fault injection: answers with a wrong ID or another question are ignored; the matching one is accepted", async () => {
    const s = await fault((q) => [
      { kind: "answer", id: (q.id + 1) % 65536, answers: [a("svc.test", "10.66.66.66")] },
      { kind: "answer", question: { type: "A", name: "evil.test" }, answers: [a("evil.test", "10.66.66.67")] },
      { kind: "answer", answers: [a("svc.test", "127.0.0.2")] },
    ]);
    const set = await resolver("dns:///svc.test:80", { nameservers: [s.server] }).lookup();
    expect(hosts(set)).toEqual(["127.0.0.2"]);
  });

  it("fault injection: garbage bytes and wrong IDs alone end in a timeout that says what was ignored", async () => {
    const s = await fault((q) => [
      { kind: "raw", bytes: Buffer.from("not a dns message at all") },
      { kind: "answer", id: (q.id + 7) % 65536, answers: [a("svc.test", "10.66.66.66")] },
    ]);
    const err = await resolver("dns:///svc.test:80", { nameservers: [s.server] })
      .lookup()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ResolveError);
    expect((err as Error).message).toMatch(/ignored 2 bad answer/);
  });

  it("fault injection: SERVFAIL and silence move on to the next server", async () => {
    const bad = await fault(() => ({ kind: "answer", rcode: "SERVFAIL" }));
    const mute = await fault(() => ({ kind: "silent" }));
    const good = await fault(() => ({ kind: "answer", answers: [a("svc.test", "127.0.0.4")] }));
    const set = await resolver("dns:///svc.test:80", { nameservers: [bad.server, mute.server, good.server] }).lookup();
    expect(hosts(set)).toEqual(["127.0.0.4"]);
    expect(bad.queries).toHaveLength(1);
    expect(mute.queries).toHaveLength(1);
  });

  it("fault injection: a silent server's query times out on the resolver's clock: a fake clock's minute passes in no real time", async () => {
    const mute = await fault(() => ({ kind: "silent" }));
    const clock = new SimClock();
    let failed: unknown;
    const asked = askServer({ host: "127.0.0.1", port: mute.port }, "svc.test", "A", 60_000, "dns:///svc.test:80", clock).catch((e: unknown) => (failed = e));
    await until(() => mute.queries.length === 1);
    expect(mute.queries).toHaveLength(1);
    await clock.runUntil(59_999);
    expect(failed).toBeUndefined();
    await clock.runUntil(60_000);
    await asked;
    expect(failed).toBeInstanceOf(ResolveError);
    expect((failed as Error).message).toMatch(/within 60000 ms/);
    expect(clock.pendingOwnTimers).toBe(0);
  });

  it("fault injection: the refresh loop runs on the resolver's clock: the next query goes when the fake clock reaches the TTL", async () => {
    const s = await fault(() => ({ kind: "answer", answers: [a("svc.test", "127.0.0.2", 300)] }));
    const clock = new SimClock();
    const r = resolver("dns:///svc.test:80", { nameservers: [s.server] }, { clock });
    const sets: AddressSet[] = [];
    r.start({ onAddresses: (x) => sets.push(x), onError: () => {} });
    await until(() => sets.length === 1);
    expect(sets.map(hosts)).toEqual([["127.0.0.2"]]);
    // Five minutes of TTL on the fake clock: no second query a moment before, one when it is due.
    await clock.runUntil(299_999);
    expect(s.queries).toHaveLength(1);
    await clock.runUntil(300_000);
    await until(() => sets.length === 2);
    expect(s.queries).toHaveLength(2);
    r.close();
    expect(clock.pendingOwnTimers).toBe(0);
  });

  it("fault injection: SERVFAIL and REFUSED everywhere is a ResolveError naming the server and rcode", async () => {
    const s1 = await fault(() => ({ kind: "answer", rcode: "SERVFAIL" }));
    const s2 = await fault(() => ({ kind: "answer", rcode: "REFUSED" }));
    const err = await resolver("dns:///svc.test:80", { nameservers: [s1.server, s2.server], attempts: 2 })
      .lookup()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ResolveError);
    expect((err as Error).message).toContain(`${s2.server} answered REFUSED`);
    expect(s1.queries).toHaveLength(2);
  });

  it("fault injection: a 0 TTL is clamped to minTtl, and the set's TTL is the smallest on the CNAME chain", async () => {
    const s = await fault((q) =>
      q.question.name === "zero.test"
        ? { kind: "answer", answers: [a("zero.test", "127.0.0.2", 0)] }
        : {
            kind: "answer",
            answers: [
              { type: "CNAME", name: "alias.test", ttl: 7, class: "IN", data: "mid.test" },
              { type: "CNAME", name: "mid.test", ttl: 60, class: "IN", data: "real.test" },
              a("real.test", "127.0.0.3", 30),
            ],
          },
    );
    const zero = await resolver("dns:///zero.test:80", { nameservers: [s.server], minTtl: 1500 }).lookup();
    expect(zero.ttl).toBe(1500);
    const chain = await resolver("dns:///alias.test:80", { nameservers: [s.server] }).lookup();
    expect(hosts(chain)).toEqual(["127.0.0.3"]);
    expect(chain.ttl).toBe(7000);
    const capped = await resolver("dns:///alias.test:80", { nameservers: [s.server], maxTtl: 2000 }).lookup();
    expect(capped.ttl).toBe(2000);
  });

  it("a CNAME chain that leaves the answer is followed with a second query", async () => {
    const s = await fault((q) =>
      q.question.name === "alias.test"
        ? { kind: "answer", answers: [{ type: "CNAME", name: "alias.test", ttl: 9, class: "IN", data: "target.test" }] }
        : { kind: "answer", answers: [a("target.test", "127.0.0.5", 20)] },
    );
    const set = await resolver("dns:///alias.test:80", { nameservers: [s.server] }).lookup();
    expect(hosts(set)).toEqual(["127.0.0.5"]);
    expect(set.ttl).toBe(9000);
    expect(s.queries.map((q) => q.question.name)).toEqual(["alias.test", "target.test"]);
  });

  it("SRV: lowest priority wins, ports and weights come from the records, targets from additionals or a lookup", async () => {
    const s = await fault((q) => {
      if (q.question.type === "SRV") {
        return {
          kind: "answer",
          answers: [
            { type: "SRV", name: "_api._tcp.svc.test", ttl: 20, class: "IN", data: { priority: 10, weight: 5, port: 8001, target: "a.svc.test" } },
            { type: "SRV", name: "_api._tcp.svc.test", ttl: 20, class: "IN", data: { priority: 10, weight: 1, port: 8002, target: "b.svc.test" } },
            { type: "SRV", name: "_api._tcp.svc.test", ttl: 20, class: "IN", data: { priority: 20, weight: 1, port: 8003, target: "c.svc.test" } },
          ],
          additionals: [a("a.svc.test", "127.0.0.2", 15)],
        };
      }
      return { kind: "answer", answers: [a("b.svc.test", "127.0.0.3", 12)] };
    });
    const set = await resolver("dns+srv:///_api._tcp.svc.test", { nameservers: [s.server] }).lookup();
    expect(set.addresses.map((x) => [x.host, x.port, x.weight])).toEqual([
      ["127.0.0.2", 8001, 5],
      ["127.0.0.3", 8002, 1],
    ]);
    expect(set.ttl).toBe(12_000);
  });

  it("NXDOMAIN is a real answer: an empty set, believed for the SOA's TTL", async () => {
    const s = await fault(() => ({
      kind: "answer",
      rcode: "NXDOMAIN",
      authorities: [
        { type: "SOA", name: "test", ttl: 3, class: "IN", data: { mname: "ns.test", rname: "h.test", serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 3 } },
      ],
    }));
    const set = await resolver("dns:///gone.test:80", { nameservers: [s.server] }).lookup();
    expect(set.addresses).toEqual([]);
    expect(set.ttl).toBe(3000);
  });

  it("search domains and ndots decide the names tried, in order", async () => {
    const s = await fault((q) =>
      q.question.name === "api.prod.internal" ? { kind: "answer", answers: [a("api.prod.internal", "127.0.0.6")] } : { kind: "answer", rcode: "NXDOMAIN" },
    );
    const set = await resolver("dns:///api:80", { nameservers: [s.server], search: ["dev.internal", "prod.internal"], ndots: 1 }).lookup();
    expect(hosts(set)).toEqual(["127.0.0.6"]);
    expect(s.queries.map((q) => q.question.name)).toEqual(["api.dev.internal", "api.prod.internal"]);
  });

  it("every query has a random ID and comes from a fresh random source port", async () => {
    const s = await fault(() => ({ kind: "answer", answers: [a("svc.test", "127.0.0.2")] }));
    const r = resolver("dns:///svc.test:80", { nameservers: [s.server] });
    for (let i = 0; i < 12; i++) await r.lookup();
    const ids = new Set(s.queries.map((q) => q.id));
    const ports = new Set(s.queries.map((q) => q.port));
    // 12 draws from 65536 IDs / the ephemeral range: a repeat is possible but not 4 of them.
    expect(ids.size).toBeGreaterThanOrEqual(9);
    expect(ports.size).toBeGreaterThanOrEqual(9);
  });

  it("IP literals and localhost never touch the network", async () => {
    const s = await fault(() => ({ kind: "answer", answers: [a("x", "10.0.0.1")] }));
    const local = await resolver("dns:///localhost:80", { nameservers: [s.server] }).lookup();
    expect(hosts(local)).toEqual(["127.0.0.1"]);
    expect(s.queries).toHaveLength(0);
  });

  it("the refresh loop keeps the last good set on failure, reports the error, and follows the TTL", async () => {
    let mode: "ok" | "fail" = "ok";
    const s = await fault(() => (mode === "ok" ? { kind: "answer", answers: [a("svc.test", "127.0.0.2", 1)] } : { kind: "answer", rcode: "SERVFAIL" }));
    const r = resolver("dns:///svc.test:80", { nameservers: [s.server], minTtl: 200, maxTtl: 200, retryInitial: 50, retryMax: 100 });
    const sets: AddressSet[] = [];
    const errors: Error[] = [];
    r.start({ onAddresses: (x) => sets.push(x), onError: (e) => errors.push(e) });
    for (let i = 0; i < 100 && sets.length < 2; i++) await new Promise((res) => setTimeout(res, 20));
    expect(sets.length).toBeGreaterThanOrEqual(2);
    mode = "fail";
    const before = sets.length;
    for (let i = 0; i < 100 && errors.length < 2; i++) await new Promise((res) => setTimeout(res, 20));
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors[0]).toBeInstanceOf(ResolveError);
    // Failures never push an empty or partial set.
    expect(sets.length).toBe(before);
    mode = "ok";
    for (let i = 0; i < 100 && sets.length === before; i++) await new Promise((res) => setTimeout(res, 20));
    expect(sets.length).toBeGreaterThan(before);
  });

  it("bad targets and options fail at construction with typed errors", () => {
    expect(() => new DnsResolver("dns+srv:///_api._tcp.svc.test:80")).toThrow(/takes no port/);
    expect(() => new DnsResolver("dns+srv:///api.svc.test")).toThrow(/_service._proto.name/);
    expect(() => new DnsResolver("dns:///svc.test:80", { nameservers: ["dns.example"] })).toThrow(/not ip:port/);
    expect(() => new DnsResolver("dns:///svc.test:80", { minTtl: 5000, maxTtl: 1000 })).toThrow(/maxTtl/);
    expect(() => new DnsResolver("dns:///bad_host!:80")).toThrow(/not a valid host name/);
  });
});

describe("DNS resolver against a fault-injection DNS server: one family lost, records cut short (issue 9, bug 4)", () => {
  it("fault injection: A queries time out while AAAA answers NOERROR/empty: the lookup fails, it does not report 0 addresses", async () => {
    const s = await fault((q) => (q.question.type === "A" ? { kind: "silent" } : { kind: "answer", answers: [] }));
    const err = await resolver("dns:///svc.test:80", { nameservers: [s.server], family: 0 })
      .lookup()
      .then(
        (set) => set,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ResolveError);
    expect((err as Error).message).toMatch(/svc\.test A within/);
  });

  it("fault injection: the refresh loop keeps A's last good addresses while A is lost and AAAA is empty, and reports A's failure", async () => {
    let lost = false;
    const s = await fault((q) => {
      if (q.question.type === "AAAA") return { kind: "answer", answers: [] };
      return lost ? { kind: "silent" } : { kind: "answer", answers: [a("svc.test", "127.0.0.2", 1), a("svc.test", "127.0.0.3", 1)] };
    });
    const r = resolver("dns:///svc.test:80", { nameservers: [s.server], family: 0, timeout: 150, minTtl: 200, maxTtl: 200, retryInitial: 50, retryMax: 100 });
    const sets: AddressSet[] = [];
    const errors: Error[] = [];
    r.start({ onAddresses: (x) => sets.push(x), onError: (e) => errors.push(e) });
    await until(() => sets.length >= 1);
    expect(sets.map(hosts)).toEqual([["127.0.0.2", "127.0.0.3"]]);
    lost = true;
    const failedA = (x: AddressSet): boolean => (x.answers ?? []).some((f) => f.type === "A" && f.answer === "timeout" && f.kept === 2);
    await until(() => sets.filter(failedA).length >= 2);
    // Per family: A's failure keeps A's last good addresses, and each lookup says so.
    expect(sets.filter(failedA).length).toBeGreaterThanOrEqual(2);
    expect(errors).toEqual([]);
    // Nothing but the good set was ever passed on: no empty set that would drop the members.
    expect(sets.every((x) => hosts(x).join() === "127.0.0.2,127.0.0.3")).toBe(true);
    lost = false;
    const before = sets.length;
    await until(() => sets.length > before);
    expect(hosts(sets[sets.length - 1] as AddressSet)).toEqual(["127.0.0.2", "127.0.0.3"]);
  });

  it("fault injection: dns+srv whose every target lookup times out fails, it does not report 0 addresses", async () => {
    const s = await fault((q) =>
      q.question.type === "SRV"
        ? {
            kind: "answer",
            answers: [{ type: "SRV", name: "_api._tcp.svc.test", ttl: 20, class: "IN", data: { priority: 10, weight: 1, port: 8001, target: "a.svc.test" } }],
          }
        : { kind: "silent" },
    );
    const err = await resolver("dns+srv:///_api._tcp.svc.test", { nameservers: [s.server] })
      .lookup()
      .then(
        (set) => set,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ResolveError);
    expect((err as Error).message).toMatch(/a\.svc\.test A within/);
  });

  it("fault injection: a UDP answer cut short by one byte is malformed (never 127.0.0.undefined, never a partial set)", async () => {
    const s = await fault((q) => ({ kind: "raw", bytes: cutAnswer(q, [a("svc.test", "127.0.0.2"), a("svc.test", "127.0.0.3")], 1) }));
    const err = await resolver("dns:///svc.test:80", { nameservers: [s.server] })
      .lookup()
      .then(
        (set) => set,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ResolveError);
    // Over UDP a bad datagram is ignored, not believed: the lookup times out and says what it ignored.
    expect((err as Error).message).toMatch(/ignored 1 bad answer.*cut short/);
  });

  it("fault injection: an AAAA answer cut short by one byte is malformed (dns-packet would read it as ::)", async () => {
    const s = await fault((q) => ({ kind: "raw", bytes: cutAnswer(q, [aaaa("svc.test", "fd00::2")], 1) }));
    const err = await resolver("dns:///svc.test:80", { nameservers: [s.server], family: 6 })
      .lookup()
      .then(
        (set) => set,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ResolveError);
    expect((err as Error).message).toMatch(/cut short/);
  });

  it("fault injection: a cut datagram followed by the whole answer: the whole one is accepted", async () => {
    const s = await fault((q) => [
      { kind: "raw", bytes: cutAnswer(q, [a("svc.test", "127.0.0.2"), a("svc.test", "127.0.0.3")], 1) },
      { kind: "raw", bytes: cutAnswer(q, [a("svc.test", "127.0.0.2"), a("svc.test", "127.0.0.3")], 0) },
    ]);
    const set = await resolver("dns:///svc.test:80", { nameservers: [s.server] }).lookup();
    expect(hosts(set)).toEqual(["127.0.0.2", "127.0.0.3"]);
  });
});

describe("one family fails, the other answers (issue 23): what no real server sends on purpose, by fault injection", () => {
  const v4name = "svc.test";

  it("fault injection: AAAA answered NOTIMP: the A addresses, and AAAA reported as notimp", async () => {
    const s = await fault((q) => (q.question.type === "A" ? { kind: "answer", answers: [a(v4name, "127.0.0.2")] } : { kind: "answer", rcode: "NOTIMP" }));
    const set = await resolver(`dns:///${v4name}:80`, { nameservers: [s.server], family: 0 }).lookup();
    expect(hosts(set)).toEqual(["127.0.0.2"]);
    expect(set.answers).toEqual([
      { name: v4name, type: "AAAA", answer: "notimp", server: s.server, kept: 0, message: `${s.server} answered NOTIMP for ${v4name} AAAA` },
    ]);
  });

  it("fault injection: an AAAA answer cut short over TCP is malformed: the A addresses stand, AAAA reported as malformed", async () => {
    const s = await fault((q) => {
      if (q.question.type === "A") return { kind: "answer", answers: [a(v4name, "127.0.0.2")] };
      return q.transport === "udp" ? { kind: "answer", truncate: true } : { kind: "raw", bytes: cutAnswer(q, [aaaa(v4name, "fd00::2")], 1) };
    });
    const set = await resolver(`dns:///${v4name}:80`, { nameservers: [s.server], family: 0 }).lookup();
    expect(hosts(set)).toEqual(["127.0.0.2"]);
    expect(set.answers?.map((x) => [x.type, x.answer])).toEqual([["AAAA", "malformed"]]);
    expect(set.answers?.[0]?.message).toMatch(/bad TCP answer: malformed DNS message \(cut short/);
  });

  it("fault injection: a refused AAAA keeps the AAAA addresses it had (per family), with A's fresh ones", async () => {
    let refuse = false;
    const s = await fault((q) =>
      q.question.type === "A"
        ? { kind: "answer", answers: [a(v4name, refuse ? "127.0.0.3" : "127.0.0.2")] }
        : refuse
          ? { kind: "answer", rcode: "REFUSED" }
          : { kind: "answer", answers: [aaaa(v4name, "fd00::2")] },
    );
    const r = resolver(`dns:///${v4name}:80`, { nameservers: [s.server], family: 0 });
    expect(hosts(await r.lookup())).toEqual(["127.0.0.2", "fd00::2"]);
    refuse = true;
    const set = await r.lookup();
    expect(hosts(set)).toEqual(["127.0.0.3", "fd00::2"]);
    expect(set.answers?.map((x) => [x.type, x.answer, x.kept])).toEqual([["AAAA", "refused", 1]]);
  });

  it("fault injection: SRV additionals holding only A for a target: its AAAA is asked, not assumed absent", async () => {
    const s = await fault((q) => {
      if (q.question.type === "SRV") {
        return {
          kind: "answer",
          answers: [{ type: "SRV", name: "_api._tcp.svc.test", ttl: 20, class: "IN", data: { priority: 10, weight: 3, port: 8001, target: "a.svc.test" } }],
          additionals: [a("a.svc.test", "127.0.0.2")],
        };
      }
      return q.question.type === "A"
        ? { kind: "answer", answers: [a("a.svc.test", "127.0.0.2")] }
        : { kind: "answer", answers: [aaaa("a.svc.test", "fd00::2")] };
    });
    const set = await resolver("dns+srv:///_api._tcp.svc.test", { nameservers: [s.server], family: 0 }).lookup();
    expect(set.addresses.map((x) => [x.host, x.port, x.weight]).sort()).toEqual([
      ["127.0.0.2", 8001, 3],
      ["fd00::2", 8001, 3],
    ]);
    expect(s.queries.map((q) => q.question.type).sort()).toEqual(["A", "AAAA", "SRV"]);
  });
});

import { promises as nodeDns } from "node:dns";
import { Registry } from "prom-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createHttp2Channel, DnsResolver, NotReadyError, ResolveError, type AddressSet, type Http2Channel } from "../../src/index.js";
import { startBackends, stopAllBackends, type Backend } from "../helpers/backends.js";
import { eventually, recordEvents } from "../helpers/channel.js";
import { startBind } from "../helpers/bind.js";
import type { DnsChild } from "../helpers/dns-child.js";
import { startDnsmasq, type Dnsmasq } from "../helpers/dnsmasq.js";
import { sample } from "../helpers/prom.js";
import { startUnbound } from "../helpers/unbound.js";

/**
 * The resolver against three real DNS servers, each started here on
 * 127.0.0.1 with a config of its own, once per file (shared by the cases):
 * dnsmasq (a hosts file, no upstream: a common local DNS), unbound (a
 * recursive resolver) and BIND (authoritative, and forwarding). For every
 * case the reference is Node's own dns.promises.Resolver (c-ares) pointed at
 * the same server: dialtone's addresses must be the union of what it finds
 * for A and AAAA, and a channel to the name must be ready exactly when that
 * union is not empty.
 *
 * Not every cell can be produced by every server:
 * - REFUSED for one family: only dnsmasq does it (a name it knows only from a
 *   hosts file, asked for the other family, with no upstream: issue 23).
 *   unbound and BIND refuse whole queries (ACLs), never one type of a name;
 *   put in front of that dnsmasq they turn its REFUSED into SERVFAIL.
 * - SERVFAIL for one family: unbound and BIND, forwarding `api.test` and
 *   `keep.test` to that dnsmasq (A answered, AAAA refused upstream →
 *   SERVFAIL). dnsmasq alone passes an upstream's REFUSED through
 *   unchanged, and answers its own names itself, so it has no way to
 *   SERVFAIL one family.
 * - NOTIMP for one family, and malformed or cut answers: no real server
 *   sends them on purpose; test/integration/dns-faults.test.ts covers them
 *   with a fault-injection server.
 * - Negative TTLs: dnsmasq sends no SOA with NODATA/NXDOMAIN for its --local
 *   names (so minTtl applies); unbound and BIND send the zone's SOA, whose
 *   MINIMUM (2 s) is below its TTL (30 s): RFC 2308's min() is what counts.
 */

const NEG_TTL_S = 2;

let backends: Backend[] = [];
let port = 0;
let dnsmasq: Dnsmasq;
let unbound: DnsChild;
let bind: DnsChild;

/**
 * dnsmasq's hosts file: api.test and keep.test lie outside its --local
 * zones, so AAAA for them is REFUSED when the file has no IPv6 line for them.
 */
function dnsmasqHosts(moveTo: string, keepV6 = true): string[] {
  return [
    "127.0.0.2 keep.test",
    ...(keepV6 ? ["::1 keep.test"] : []),
    "127.0.0.2 v4.a.test",
    "::1 v6.a.test",
    "127.0.0.3 dual.a.test",
    "::1 dual.a.test",
    "127.0.0.4 real.b.test",
    "127.0.0.2 api.test",
    `${moveTo} move.a.test`,
    ...Array.from({ length: 40 }, (_, i) => `127.0.1.${i + 1} many.a.test`),
  ];
}

function zoneA(serial: number, moveTo: string): string {
  return [
    "$TTL 30",
    `@ IN SOA ns.a.test. host.a.test. ${serial} 60 60 600 ${NEG_TTL_S}`,
    "@ IN NS ns.a.test.",
    "ns IN A 127.0.0.1",
    "v4 IN A 127.0.0.2",
    "v6 IN AAAA ::1",
    "dual IN A 127.0.0.3",
    "dual IN AAAA ::1",
    "alias IN CNAME real.b.test.",
    'txt IN TXT "a name with no address"',
    `_api._tcp IN SRV 10 5 ${port} v4.a.test.`,
    `_api._tcp IN SRV 10 1 ${port} dual.a.test.`,
    `_api._tcp IN SRV 20 1 ${port} real.b.test.`,
    `move 1 IN A ${moveTo}`,
    ...Array.from({ length: 40 }, (_, i) => `many IN A 127.0.1.${i + 1}`),
    "",
  ].join("\n");
}

const ZONE_B = [
  "$TTL 30",
  `@ IN SOA ns.b.test. host.b.test. 1 60 60 600 ${NEG_TTL_S}`,
  "@ IN NS ns.b.test.",
  "ns IN A 127.0.0.1",
  "real IN A 127.0.0.4",
  "",
].join("\n");

beforeAll(async () => {
  backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4", "::1"]);
  port = backends[0]!.port;
  dnsmasq = await startDnsmasq(dnsmasqHosts("127.0.0.2"), 1, [
    "--local=/a.test/",
    "--local=/b.test/",
    "--txt-record=txt.a.test,a name with no address",
    "--cname=alias.a.test,real.b.test",
    `--srv-host=_api._tcp.a.test,v4.a.test,${port},10,5`,
    `--srv-host=_api._tcp.a.test,dual.a.test,${port},10,1`,
    `--srv-host=_api._tcp.a.test,real.b.test,${port},20,1`,
  ]);
  const config = { zones: { "a.test": zoneA(1, "127.0.0.2"), "b.test": ZONE_B }, forwards: { "api.test": dnsmasq.server, "keep.test": dnsmasq.server } };
  [unbound, bind] = await Promise.all([startUnbound(config, "ns.a.test"), startBind(config, "ns.a.test")]);
}, 30_000);

afterAll(async () => {
  await Promise.all([dnsmasq?.stop(), unbound?.stop(), bind?.stop()]);
  await stopAllBackends();
});

const channels: Http2Channel[] = [];
const resolvers: DnsResolver[] = [];
afterEach(async () => {
  for (const r of resolvers.splice(0)) r.close();
  await Promise.all(channels.splice(0).map((c) => c.close()));
});

/**
 * Generous per-try timeout: the suite runs twice at once on two cores, and a
 * timer that fires late can beat a datagram that arrived in time.
 */
const DNS = { hostsFile: false as const, timeout: 2000, attempts: 2 };

function resolver(server: string, name: string, srv = false): DnsResolver {
  const r = new DnsResolver(srv ? `dns+srv:///${name}` : `dns:///${name}:${port}`, { ...DNS, nameservers: [server] });
  resolvers.push(r);
  return r;
}

function channel(server: string, name: string, members: number, srv = false, attempts = DNS.attempts): Http2Channel {
  const ch = createHttp2Channel({
    target: `http://${srv ? "api.a.test" : name}:${port}`,
    discovery: srv ? `dns+srv:///${name}` : `dns:///${name}:${port}`,
    dns: { ...DNS, attempts, nameservers: [server] },
    members,
    health: { interval: 300, timeout: 1000 },
  });
  channels.push(ch);
  return ch;
}

/** What Node's resolver says for one family: the addresses, or its error code (ENODATA, ENOTFOUND, EREFUSED, ESERVFAIL, ETIMEOUT). */
type Said = string[] | string;
interface Reference {
  A: Said;
  AAAA: Said;
}

async function reference(server: string, name: string, timeout = 1000): Promise<Reference> {
  const r = new nodeDns.Resolver({ timeout, tries: 2 });
  r.setServers([server]);
  const code = (e: unknown): string => String((e as NodeJS.ErrnoException).code);
  const [A, AAAA] = await Promise.all([r.resolve4(name).catch(code), r.resolve6(name).catch(code)]);
  return { A, AAAA };
}

const union = (ref: Reference): string[] => [...(Array.isArray(ref.A) ? ref.A : []), ...(Array.isArray(ref.AAAA) ? ref.AAAA : [])];
const key = (ip: string): string => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);
const hosts = (set: AddressSet): string[] => set.addresses.map((a) => a.host).sort();

/** c-ares's error codes as dialtone's answer kinds; an empty list (a CNAME with no address behind it) is NODATA. */
const KIND: Record<string, string> = {
  ENODATA: "nodata",
  ENOTFOUND: "nxdomain",
  EREFUSED: "refused",
  ESERVFAIL: "servfail",
  ETIMEOUT: "timeout",
  ENOTIMP: "notimp",
};
const kindOf = (said: Said): string | undefined => (Array.isArray(said) ? (said.length === 0 ? "nodata" : undefined) : (KIND[said] ?? said));

/**
 * dialtone's lookup agrees with the reference: the same addresses when any
 * family has some; an empty set when every family answered with none; a
 * ResolveError when none has an address and one failed. Families without
 * addresses are reported with the answer Node got.
 */
async function expectAgrees(server: string, name: string, ref: Reference): Promise<AddressSet | ResolveError> {
  const got = await resolver(server, name)
    .lookup()
    .catch((e: unknown) => e);
  const expected = union(ref);
  const failed = [kindOf(ref.A), kindOf(ref.AAAA)].some((k) => k !== undefined && k !== "nodata" && k !== "nxdomain");
  if (expected.length === 0 && failed) {
    expect(got).toBeInstanceOf(ResolveError);
  } else {
    expect(got, String(got)).not.toBeInstanceOf(Error);
    expect(hosts(got as AddressSet)).toEqual([...expected].sort());
  }
  const answers = got instanceof ResolveError ? got.answers : ((got as AddressSet).answers ?? []);
  for (const type of ["A", "AAAA"] as const) {
    const k = kindOf(ref[type]);
    const reported = answers.filter((a) => a.type === type).map((a) => a.answer);
    if (k === undefined) expect(reported).toEqual([]);
    else expect(reported).toContain(k);
  }
  return got as AddressSet | ResolveError;
}

/** A channel to the name is ready exactly when the reference has addresses, on exactly those. */
async function expectChannelAgrees(server: string, name: string, ref: Reference): Promise<Http2Channel> {
  const expected = union(ref);
  const ch = channel(server, name, Math.max(1, expected.length));
  if (expected.length > 0) {
    await ch.ready(AbortSignal.timeout(10_000));
    expect(
      ch
        .stats()
        .addresses.map((a) => a.address)
        .sort(),
    ).toEqual(expected.map(key).sort());
    expect(
      ch
        .stats()
        .members.map((m) => m.address)
        .sort(),
    ).toEqual(expected.map(key).sort());
  } else {
    // Not ready, and it says why: what each family got, from which server.
    await eventually(() => ch.stats().resolution.noAddresses !== undefined, 10_000, "the resolution to say why there is no address");
    const err = await ch.ready(AbortSignal.timeout(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotReadyError);
    for (const type of ["A", "AAAA"] as const) {
      const k = kindOf(ref[type]);
      if (k) expect((err as Error).message).toContain(`${server} answered ${k.toUpperCase()} for ${name} ${type}`);
    }
    expect(ch.stats().resolution.noAddresses).toContain(server);
  }
  return ch;
}

interface ServerCase {
  kind: "dnsmasq" | "unbound" | "bind";
  server: () => string;
  /** Changes move.a.test's one A record. */
  move: (to: string) => Promise<void>;
  /** Drops (or restores) keep.test's IPv6 address at dnsmasq, which then refuses AAAA for it (unbound and BIND forward keep.test there). */
  dropV6: (drop: boolean) => Promise<void>;
  freeze: () => Promise<void>;
  thaw: () => void;
  /** What the server says for AAAA of api.test (an IPv4-only name): REFUSED itself, or SERVFAIL forwarding to dnsmasq. */
  oneFamilyFails: "EREFUSED" | "ESERVFAIL";
}

let bindSerial = 1;
let unboundSerial = 1;
const cases: ServerCase[] = [
  {
    kind: "dnsmasq",
    server: () => dnsmasq.server,
    move: (to) => dnsmasq.setHosts(dnsmasqHosts(to)),
    dropV6: (drop) => dnsmasq.setHosts(dnsmasqHosts("127.0.0.2", !drop)),
    freeze: () => dnsmasq.freeze(),
    thaw: () => dnsmasq.thaw(),
    oneFamilyFails: "EREFUSED",
  },
  {
    kind: "unbound",
    server: () => unbound.server,
    move: async (to) => unbound.setZone("a.test", zoneA(++unboundSerial, to)),
    dropV6: (drop) => dnsmasq.setHosts(dnsmasqHosts("127.0.0.2", !drop)),
    freeze: () => unbound.freeze(),
    thaw: () => unbound.thaw(),
    oneFamilyFails: "ESERVFAIL",
  },
  {
    kind: "bind",
    server: () => bind.server,
    move: async (to) => bind.setZone("a.test", zoneA(++bindSerial, to)),
    dropV6: (drop) => dnsmasq.setHosts(dnsmasqHosts("127.0.0.2", !drop)),
    freeze: () => bind.freeze(),
    thaw: () => bind.thaw(),
    oneFamilyFails: "ESERVFAIL",
  },
];

describe.each(cases)("against a real $kind, compared with Node's dns.Resolver", (c) => {
  it("an IPv4-only name: its A addresses (AAAA is NODATA)", async () => {
    const ref = await reference(c.server(), "v4.a.test");
    expect(ref).toEqual({ A: ["127.0.0.2"], AAAA: "ENODATA" });
    const set = (await expectAgrees(c.server(), "v4.a.test", ref)) as AddressSet;
    // The set lives as long as its shortest answer: AAAA's negative TTL, min(SOA TTL, MINIMUM) where there is an SOA.
    if (c.kind === "dnsmasq") expect(set.ttl).toBe(1000);
    else expect([1000, NEG_TTL_S * 1000]).toContain(set.ttl);
    await expectChannelAgrees(c.server(), "v4.a.test", ref);
  });

  it("an IPv6-only name: its AAAA addresses (A is NODATA)", async () => {
    const ref = await reference(c.server(), "v6.a.test");
    expect(ref).toEqual({ A: "ENODATA", AAAA: ["::1"] });
    await expectAgrees(c.server(), "v6.a.test", ref);
    await expectChannelAgrees(c.server(), "v6.a.test", ref);
  });

  it("a dual-stack name: both families, a member on each", async () => {
    const ref = await reference(c.server(), "dual.a.test");
    expect(ref).toEqual({ A: ["127.0.0.3"], AAAA: ["::1"] });
    await expectAgrees(c.server(), "dual.a.test", ref);
    await expectChannelAgrees(c.server(), "dual.a.test", ref);
  });

  it("a CNAME chain into another zone is followed", async () => {
    const ref = await reference(c.server(), "alias.a.test");
    expect(ref.A).toEqual(["127.0.0.4"]);
    await expectAgrees(c.server(), "alias.a.test", ref);
    await expectChannelAgrees(c.server(), "alias.a.test", ref);
  });

  it("SRV: the lowest priority's targets, each address with its record's port and weight", async () => {
    const r = new nodeDns.Resolver({ timeout: 1000, tries: 2 });
    r.setServers([c.server()]);
    const srv = await r.resolveSrv("_api._tcp.a.test");
    const lowest = Math.min(...srv.map((s) => s.priority));
    const expected: Array<[string, number, number]> = [];
    for (const s of srv.filter((x) => x.priority === lowest)) {
      const ref = await reference(c.server(), s.name);
      for (const ip of union(ref)) expected.push([ip, s.port, s.weight]);
    }
    expect(expected.map((e) => e[0]).sort()).toEqual(["127.0.0.2", "127.0.0.3", "::1"]);
    const set = await resolver(c.server(), "_api._tcp.a.test", true).lookup();
    const byIp = (a: [string, number, number], b: [string, number, number]): number => a[0].localeCompare(b[0]);
    expect(set.addresses.map((a): [string, number, number] => [a.host, a.port, a.weight ?? 1]).sort(byIp)).toEqual(expected.sort(byIp));
    const ch = channel(c.server(), "_api._tcp.a.test", 3, true);
    await ch.ready(AbortSignal.timeout(10_000));
    expect(
      ch
        .stats()
        .members.map((m) => m.address)
        .sort(),
    ).toEqual(expected.map((e) => key(e[0])).sort());
  });

  it("40 A records: the UDP answer is truncated, and the whole set comes over TCP", async () => {
    const ref = await reference(c.server(), "many.a.test");
    expect((ref.A as string[]).length).toBe(40);
    // Without EDNS a UDP answer holds at most 512 bytes, about 29 A records:
    // 40 addresses can only have come from the TCP retry.
    const set = (await expectAgrees(c.server(), "many.a.test", ref)) as AddressSet;
    expect(set.addresses).toHaveLength(40);
  });

  it("NXDOMAIN: no address; the channel is not ready and says which server answered what for which family", async () => {
    const ref = await reference(c.server(), "gone.a.test");
    expect(ref).toEqual({ A: "ENOTFOUND", AAAA: "ENOTFOUND" });
    const set = (await expectAgrees(c.server(), "gone.a.test", ref)) as AddressSet;
    // No SOA from dnsmasq: minTtl. unbound and BIND: the SOA's MINIMUM (2 s), below its TTL (30 s), counted down by a cache.
    if (c.kind === "dnsmasq") expect(set.ttl).toBe(1000);
    else expect([1000, NEG_TTL_S * 1000]).toContain(set.ttl);
    await expectChannelAgrees(c.server(), "gone.a.test", ref);
  });

  it("NODATA (a name with only a TXT record): no address; not ready, and why", async () => {
    const ref = await reference(c.server(), "txt.a.test");
    expect(ref).toEqual({ A: "ENODATA", AAAA: "ENODATA" });
    await expectAgrees(c.server(), "txt.a.test", ref);
    await expectChannelAgrees(c.server(), "txt.a.test", ref);
  });

  it(`one family fails (${c.oneFamilyFails} for AAAA of an IPv4-only name): the name is reachable on A, and the failure is reported`, async () => {
    const ref = await reference(c.server(), "api.test");
    expect(ref).toEqual({ A: ["127.0.0.2"], AAAA: c.oneFamilyFails });
    await expectAgrees(c.server(), "api.test", ref);
    const ch = await expectChannelAgrees(c.server(), "api.test", ref);
    const registry = new Registry();
    ch.metrics(registry);
    const rec = recordEvents(ch);
    const answer = kindOf(c.oneFamilyFails) as string;
    // The failed family is asked again on the backoff, and each failure is an event and a count.
    await eventually(() => rec.events.some((e) => e.type === "resolve-family-failed"), 5000, "a family failure event");
    const ev = rec.events.find((e) => e.type === "resolve-family-failed");
    expect(ev).toMatchObject({ family: "ipv6", answer, name: "api.test", server: c.server(), kept: 0 });
    expect(rec.events.filter((e) => e.type === "resolve-failed")).toEqual([]);
    expect(sample(await registry.metrics(), "dialtone_resolve_family_failures_total", { family: "ipv6", answer })).toBeGreaterThanOrEqual(1);
    expect((await ch.request({ path: "/" })).headers["x-backend"]).toBe(key("127.0.0.2"));
  });

  it(`a family that fails after it had addresses keeps its own last good ones (AAAA ${c.oneFamilyFails} once its record is gone upstream)`, async () => {
    try {
      const ref = await reference(c.server(), "keep.test");
      expect(ref).toEqual({ A: ["127.0.0.2"], AAAA: ["::1"] });
      const ch = await expectChannelAgrees(c.server(), "keep.test", ref);
      const rec = recordEvents(ch);
      await c.dropV6(true);
      let now: Reference = ref;
      for (let i = 0; i < 50 && now.AAAA !== c.oneFamilyFails; i++) {
        await new Promise((r) => setTimeout(r, 100));
        now = await reference(c.server(), "keep.test");
      }
      // Node's resolver now has no IPv6 address for the name; dialtone's AAAA stands on its last good answer.
      expect(now).toEqual({ A: ["127.0.0.2"], AAAA: c.oneFamilyFails });
      await eventually(() => rec.events.some((e) => e.type === "resolve-family-failed" && e.family === "ipv6"), 10_000, "AAAA's failure");
      expect(rec.events.find((e) => e.type === "resolve-family-failed")).toMatchObject({
        name: "keep.test",
        family: "ipv6",
        answer: kindOf(c.oneFamilyFails),
        kept: 1,
      });
      const set = await resolver(c.server(), "keep.test")
        .lookup()
        .catch((e: unknown) => e);
      // A fresh resolver has no last good AAAA: it agrees with Node.
      expect(hosts(set as AddressSet)).toEqual(["127.0.0.2"]);
      expect(
        ch
          .stats()
          .addresses.map((a) => a.address)
          .sort(),
      ).toEqual([key("127.0.0.2"), key("::1")].sort());
      expect(ch.stats().ready).toBe(2);
      expect(rec.events.filter((e) => e.type === "resolve-failed")).toEqual([]);
    } finally {
      await c.dropV6(false);
    }
  });

  it("a record moves (TTL 1 s): the member follows, as Node's resolver sees the new address", async () => {
    try {
      const ref = await reference(c.server(), "move.a.test");
      expect(ref.A).toEqual(["127.0.0.2"]);
      const ch = await expectChannelAgrees(c.server(), "move.a.test", ref);
      await c.move("127.0.0.3");
      let now: Reference = ref;
      for (let i = 0; i < 50 && JSON.stringify(now.A) !== JSON.stringify(["127.0.0.3"]); i++) {
        await new Promise((r) => setTimeout(r, 100));
        now = await reference(c.server(), "move.a.test");
      }
      expect(now.A).toEqual(["127.0.0.3"]);
      await eventually(() => ch.stats().members.some((m) => m.state === "ready" && m.address === key("127.0.0.3")), 10_000, "a member on the new address");
      await eventually(
        () =>
          ch
            .stats()
            .addresses.map((a) => a.address)
            .join() === key("127.0.0.3"),
        10_000,
        "only the new address",
      );
    } finally {
      await c.move("127.0.0.2");
    }
  });

  it("the server stops answering (SIGSTOP): the channel keeps its addresses and serves; the failure is reported; it recovers", async () => {
    // One try per lookup: a frozen server costs one timeout, not two.
    const ch = channel(c.server(), "v4.a.test", 1, false, 1);
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    await c.freeze();
    try {
      const ref = await reference(c.server(), "v4.a.test", 300);
      expect(ref).toEqual({ A: "ETIMEOUT", AAAA: "ETIMEOUT" });
      await eventually(() => rec.events.some((e) => e.type === "resolve-failed"), 20_000, "a failed refresh");
      const failures = rec.events
        .filter((e) => e.type === "resolve-family-failed")
        .map((e) => (e.type === "resolve-family-failed" ? `${e.family} ${e.answer} kept ${e.kept}` : ""));
      expect(failures).toContain("ipv4 timeout kept 1");
      expect(ch.stats().addresses.map((a) => a.address)).toEqual([key("127.0.0.2")]);
      expect(ch.stats().resolution.lastError).toMatch(/no address for v4\.a\.test: no answer from .* for v4\.a\.test A within 2000 ms/);
      expect((await ch.request({ path: "/" })).status).toBe(200);
    } finally {
      c.thaw();
    }
    const failedAt = rec.events.length;
    await eventually(() => rec.events.slice(failedAt).some((e) => e.type === "resolve"), 20_000, "a good refresh after SIGCONT");
    expect(ch.stats().resolution.lastError).toBeUndefined();
  });
});

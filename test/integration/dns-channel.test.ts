import { afterEach, describe, expect, it } from "vitest";
import { startBackends } from "../helpers/backends.js";
import { eventually, recordEvents, steadyLoad } from "../helpers/channel.js";
import { startDnsmasq, type Dnsmasq } from "../helpers/dnsmasq.js";
import { a, startFaultDns, type FaultDns } from "../helpers/fault-dns.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();
let dns: Dnsmasq | undefined;
let faultDns: FaultDns | undefined;
afterEach(async () => {
  await dns?.stop();
  dns = undefined;
  await faultDns?.stop();
  faultDns = undefined;
});

describe("a channel following DNS (real dnsmasq)", () => {
  it("members move to the new addresses when the record's TTL runs out, with no failed requests", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]);
    const port = backends[0]!.port;
    dns = await startDnsmasq(["127.0.0.2 svc.test", "127.0.0.3 svc.test"], 1);
    const ch = open({
      target: `http://svc.test:${port}`,
      discovery: `dns:///svc.test:${port}`,
      dns: { nameservers: [dns.server], hostsFile: false, family: 4 },
      members: 2,
    });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    expect(new Set(ch.stats().members.map((m) => m.address))).toEqual(new Set([backends[0]!.key, backends[1]!.key]));
    expect(ch.stats().resolution.ttlMs).toBe(1000);

    let stop = false;
    const load = steadyLoad(() => ch.request({ path: "/", timeout: 3000 }), { concurrency: 6, maxMs: 10_000, stop: () => stop, pauseMs: 2 });
    await new Promise((r) => setTimeout(r, 300));
    await dns.setHosts(["127.0.0.4 svc.test", "127.0.0.5 svc.test"]);
    const newKeys = new Set([backends[2]!.key, backends[3]!.key]);
    // The record's TTL (1 s) drives the re-resolve: without it the next lookup would be maxTtl (300 s)
    // away. The bound is generous on purpose (a loaded CI machine); the exact refresh time is the fake-clock
    // unit tests' job (dns-families, simulation).
    await eventually(
      () => {
        const ms = ch.stats().members;
        return ms.length === 2 && ms.every((m) => m.state === "ready" && newKeys.has(m.address));
      },
      15_000,
      "members on the new addresses only",
    );
    const movedAt = performance.now();
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    const results = await load;
    expect(results.filter((r) => !r.ok).map((r) => String(r.error))).toEqual([]);
    const late = results.filter((r) => r.ok && r.at > movedAt);
    expect(late.length).toBeGreaterThan(0);
    for (const r of late) expect(newKeys.has(String((r.value as { headers: Record<string, string> }).headers["x-backend"]))).toBe(true);
    const drained = rec.events.filter((e) => e.type === "draining" && e.reason === "address-removed");
    expect(drained.map((e) => (e.type === "draining" ? e.member.address : "")).sort()).toEqual([backends[0]!.key, backends[1]!.key].sort());
  });
});

describe("a channel whose name vanishes from DNS (fault injection: NXDOMAIN on demand)", () => {
  it("NXDOMAIN never empties a live channel: members keep serving, and are not replaced on the vanished addresses", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const port = backends[0]!.port;
    let vanished = false;
    faultDns = await startFaultDns(() =>
      vanished ? { kind: "answer", rcode: "NXDOMAIN" } : { kind: "answer", answers: [a("svc.test", "127.0.0.2", 1), a("svc.test", "127.0.0.3", 1)] },
    );
    const ch = open({
      target: `http://svc.test:${port}`,
      discovery: `dns:///svc.test:${port}`,
      dns: { nameservers: [faultDns.server], hostsFile: false, family: 4, timeout: 300 },
      members: 2,
      health: { interval: 200, timeout: 200 },
    });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    vanished = true;
    await eventually(() => rec.events.some((e) => e.type === "resolve" && e.addresses.length === 0), 3000, "an empty answer");
    // Still serving on both members.
    for (let i = 0; i < 10; i++) expect((await ch.request({ path: "/" })).status).toBe(200);
    expect(ch.stats().ready).toBe(2);
    expect(ch.stats().addresses).toEqual([]);
    // One backend dies: its member goes, and nothing is dialed on a vanished address.
    await backends[0]!.kill();
    await eventually(() => ch.stats().members.length === 1, 3000, "the dead member to go");
    const goneAt = performance.now();
    await new Promise((r) => setTimeout(r, 500));
    // Its slot has nowhere to go: no dial at all, to the vanished addresses or elsewhere.
    expect(rec.events.filter((e) => e.type === "connect-attempt" && e.at > goneAt)).toEqual([]);
    expect((await ch.request({ path: "/" })).headers["x-backend"]).toBe(backends[1]!.key);
    // The name comes back: the channel fills its slots again.
    vanished = false;
    await backends[0]!.kill();
    const [revived] = await startBackends(["127.0.0.2"], { port });
    expect(revived!.key).toBe(backends[0]!.key);
    await eventually(() => ch.stats().ready === 2, 5000, "both slots ready again");
  });

  it("fault injection: garbage and SERVFAIL after a good answer: the channel keeps its last good set, serves, and reports the failure", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const port = backends[0]!.port;
    let broken = false;
    faultDns = await startFaultDns((q) =>
      broken
        ? q.id % 2 === 0
          ? { kind: "raw", bytes: Buffer.from([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]) }
          : { kind: "answer", rcode: "SERVFAIL" }
        : { kind: "answer", answers: [a("svc.test", "127.0.0.2", 1), a("svc.test", "127.0.0.3", 1)] },
    );
    const ch = open({
      target: `http://svc.test:${port}`,
      discovery: `dns:///svc.test:${port}`,
      dns: { nameservers: [faultDns.server], hostsFile: false, family: 4, timeout: 200, attempts: 1 },
      members: 2,
    });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    broken = true;
    await eventually(() => rec.events.filter((e) => e.type === "resolve-failed").length >= 2, 6000, "two failed refreshes");
    expect(
      ch
        .stats()
        .addresses.map((x) => x.address)
        .sort(),
    ).toEqual([backends[0]!.key, backends[1]!.key].sort());
    expect(ch.stats().resolution.lastError).toMatch(/SERVFAIL|no answer/);
    for (let i = 0; i < 10; i++) expect((await ch.request({ path: "/" })).status).toBe(200);
    expect(ch.stats().ready).toBe(2);
  });

  it("a new address gets a member by the Spread rule: one stacked member moves, the others are untouched", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    const port = backends[0]!.port;
    let ips = ["127.0.0.2", "127.0.0.3"];
    faultDns = await startFaultDns(() => ({ kind: "answer", answers: ips.map((ip) => a("svc.test", ip, 1)) }));
    const ch = open({
      target: `http://svc.test:${port}`,
      discovery: `dns:///svc.test:${port}`,
      dns: { nameservers: [faultDns.server], hostsFile: false, family: 4, timeout: 300 },
      members: 3,
    });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const before = new Map(ch.stats().members.map((m) => [m.id, m.address]));
    ips = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
    await eventually(
      () =>
        new Set(
          ch
            .stats()
            .members.filter((m) => m.state === "ready")
            .map((m) => m.address),
        ).size === 3,
      4000,
      "one member on each address",
    );
    await eventually(() => ch.stats().members.length === 3, 2000, "the moved member's drain to finish");
    const after = ch.stats().members;
    // Exactly one of the original members was replaced; the other two kept their connections.
    expect(after.filter((m) => before.has(m.id))).toHaveLength(2);
    expect(rec.events.filter((e) => e.type === "draining" && e.reason === "rebalanced")).toHaveLength(1);
  });
});

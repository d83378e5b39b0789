/**
 * The DNS resolver's timers on the channel's clock: re-resolution at the
 * TTL, the retry backoff after failures, the refresh hint, and close() —
 * all on a fake clock with a scripted nameserver (no sockets). The real
 * UDP transport's query timeout on a fake clock is in
 * test/integration/dns-faults.test.ts.
 */
import { describe, expect, it } from "vitest";
import type { Address } from "../../src/core/address.js";
import { DnsResolver, type DnsResolverOptions } from "../../src/resolve/dns-resolver.js";
import type { AddressSet } from "../../src/resolve/resolver.js";
import { SimClock } from "../helpers/sim-clock.js";
import { SimDns } from "../helpers/sim-world.js";

const ip = (host: string): Address => ({ host, port: 80, family: 4 });
const OPTIONS: DnsResolverOptions = { nameservers: ["10.53.0.1:53"], search: [], ndots: 1, hostsFile: false, family: 4, attempts: 1, timeout: 500 };

function setUp(ttlSeconds: number, extra: Partial<ConstructorParameters<typeof DnsResolver>[1]> = {}, state: SimDns["state"] = "up") {
  const clock = new SimClock();
  const dns = new SimDns(clock, [ip("10.0.0.1")], ttlSeconds);
  dns.state = state;
  const resolver = new DnsResolver("dns:///svc.test:80", { ...OPTIONS, ...extra }, undefined, { clock, ask: dns.ask });
  const sets: Array<{ t: number; hosts: string[] }> = [];
  const errors: Array<{ t: number; message: string }> = [];
  resolver.start({
    onAddresses: (s: AddressSet) => sets.push({ t: clock.now(), hosts: s.addresses.map((a) => a.host) }),
    onError: (e) => errors.push({ t: clock.now(), message: e.message }),
  });
  return { clock, dns, resolver, sets, errors };
}

describe("DnsResolver on a fake clock (scripted nameserver, no sockets)", () => {
  it("re-resolves when the answer's TTL runs out on the clock, not before, and passes a changed set on", async () => {
    const { clock, dns, resolver, sets } = setUp(30);
    await clock.runUntil(0);
    await clock.runUntil(10);
    expect(sets).toEqual([{ t: 2, hosts: ["10.0.0.1"] }]);
    dns.addresses = [ip("10.0.0.2"), ip("10.0.0.3")];
    // The refresh is due at 2 + 30 000 ms of clock time: nothing is asked a moment before.
    await clock.runUntil(30_001);
    expect(dns.asked.map((q) => q.t)).toEqual([0]);
    await clock.runUntil(30_002);
    expect(dns.asked.map((q) => q.t)).toEqual([0, 30_002]);
    await clock.runUntil(30_010);
    expect(sets.at(-1)).toEqual({ t: 30_004, hosts: ["10.0.0.2", "10.0.0.3"] });
    resolver.close();
    expect(clock.pendingOwnTimers).toBe(0);
  });

  it("a failing nameserver is asked again on the retry backoff (250 ms doubling up to retryMax), timed by the clock", async () => {
    const { clock, dns, resolver, errors, sets } = setUp(30, { retryInitial: 250, retryMax: 1000 }, "servfail");
    await clock.runUntil(4000);
    // Each lookup takes 2 ms (the server's latency); the next one waits 250, 500, 1000, 1000… after it.
    expect(dns.asked.map((q) => q.t)).toEqual([0, 252, 754, 1756, 2758, 3760]);
    expect(errors.map((e) => e.t)).toEqual([2, 254, 756, 1758, 2760, 3762]);
    expect(errors[0]?.message).toMatch(/SERVFAIL/);
    // The server comes back: the next retry gets the addresses, and from then on the TTL rules again.
    dns.state = "up";
    await clock.runUntil(7000);
    expect(sets.map((s) => s.hosts)).toEqual([["10.0.0.1"]]);
    const answeredAt = sets[0]!.t;
    const asked = dns.asked.length;
    await clock.runUntil(answeredAt + 29_999);
    expect(dns.asked.length).toBe(asked);
    resolver.close();
    expect(clock.pendingOwnTimers).toBe(0);
  });

  it("refresh() (the supervisor's hint that addresses fail) asks again after minTtl on the clock, replacing the TTL timer", async () => {
    const { clock, dns, resolver } = setUp(300, { minTtl: 1000 });
    await clock.runUntil(10);
    resolver.refresh();
    expect(clock.pendingOwnTimers).toBe(1);
    await clock.runUntil(1009);
    expect(dns.asked).toHaveLength(1);
    await clock.runUntil(1010);
    expect(dns.asked.map((q) => q.t)).toEqual([0, 1010]);
    resolver.close();
    expect(clock.pendingOwnTimers).toBe(0);
  });

  it("close() during a lookup leaves no timer behind when the answer comes in", async () => {
    const { clock, dns, resolver, sets } = setUp(30);
    await clock.runUntil(0);
    expect(dns.asked).toHaveLength(1);
    resolver.close();
    await clock.runUntil(100);
    expect(sets).toEqual([]);
    expect(clock.pendingOwnTimers).toBe(0);
  });
});

/**
 * Deterministic simulation (FoundationDB / TigerBeetle style): a whole
 * supervisor + dispatch pipeline on one scripted clock, fake connections (no
 * sockets), and a seeded random source, through a minute of peers killed,
 * frozen, flapping and sending GOAWAY, DNS answers changing (the real DNS
 * resolver, re-resolving at the TTL on the same clock, asking a scripted
 * nameserver that also fails and falls silent) and load growing and
 * shrinking. Invariants are checked after every step; a failing seed
 * replays exactly (SIM_SEEDS=<n> runs more seeds, SIM_SEED=<s> one).
 */
import { describe, expect, it } from "vitest";
import { addressKey, type Address } from "../../src/core/address.js";
import type { ChannelEvent } from "../../src/core/events.js";
import { dispatch } from "../../src/dispatch/pipeline.js";
import { HedgeTiming } from "../../src/dispatch/hedge-timing.js";
import { RetryBudget } from "../../src/dispatch/retry-budget.js";
import { resolveHealth } from "../../src/health/options.js";
import { DnsResolver, type DnsResolverOptions } from "../../src/resolve/dns-resolver.js";
import type { AddressSet, Resolver, ResolverListener } from "../../src/resolve/resolver.js";
import { Supervisor } from "../../src/supervisor/supervisor.js";
import { mulberry32 } from "../helpers/random.js";
import { SimClock } from "../helpers/sim-clock.js";
import { SimConnector, SimDns, SimPeer, TARGET, type SimConnection } from "../helpers/sim-world.js";

const SIM_MS = 60_000;
/** Invariants are checked this often (simulated ms), and after the run. */
const STEP_MS = 50;
const MAX_MEMBERS = 5;
const CALL_TIMEOUT = 2000;
const HEALTH = { interval: 500, timeout: 250, unhealthyAfter: 2, healthyAfter: 2, jitter: 0.2, suspectAfter: 100 };
/**
 * A frozen peer's members take no new attempt later than this after the
 * freeze while another member is usable: a PING is due within `interval`,
 * and `unhealthyAfter` timeouts back to back make it unhealthy.
 */
const FROZEN_OUT_MS = HEALTH.interval + HEALTH.unhealthyAfter * HEALTH.timeout + STEP_MS;
/**
 * Members stacked on one address while an address that has been live this
 * long has none: the regulator moves one back (dial first, then drain) once
 * the address's own backoff (max 2 s) lets it dial again.
 */
const STACKED_GRACE_MS = 2000 + 1000 + 1000;
/** The DNS records' TTL (seconds): the channel learns of a change at the next re-resolution. */
const DNS_TTL_S = 1;

/** The resolver as the supervisor sees it, remembering the last set it passed on (what the channel knows). */
class Observed implements Resolver {
  readonly target: string;
  addresses: readonly Address[] = [];
  constructor(readonly inner: Resolver) {
    this.target = inner.target;
  }
  start(listener: ResolverListener): void {
    this.inner.start({
      onAddresses: (set: AddressSet) => {
        this.addresses = set.addresses;
        listener.onAddresses(set);
      },
      onError: (e) => listener.onError(e),
    });
  }
  refresh(): void {
    this.inner.refresh?.();
  }
  close(): void {
    this.inner.close();
  }
}

interface Freeze {
  key: string;
  from: number;
  to: number;
}

interface Report {
  calls: number;
  ok: number;
  faults: Record<string, number>;
  violations: string[];
  fired: number;
  dnsQueries: number;
}

async function simulate(seed: number): Promise<Report> {
  const clock = new SimClock();
  // Two streams: what the world does must not shift when the code under test draws one more number.
  const random = mulberry32(seed);
  const world = mulberry32(seed ^ 0x5bd1e995);
  const peers = new Map<string, SimPeer>();
  for (let i = 1; i <= 6; i++) {
    const p = new SimPeer({ host: `10.0.0.${i}`, port: 443, family: 4 }, 1 + Math.floor(world() * 5));
    peers.set(p.key, p);
  }
  const all = [...peers.values()];
  // Three addresses to start with, fewer than members.max: members stack, then spread as addresses come.
  const dns = new SimDns(
    clock,
    all.slice(0, 3).map((p) => p.address),
    DNS_TTL_S,
  );
  const dnsOptions: DnsResolverOptions = { nameservers: ["10.53.0.1:53"], search: [], ndots: 1, hostsFile: false, family: 4, attempts: 1, timeout: 300 };
  const resolver = new Observed(
    new DnsResolver(`dns:///${TARGET}:443`, { ...dnsOptions, minTtl: 1000, retryInitial: 250, retryMax: 2000 }, undefined, { clock, ask: dns.ask }),
  );
  const connector = new SimConnector(peers, clock, world);
  const sup = new Supervisor<SimConnection>({
    target: TARGET,
    resolver,
    connector,
    members: { min: 2, max: MAX_MEMBERS, target: 1, shrinkAfter: 5000, growAfter: 1000 },
    health: resolveHealth(HEALTH),
    backoff: { initial: 100, multiplier: 2, max: 2000, timeout: 0, jitter: 0.2 },
    criticalMin: 1,
    balancer: "peak-ewma",
    acquireTimeout: 1000,
    maxQueue: 1000,
    closeGrace: 500,
    drainTimeout: 2000,
    readyTimeout: 5000,
    flapWindow: 3000,
    minHold: 5000,
    maxOutstanding: 10_000,
    random,
    clock,
  });
  const now = (): number => clock.now();
  const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 10, window: 10_000 }, now);
  const hedge = new HedgeTiming({ delay: 100, max: 1, maxExtraLoad: false }, now);
  const events: ChannelEvent[] = [];
  sup.events.add((e) => events.push(e));

  const violations: string[] = [];
  const violate = (what: string): void => void (violations.length < 20 && violations.push(`t=${clock.now()} ${what}`));
  const faults: Record<string, number> = {};
  const freezes: Freeze[] = [];
  const attempts: Array<{ t: number; key: string; degraded: boolean }> = [];

  // ── load: Poisson arrivals at a rate the script changes ──
  let rate = 60;
  let loadOn = true;
  let calls = 0;
  let ok = 0;
  const pending = new Set<number>();
  const arrive = (): void => {
    if (!loadOn) return;
    const id = calls++;
    const started = clock.now();
    const serviceMs = 5 + world() * 30;
    pending.add(id);
    dispatch(
      sup.leases,
      { target: TARGET, timeout: CALL_TIMEOUT, idempotent: world() < 0.3, maxRetries: 1, acquireTimeout: 1000, budget, hedge },
      (lease, ctx) => {
        attempts.push({ t: clock.now(), key: lease.member.key, degraded: sup.stats().degraded });
        return lease.connection.request(ctx.signal, ctx.budgetMs, serviceMs);
      },
    )
      .then(
        () => ok++,
        () => {},
      )
      .finally(() => {
        pending.delete(id);
        // Nothing waits past its own deadline: the pipeline bounds the wait and every attempt.
        if (clock.now() - started > CALL_TIMEOUT + 1) violate(`call ${id} settled after ${clock.now() - started} ms`);
      });
    clock.world(arrive, -Math.log(1 - world()) * (1000 / rate));
  };
  clock.world(arrive, 1);

  // ── faults, one every 1–3 s ──
  const up = (): SimPeer[] => dns.addresses.map((a) => peers.get(addressKey(a))!).filter((p) => p.state === "up" && p.flapAfter === undefined);
  const pick = <T>(xs: T[]): T => xs[Math.floor(world() * xs.length)]!;
  const fault = (): void => {
    if (clock.now() > SIM_MS - 8000) return;
    const kind = pick(["kill", "freeze", "flap", "goaway", "dns", "load", "kill", "freeze", "dns-outage"]);
    const live = up();
    const count = (): void => void (faults[kind] = (faults[kind] ?? 0) + 1);
    if (kind === "kill" && live.length >= 3) {
      const p = pick(live);
      p.state = "down";
      for (const c of [...p.conns]) c.drop();
      clock.world(() => void (p.state = "up"), 1000 + world() * 5000);
      count();
    } else if (kind === "freeze" && live.length >= 3 && !all.some((p) => p.state === "frozen")) {
      const p = pick(live);
      const ms = 1000 + world() * 3000;
      p.state = "frozen";
      freezes.push({ key: p.key, from: clock.now(), to: clock.now() + ms });
      clock.world(() => {
        p.state = "up";
        for (const c of [...p.conns]) c.thaw();
      }, ms);
      count();
    } else if (kind === "flap" && live.length >= 3) {
      const p = pick(live);
      p.flapAfter = 200 + world() * 1300;
      clock.world(() => void (p.flapAfter = undefined), 5000);
      count();
    } else if (kind === "goaway") {
      const conns = all.flatMap((p) => [...p.conns]);
      if (conns.length > 0) {
        pick(conns).goaway();
        count();
      }
    } else if (kind === "dns") {
      // The record set changes; the channel hears of it when its resolver next asks (the TTL, on the clock).
      const inSet = new Set(dns.addresses.map(addressKey));
      const out = all.filter((p) => !inSet.has(p.key));
      if (out.length > 0 && (inSet.size <= 2 || world() < 0.5)) dns.addresses = [...dns.addresses, pick(out).address];
      else if (inSet.size > 2) {
        const drop = pick([...dns.addresses]);
        dns.addresses = dns.addresses.filter((a) => a !== drop);
      }
      count();
    } else if (kind === "dns-outage" && dns.state === "up") {
      // The nameserver fails (SERVFAIL) or falls silent for a while: the channel keeps its last good set.
      dns.state = world() < 0.5 ? "servfail" : "silent";
      clock.world(() => void (dns.state = "up"), 1000 + world() * 3000);
      count();
    } else if (kind === "load") {
      rate = pick([10, 60, 300]);
      count();
    }
    clock.world(fault, 1000 + world() * 2000);
  };
  clock.world(fault, 3000);

  // ── invariants after every step ──
  let stackedSince: number | undefined;
  const liveSince = new Map<string, number>();
  const check = (): void => {
    const t = clock.now();
    const stats = sup.stats();
    const members = stats.members.filter((m) => m.state !== "draining" && m.state !== "closed");
    // Never more than members.max slots; a slot holds one member, plus at most one replacement
    // warming up while it moves (dial first, then drain).
    const perSlot = new Map<number, typeof members>();
    for (const m of members) perSlot.set(m.slot, [...(perSlot.get(m.slot) ?? []), m]);
    if (perSlot.size > MAX_MEMBERS) violate(`${perSlot.size} slots > members.max ${MAX_MEMBERS}`);
    for (const [slot, ms] of perSlot) {
      if (ms.length > 2 || (ms.length === 2 && !ms.some((m) => m.state === "connecting"))) violate(`slot ${slot} holds ${ms.map((m) => `${m.id}:${m.state}`)}`);
    }
    // Stacked members while a live address stands free.
    for (const p of all) {
      // Live: named in the last set the resolver passed on (a record change reaches the channel a TTL later).
      const live = p.state === "up" && p.flapAfter === undefined && resolver.addresses.some((a) => addressKey(a) === p.key);
      if (!live) liveSince.delete(p.key);
      else if (!liveSince.has(p.key)) liveSince.set(p.key, t);
    }
    const perAddress = new Map<string, number>();
    for (const m of members) perAddress.set(m.address, (perAddress.get(m.address) ?? 0) + 1);
    const stacked = [...perAddress.values()].some((n) => n > 1);
    const free = [...liveSince.entries()].some(([key, since]) => !perAddress.has(key) && t - since >= STACKED_GRACE_MS);
    if (stacked && free) {
      stackedSince ??= t;
      if (t - stackedSince > STACKED_GRACE_MS) violate(`members stacked (${[...perAddress]}) while a live address is free`);
    } else stackedSince = undefined;
  };

  await clock.runUntil(0);
  for (let t = STEP_MS; t <= SIM_MS; t += STEP_MS) {
    await clock.runUntil(t);
    check();
  }
  // The load stops; every call must settle.
  loadOn = false;
  await clock.runUntil(SIM_MS + CALL_TIMEOUT + 1000);
  if (pending.size > 0) violate(`${pending.size} calls never settled`);
  // A frozen peer's members leave rotation within FROZEN_OUT_MS (unless degraded mode took them back).
  for (const f of freezes) {
    const late = attempts.filter((a) => a.key === f.key && a.t > f.from + FROZEN_OUT_MS && a.t < f.to && !a.degraded);
    if (late.length > 0) violate(`${late.length} attempts to frozen ${f.key} after ${FROZEN_OUT_MS} ms (first at +${late[0]!.t - f.from} ms)`);
  }
  // close() leaves no timer of its own behind.
  let closed = false;
  const closing = sup.close().then(() => void (closed = true));
  // Time moves only as far as close() needs (closeGrace at most), so a timer it forgot is still pending.
  for (let i = 0; !closed && i < 200; i++) await clock.runUntil(clock.now() + 10);
  await closing;
  if (clock.pendingOwnTimers > 0) violate(`${clock.pendingOwnTimers} timers left after close()`);
  if (events.some((e) => e.type === "degraded") && !events.some((e) => e.type === "evicted")) violate("degraded without any eviction");
  return { calls, ok, faults, violations, fired: clock.fired, dnsQueries: dns.asked.length };
}

const seeds = process.env.SIM_SEED ? [Number(process.env.SIM_SEED)] : Array.from({ length: Number(process.env.SIM_SEEDS ?? 20) }, (_, i) => i + 1);

describe("deterministic simulation: supervisor + dispatch on one fake clock, fake connections, seeded faults", () => {
  it.each(seeds)("seed %i: a minute of kills, freezes, flaps, GOAWAYs, DNS moves and load swings keeps every invariant", async (seed) => {
    const r = await simulate(seed);
    if (process.env.SIM_PRINT) console.log(seed, JSON.stringify({ ...r, violations: r.violations.length }));
    expect(r.violations).toEqual([]);
    // Not a vacuous run: calls went through, faults happened.
    expect(r.ok).toBeGreaterThan(r.calls * 0.5);
    expect(Object.values(r.faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(5);
    // The DNS resolver re-resolved on the fake clock (about once per TTL), not once at the start.
    expect(r.dnsQueries).toBeGreaterThan(SIM_MS / 1000 / DNS_TTL_S / 2);
  });

  it("is deterministic: the same seed gives the same run", async () => {
    const a = await simulate(7);
    const b = await simulate(7);
    expect(b).toEqual(a);
  });
});

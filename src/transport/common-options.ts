import { systemClock, type Clock } from "../core/clock.js";
import { requireDuration, requireInteger, requirePositiveDuration } from "../core/duration.js";
import { SUPERVISOR_DEFAULTS, fixedMembers, type MembersPlan } from "../supervisor/members-plan.js";
import { ConfigError } from "../core/errors.js";
import { checkKeys, describeType, optionalBoolean, optionalString, requireObject } from "../core/options-check.js";
import { resolveHealth, type HealthOptions } from "../health/options.js";
import { resolveHedge, type HedgeOptions } from "../dispatch/hedge-timing.js";
import { resolveRetryBudget, type RetryBudgetOptions } from "../dispatch/retry-budget.js";
import type { OutlierOptions } from "../pool/outlier.js";
import { resolveOutlier } from "../pool/outlier-options.js";
import type { Balancer } from "../pool/pool.js";
import { DNS_OPTION_KEYS, type DnsResolverOptions } from "../resolve/dns-resolver.js";
import type { Resolver } from "../resolve/resolver.js";
import { SLOT_BACKOFF, resolveBackoff, type BackoffOptions } from "../supervisor/backoff.js";
import type { Connector, MemberConnection } from "../supervisor/connection.js";
import { Supervisor } from "../supervisor/supervisor.js";

/** The options every channel takes, whatever its protocol. Durations are ms. */
export interface CommonChannelOptions {
  /** Where addresses come from: a Resolver or a discovery string (static:///…, dns:///…, host:port). */
  discovery?: string | Resolver;
  /** Options for dns:/// and dns+srv:/// discovery (nameservers, TTL bounds, family…). */
  dns?: DnsResolverOptions;
  /**
   * Warm members to keep (default 3): a number stays fixed; `{ min, max }`
   * follows load (see MembersRange).
   */
  members?: number | MembersRange;
  /**
   * Deterministic subsetting: this process's stable 0-based index in its
   * fleet (a StatefulSet ordinal, an env var). Clients 0…N−1 then spread
   * their members evenly over the backends; without it each process
   * shuffles the addresses at random.
   */
  subset?: { clientId: number };
  health?: Partial<HealthOptions>;
  /** Redial backoff for member slots (default 100 ms ×2 up to 10 s, never gives up). */
  backoff?: Partial<BackoffOptions>;
  degraded?: { criticalMin?: number };
  /** P2C cost: "peak-ewma" (default: latency estimate × (in-flight + 1), decaying toward the PING RTT) or "in-flight". */
  balancer?: Balancer;
  /** Longest wait for a usable member (default 5000). */
  acquireTimeout?: number;
  /** Most calls waiting for a member at once (default 1024). */
  maxQueue?: number;
  /** Dial timeout per address (default 5000). */
  connectTimeout?: number;
  /** How long close() lets in-flight calls finish (default 5000). */
  closeGrace?: number;
  /** How long a draining member may finish its in-flight work (default 30000). */
  drainTimeout?: number;
  /** How long ready() waits when called without a signal (default 30000). */
  readyTimeout?: number;
  /** The channel's name: the `channel` label of its metrics (default: the target). */
  name?: string;
  /**
   * Requests in flight on the whole channel past which a call fails at once
   * with OverloadedError (default 10000): frozen members must not gather an
   * unbounded pile.
   */
  maxOutstanding?: number;
  /**
   * How long an address the resolver stops naming is kept while answers
   * rotate within a set that still overlaps it (default 30000), so healthy
   * members do not churn.
   */
  minHold?: number;
  /** A connection that dies within this long of its first PONG counts as a failure of its address (default 5000). */
  flapWindow?: number;
  /**
   * Retries and hedges together may add at most `ratio` of the channel's
   * calls over `window` plus `minPerSecond` (default { ratio: 0.2,
   * minPerSecond: 10, window: 10000 }, Finagle's); false: no budget.
   */
  retryBudget?: Partial<RetryBudgetOptions> | false;
  /**
   * Hedged requests for calls marked idempotent (off by default): with no
   * response after `delay` ms (or the channel's running p95: "p95", the
   * default), another attempt goes to a different member, up to `max`
   * (default 1); the first response wins, the others are cancelled. Paid
   * from the retry budget, and bounded by `maxExtraLoad` (hedges per call
   * over 10 s; default 0.05 with "p95", false with a fixed delay).
   */
  hedge?: Partial<HedgeOptions> | false;
  /**
   * Outlier ejection from request outcomes (off unless given; Envoy's names):
   * `{ consecutive5xx: 5, consecutiveGatewayErrors: 5, consecutiveLocalFailures: 5,
   * baseEjection: 30000, maxEjection: 300000, maxEjectedPercent: 50 }` fill in
   * what is missing. An ejected member stays connected and PINGed but takes
   * no picks until its time is up.
   */
  outlier?: Partial<OutlierOptions> | false;
  /** Picker randomness; tests pin it. */
  random?: () => number;
  /**
   * The channel's one clock (default: the system clock): every timer and
   * every reading of the time in the channel (supervisor, health, pool,
   * dispatch, the transport's deadlines and connect timeouts, DNS refresh)
   * goes through it. Tests pass a fake one to script time.
   */
  clock?: Clock;
}

/**
 * Members that follow load: the channel starts at `min`, grows one member at
 * a time while the average in-flight per member stays above `target`, and
 * shrinks one at a time after `shrinkAfter` ms below a quarter of it.
 */
export interface MembersRange {
  min: number;
  max: number;
  /** In-flight requests per member that count as busy (default: half the peer's SETTINGS_MAX_CONCURRENT_STREAMS, or 64). */
  target?: number;
  /** How long load must stay high before one member is added (default 1000). */
  growAfter?: number;
  /** How long load must stay low before one member is let go (default 30000). */
  shrinkAfter?: number;
}

export const COMMON_KEYS: readonly string[] = [
  "discovery",
  "dns",
  "members",
  "subset",
  "health",
  "backoff",
  "degraded",
  "balancer",
  "acquireTimeout",
  "maxQueue",
  "connectTimeout",
  "closeGrace",
  "drainTimeout",
  "readyTimeout",
  "name",
  "maxOutstanding",
  "minHold",
  "flapWindow",
  "retryBudget",
  "hedge",
  "outlier",
  "random",
  "clock",
];

/**
 * The most members a channel keeps. Each member is a socket, a health loop
 * and a slot in the address book; tens of thousands block the constructor
 * for seconds and no backend wants that many connections from one client.
 */
export const MAX_MEMBERS = 10_000;

export interface ResolvedCommon {
  name: string;
  /** The fixed count (min = max), or a range that follows load: passed to the supervisor as it is. */
  members: MembersPlan;
  subset: { clientId: number } | undefined;
  health: HealthOptions;
  backoff: BackoffOptions;
  criticalMin: number;
  balancer: Balancer;
  acquireTimeout: number;
  maxQueue: number;
  connectTimeout: number;
  closeGrace: number;
  drainTimeout: number;
  readyTimeout: number;
  maxOutstanding: number;
  minHold: number;
  flapWindow: number;
  retryBudget: RetryBudgetOptions | false;
  hedge: HedgeOptions | undefined;
  outlier: OutlierOptions | undefined;
  random: (() => number) | undefined;
  clock: Clock;
}

/** Validates the common options; `known` adds the protocol's own keys. Bad input throws at construction. */
export function resolveCommon(
  o: CommonChannelOptions & object,
  target: string,
  known: readonly string[],
  /** Whether this protocol can run health.check (an HTTP request on the member's connection). */
  can: { appCheck?: boolean } = {},
): ResolvedCommon {
  if (o === null || typeof o !== "object") throw new ConfigError("options", "expected an object");
  checkKeys("", o, [...COMMON_KEYS, ...known]);
  const members = resolveMembers(o.members);
  const criticalMin = resolveDegraded(o.degraded, members.min);
  // peak-ewma by default: with decay on read it no longer starves a once-slow member, and bench/slow shows it better.
  const balancer = o.balancer ?? "peak-ewma";
  if (balancer !== "in-flight" && balancer !== "peak-ewma")
    throw new ConfigError("balancer", `expected "in-flight" or "peak-ewma", got ${JSON.stringify(balancer)}`);
  const name = o.name ?? target;
  if (typeof name !== "string" || name.trim() === "") throw new ConfigError("name", "expected a non-empty string");
  if (o.random !== undefined && typeof o.random !== "function") throw new ConfigError("random", `expected a function, got ${describeType(o.random)}`);
  checkDnsOptions(o.dns, o.discovery);
  const health = resolveHealth(o.health);
  if (health.check !== undefined && !can.appCheck)
    throw new ConfigError("health.check", "application checks need an HTTP/2 channel (gRPC or HTTP); this protocol has PING only");
  return {
    name,
    members,
    subset: resolveSubset(o.subset),
    health,
    backoff: resolveBackoff(o.backoff, SLOT_BACKOFF),
    criticalMin,
    balancer,
    acquireTimeout: requireDuration("acquireTimeout", o.acquireTimeout ?? 5000),
    maxQueue: requireInteger("maxQueue", o.maxQueue ?? 1024, 0),
    // 0 would fail every dial before it starts.
    connectTimeout: requirePositiveDuration("connectTimeout", o.connectTimeout ?? 5000),
    closeGrace: requireDuration("closeGrace", o.closeGrace ?? 5000),
    drainTimeout: requireDuration("drainTimeout", o.drainTimeout ?? 30_000),
    readyTimeout: requireDuration("readyTimeout", o.readyTimeout ?? 30_000),
    maxOutstanding: requireInteger("maxOutstanding", o.maxOutstanding ?? SUPERVISOR_DEFAULTS.maxOutstanding, 1),
    minHold: requireDuration("minHold", o.minHold ?? SUPERVISOR_DEFAULTS.minHold),
    flapWindow: requireDuration("flapWindow", o.flapWindow ?? SUPERVISOR_DEFAULTS.flapWindow),
    retryBudget: resolveRetryBudget(o.retryBudget),
    hedge: resolveHedge(o.hedge),
    outlier: resolveOutlier(o.outlier),
    random: o.random,
    clock: resolveClock(o.clock),
  };
}

/** `clock`: an object with now(), wall() and setTimeout(fn, ms) returning a Timer; the system clock when absent. */
function resolveClock(input: unknown): Clock {
  if (input === undefined) return systemClock;
  const c = requireObject("clock", input);
  for (const k of ["now", "wall", "setTimeout"] as const) {
    if (typeof c[k] !== "function") throw new ConfigError(`clock.${k}`, `expected a function, got ${describeType(c[k])}`);
  }
  return input as Clock;
}

/** `members`: an integer, or `{ min, max, target?, growAfter?, shrinkAfter? }` with 1 ≤ min ≤ max ≤ MAX_MEMBERS. */
function resolveMembers(input: unknown): MembersPlan {
  if (input === undefined || typeof input === "number" || input === null || typeof input !== "object") {
    return fixedMembers(requireInteger("members", input ?? 3, 1, MAX_MEMBERS));
  }
  const r = requireObject("members", input);
  checkKeys("members", r, ["min", "max", "target", "growAfter", "shrinkAfter"]);
  const min = requireInteger("members.min", r.min, 1, MAX_MEMBERS);
  const max = requireInteger("members.max", r.max, 1, MAX_MEMBERS);
  if (max < min) throw new ConfigError("members.max", `must be ≥ members.min (${min}), got ${max}`);
  return {
    min,
    max,
    target: r.target === undefined ? undefined : requireInteger("members.target", r.target, 1),
    growAfter: requirePositiveDuration("members.growAfter", r.growAfter ?? SUPERVISOR_DEFAULTS.growAfter),
    shrinkAfter: requirePositiveDuration("members.shrinkAfter", r.shrinkAfter ?? SUPERVISOR_DEFAULTS.shrinkAfter),
  };
}

/** `subset: { clientId }`: a non-negative integer index in the fleet. */
function resolveSubset(input: unknown): { clientId: number } | undefined {
  if (input === undefined) return undefined;
  const s = requireObject("subset", input);
  checkKeys("subset", s, ["clientId"]);
  // 2^31−1: ids times the subset size stay exact integers.
  return { clientId: requireInteger("subset.clientId", s.clientId, 0, 2 ** 31 - 1) };
}

/** `degraded: { criticalMin }`: an object with that one key, criticalMin ≤ members. */
function resolveDegraded(input: unknown, members: number): number {
  if (input === undefined) return 1;
  const d = requireObject("degraded", input);
  checkKeys("degraded", d, ["criticalMin"]);
  const criticalMin = requireInteger("degraded.criticalMin", d.criticalMin ?? 1, 0);
  if (criticalMin > members) throw new ConfigError("degraded.criticalMin", `must be ≤ members (${members}), got ${criticalMin}`);
  return criticalMin;
}

/**
 * `dns` is read only by dns:/// and dns+srv:/// discovery; anywhere else it
 * would be silently ignored, so it is refused. Its keys and the types the
 * resolver does not check itself are checked here; the resolver checks its
 * numbers (durations, ndots, attempts) when it is built.
 */
function checkDnsOptions(input: unknown, discovery: unknown): void {
  if (input === undefined) return;
  const d = requireObject("dns", input);
  checkKeys("dns", d, Object.keys(DNS_OPTION_KEYS));
  if (typeof discovery !== "string" || !/^dns(\+srv)?:\/\//i.test(discovery)) {
    throw new ConfigError("dns", "DNS options need dns:/// or dns+srv:/// discovery");
  }
  for (const k of ["nameservers", "search"] as const) {
    const v = d[k];
    if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === "string"))) {
      throw new ConfigError(`dns.${k}`, `expected an array of strings, got ${describeType(v)}`);
    }
  }
  optionalBoolean("dns.rotate", d.rotate);
  optionalString("dns.resolvConf", d.resolvConf);
  if (d.hostsFile !== false) optionalString("dns.hostsFile", d.hostsFile);
}

/** The supervisor for a channel, from its resolved common options. */
export function supervisorFor<C extends MemberConnection>(
  o: ResolvedCommon,
  target: string,
  resolver: Resolver,
  connector: Connector<C>,
  /** Protocol-specific address policy (NATS: a reconnect-delay callback, no-randomize). */
  addresses: { backoffDelay?: ((failures: number) => number) | undefined; retainOrder?: boolean | undefined } = {},
): Supervisor<C> {
  return new Supervisor<C>({
    backoffDelay: addresses.backoffDelay,
    retainOrder: addresses.retainOrder,
    target,
    resolver,
    connector,
    members: o.members,
    subset: o.subset,
    health: o.health,
    backoff: o.backoff,
    criticalMin: o.criticalMin,
    balancer: o.balancer,
    acquireTimeout: o.acquireTimeout,
    maxQueue: o.maxQueue,
    closeGrace: o.closeGrace,
    drainTimeout: o.drainTimeout,
    readyTimeout: o.readyTimeout,
    maxOutstanding: o.maxOutstanding,
    minHold: o.minHold,
    flapWindow: o.flapWindow,
    outlier: o.outlier,
    random: o.random,
    clock: o.clock,
  });
}

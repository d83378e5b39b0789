import { requireDuration, requireInteger } from "../../core/duration.js";
import { ConfigError, TargetError } from "../../core/errors.js";
import { resolveHealth, type HealthOptions } from "../../health/options.js";
import type { Balancer } from "../../pool/pool.js";
import type { DnsResolverOptions } from "../../resolve/dns-resolver.js";
import type { Resolver } from "../../resolve/resolver.js";
import { hostResolver, resolverFor } from "../../resolve/target.js";
import { SLOT_BACKOFF, resolveBackoff, type BackoffOptions } from "../../supervisor/backoff.js";
import type { Http2TlsOptions } from "./connector.js";

export interface Http2ChannelOptions {
  /** The service URL: http:// is h2c, https:// is TLS. Its host is SNI, certificate name and :authority. */
  target: string | URL;
  /** Where addresses come from: a Resolver or a discovery string (static:///a:1,b:2, host:port). Default: the target's host. */
  discovery?: string | Resolver;
  /** Warm members to keep (default 3). */
  members?: number;
  health?: Partial<HealthOptions>;
  /** Redial backoff for member slots (default 100 ms ×2 up to 10 s, never gives up). */
  backoff?: Partial<BackoffOptions>;
  degraded?: { criticalMin?: number };
  /** P2C cost: "in-flight" (default) or "peak-ewma". */
  balancer?: Balancer;
  tls?: Http2TlsOptions;
  /** Longest wait for a usable member, ms (default 5000). */
  acquireTimeout?: number;
  /** Most requests waiting for a member at once (default 1024). */
  maxQueue?: number;
  /** Dial timeout per address, ms (default 5000). */
  connectTimeout?: number;
  /** Default whole-request timeout, ms (default 30000). */
  requestTimeout?: number;
  /** Extra attempts for requests HTTP/2 proves unprocessed (default 2). */
  maxRetries?: number;
  /** Largest response body collected by request(), bytes (default 64 MiB). */
  maxResponseBytes?: number;
  /** How long close() lets in-flight requests finish, ms (default 5000). */
  closeGrace?: number;
  /** How long a draining member (GOAWAY, rebalanced) may finish its streams, ms (default 30000). */
  drainTimeout?: number;
  /** Options for dns:/// and dns+srv:/// discovery (nameservers, TTL bounds, family…). */
  dns?: DnsResolverOptions;
  /** The channel's name: the `channel` label of its metrics (default: the target's origin). */
  name?: string;
  /** Picker randomness; tests pin it. */
  random?: () => number;
}

export interface ResolvedHttp2Options {
  name: string;
  url: URL;
  target: string;
  resolver: Resolver;
  members: number;
  health: HealthOptions;
  backoff: BackoffOptions;
  criticalMin: number;
  balancer: Balancer;
  tls: Http2TlsOptions;
  acquireTimeout: number;
  maxQueue: number;
  connectTimeout: number;
  requestTimeout: number;
  maxRetries: number;
  maxResponseBytes: number;
  closeGrace: number;
  drainTimeout: number;
  random: (() => number) | undefined;
}

const KNOWN = new Set([
  "target", "discovery", "members", "health", "backoff", "degraded", "balancer", "tls", "acquireTimeout",
  "maxQueue", "connectTimeout", "requestTimeout", "maxRetries", "maxResponseBytes", "closeGrace", "drainTimeout", "random", "name", "dns",
]);

/** Validates everything up front: bad configuration fails here, never later. */
export function resolveHttp2Options(o: Http2ChannelOptions): ResolvedHttp2Options {
  if (o === null || typeof o !== "object") throw new ConfigError("options", "expected an object");
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new ConfigError(k, "unknown option");
  const url = parseTarget(o.target);
  const target = url.origin;
  const members = requireInteger("members", o.members ?? 3, 1);
  const criticalMin = requireInteger("degraded.criticalMin", o.degraded?.criticalMin ?? 1, 0);
  if (criticalMin > members) throw new ConfigError("degraded.criticalMin", `must be ≤ members (${members}), got ${criticalMin}`);
  const balancer = o.balancer ?? "in-flight";
  if (balancer !== "in-flight" && balancer !== "peak-ewma") throw new ConfigError("balancer", `expected "in-flight" or "peak-ewma", got ${JSON.stringify(balancer)}`);
  if (url.protocol !== "https:" && o.tls !== undefined) throw new ConfigError("tls", "TLS options need an https:// target");
  const defaultPort = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  let resolver: Resolver;
  if (o.discovery === undefined) resolver = hostResolver(target, hostname, defaultPort);
  else if (typeof o.discovery === "string") resolver = resolverFor(o.discovery, defaultPort, o.dns);
  else if (typeof o.discovery === "object" && typeof o.discovery.start === "function") resolver = o.discovery;
  else throw new ConfigError("discovery", "expected a discovery string or a Resolver");
  const name = o.name ?? target;
  if (typeof name !== "string" || name.trim() === "") throw new ConfigError("name", "expected a non-empty string");
  return {
    name,
    url,
    target,
    resolver,
    members,
    health: resolveHealth(o.health),
    backoff: resolveBackoff(o.backoff, SLOT_BACKOFF),
    criticalMin,
    balancer,
    tls: o.tls ?? {},
    acquireTimeout: requireDuration("acquireTimeout", o.acquireTimeout ?? 5000),
    maxQueue: requireInteger("maxQueue", o.maxQueue ?? 1024, 0),
    connectTimeout: requireDuration("connectTimeout", o.connectTimeout ?? 5000),
    requestTimeout: requireDuration("requestTimeout", o.requestTimeout ?? 30_000),
    maxRetries: requireInteger("maxRetries", o.maxRetries ?? 2, 0),
    maxResponseBytes: requireInteger("maxResponseBytes", o.maxResponseBytes ?? 64 * 1024 * 1024, 0),
    closeGrace: requireDuration("closeGrace", o.closeGrace ?? 5000),
    drainTimeout: requireDuration("drainTimeout", o.drainTimeout ?? 30_000),
    random: o.random,
  };
}

function parseTarget(t: string | URL | undefined): URL {
  if (t === undefined || t === null || t === "") throw new ConfigError("target", "required (e.g. http://api.internal:8080)");
  const raw = String(t);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetError(raw, "not a URL (expected http://host:port or https://host:port)");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TargetError(raw, `unknown scheme "${url.protocol}" (expected http: for h2c or https: for TLS)`);
  }
  if (url.hostname === "") throw new TargetError(raw, "missing host");
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username) {
    throw new TargetError(raw, "the target is an origin only: no path, query, fragment or credentials");
  }
  return url;
}

import { isIP } from "node:net";
import { ipAddress, parseHostPort, type Address } from "../../core/address.js";
import { requireDuration, requireInteger } from "../../core/duration.js";
import { ConfigError, TargetError } from "../../core/errors.js";
import { resolveHealth, type HealthOptions } from "../../health/options.js";
import type { Balancer } from "../../pool/pool.js";
import type { DnsResolverOptions } from "../../resolve/dns-resolver.js";
import type { Resolver } from "../../resolve/resolver.js";
import { StaticResolver } from "../../resolve/static-resolver.js";
import { hostResolver, resolverFor } from "../../resolve/target.js";
import { SLOT_BACKOFF, resolveBackoff, type BackoffOptions } from "../../supervisor/backoff.js";
import type { NatsAuth, NatsTls } from "./connector.js";

export interface NatsChannelOptions {
  /** The cluster: `nats://10.0.0.5:4222,10.0.0.6:4222` (IPs or one host name). */
  target: string;
  /** Overrides where addresses come from (a discovery string or Resolver), e.g. dns:///nats.internal:4222. */
  discovery?: string | Resolver;
  dns?: DnsResolverOptions;
  /**
   * Do not add the servers the cluster advertises (INFO connect_urls). Set it
   * behind a TCP load balancer, where advertised addresses may be unreachable.
   */
  ignoreDiscoveredServers?: boolean;
  members?: number;
  health?: Partial<HealthOptions>;
  backoff?: Partial<BackoffOptions>;
  degraded?: { criticalMin?: number };
  balancer?: Balancer;
  auth?: NatsAuth;
  tls?: NatsTls;
  acquireTimeout?: number;
  maxQueue?: number;
  connectTimeout?: number;
  /** Default request timeout, ms (default 5000). */
  requestTimeout?: number;
  /** Messages a subscription buffers for a slow reader before dropping the oldest (default 65536). */
  maxPending?: number;
  closeGrace?: number;
  drainTimeout?: number;
  name?: string;
  random?: () => number;
}

export interface ResolvedNatsOptions {
  target: string;
  name: string;
  resolver: Resolver;
  learnServers: boolean;
  members: number;
  health: HealthOptions;
  backoff: BackoffOptions;
  criticalMin: number;
  balancer: Balancer;
  auth: NatsAuth;
  tls: NatsTls | undefined;
  acquireTimeout: number;
  maxQueue: number;
  connectTimeout: number;
  requestTimeout: number;
  maxPending: number;
  closeGrace: number;
  drainTimeout: number;
  random: (() => number) | undefined;
}

const KNOWN = new Set([
  "target", "discovery", "dns", "ignoreDiscoveredServers", "members", "health", "backoff", "degraded", "balancer", "auth", "tls",
  "acquireTimeout", "maxQueue", "connectTimeout", "requestTimeout", "maxPending", "closeGrace", "drainTimeout", "name", "random",
]);

export function resolveNatsOptions(o: NatsChannelOptions): ResolvedNatsOptions {
  if (o === null || typeof o !== "object") throw new ConfigError("options", "expected an object");
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new ConfigError(k, "unknown option");
  const target = o.target;
  if (typeof target !== "string" || target === "") throw new ConfigError("target", "required (e.g. nats://127.0.0.1:4222)");
  const m = /^(nats|tls):\/\/(.+)$/i.exec(target);
  if (!m) throw new TargetError(target, 'expected nats://host:port[,host:port…] (or "tls://")');
  const members = requireInteger("members", o.members ?? 3, 1);
  const criticalMin = requireInteger("degraded.criticalMin", o.degraded?.criticalMin ?? 1, 0);
  if (criticalMin > members) throw new ConfigError("degraded.criticalMin", `must be ≤ members (${members}), got ${criticalMin}`);
  const balancer = o.balancer ?? "in-flight";
  if (balancer !== "in-flight" && balancer !== "peak-ewma") throw new ConfigError("balancer", `expected "in-flight" or "peak-ewma", got ${JSON.stringify(balancer)}`);
  const auth = o.auth ?? {};
  if (auth.user !== undefined && auth.token !== undefined) throw new ConfigError("auth", "give user/pass or a token, not both");
  let resolver: Resolver;
  if (o.discovery === undefined) resolver = targetResolver(target, m[2] as string);
  else if (typeof o.discovery === "string") resolver = resolverFor(o.discovery, 4222, o.dns);
  else if (typeof o.discovery === "object" && typeof o.discovery.start === "function") resolver = o.discovery;
  else throw new ConfigError("discovery", "expected a discovery string or a Resolver");
  const name = o.name ?? target;
  if (typeof name !== "string" || name.trim() === "") throw new ConfigError("name", "expected a non-empty string");
  return {
    target,
    name,
    resolver,
    learnServers: !(o.ignoreDiscoveredServers ?? false),
    members,
    health: resolveHealth(o.health),
    backoff: resolveBackoff(o.backoff, SLOT_BACKOFF),
    criticalMin,
    balancer,
    auth,
    tls: o.tls,
    acquireTimeout: requireDuration("acquireTimeout", o.acquireTimeout ?? 5000),
    maxQueue: requireInteger("maxQueue", o.maxQueue ?? 1024, 0),
    connectTimeout: requireDuration("connectTimeout", o.connectTimeout ?? 5000),
    requestTimeout: requireDuration("requestTimeout", o.requestTimeout ?? 5000),
    maxPending: requireInteger("maxPending", o.maxPending ?? 65_536, 1),
    closeGrace: requireDuration("closeGrace", o.closeGrace ?? 5000),
    drainTimeout: requireDuration("drainTimeout", o.drainTimeout ?? 30_000),
    random: o.random,
  };
}

/** `nats://a:4222,b:4222`: IP literals become a static set; a single host name is resolved. */
function targetResolver(target: string, list: string): Resolver {
  const items = list.replace(/\/$/, "").split(",").map((s) => s.trim()).filter(Boolean);
  const hosts = items.map((item) => parseHostPort(item, target, 4222));
  if (hosts.every((h) => isIP(h.host))) return new StaticResolver(target, hosts.map((h) => ipAddress(h.host, h.port, target)));
  if (hosts.length === 1) return hostResolver(target, (hosts[0] as { host: string }).host, (hosts[0] as { port: number }).port);
  throw new TargetError(target, "mix host names only one at a time: list IP literals, or one name (or use discovery: dns:///name:port)");
}

/** Parses INFO connect_urls entries ("10.0.0.5:4222", "[::1]:4222"); names are skipped. */
export function advertisedAddresses(urls: readonly string[], target: string): Address[] {
  const out: Address[] = [];
  for (const u of urls) {
    try {
      const hp = parseHostPort(u.replace(/^nats:\/\//, ""), target, 4222);
      if (isIP(hp.host)) out.push(ipAddress(hp.host, hp.port, target));
    } catch {
      // A server advertising something unparsable is not worth failing over.
    }
  }
  return out;
}

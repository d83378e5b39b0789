import { isIP } from "node:net";
import { ipAddress, parseHostPort, type Address } from "../../core/address.js";
import { requireDuration, requireInteger } from "../../core/duration.js";
import { ConfigError, TargetError } from "../../core/errors.js";
import type { Resolver } from "../../resolve/resolver.js";
import { StaticResolver } from "../../resolve/static-resolver.js";
import { hostResolver, resolverFor } from "../../resolve/target.js";
import { resolveCommon, type CommonChannelOptions, type ResolvedCommon } from "../common-options.js";
import type { NatsAuth, NatsTls } from "./connector.js";

export interface NatsChannelOptions extends CommonChannelOptions {
  /** The cluster: `nats://10.0.0.5:4222,10.0.0.6:4222` (IPs or one host name). */
  target: string;
  /**
   * Do not add the servers the cluster advertises (INFO connect_urls). Set it
   * behind a TCP load balancer, where advertised addresses may be unreachable.
   */
  ignoreDiscoveredServers?: boolean;
  auth?: NatsAuth;
  tls?: NatsTls;
  /** Default request timeout, ms (default 5000). */
  requestTimeout?: number;
  /** Messages a subscription buffers for a slow reader before dropping the oldest (default 65536). */
  maxPending?: number;
}

export interface ResolvedNatsOptions extends ResolvedCommon {
  target: string;
  resolver: Resolver;
  learnServers: boolean;
  auth: NatsAuth;
  tls: NatsTls | undefined;
  requestTimeout: number;
  maxPending: number;
}

export function resolveNatsOptions(o: NatsChannelOptions): ResolvedNatsOptions {
  if (o === null || typeof o !== "object") throw new ConfigError("options", "expected an object");
  const target = o.target;
  if (typeof target !== "string" || target === "") throw new ConfigError("target", "required (e.g. nats://127.0.0.1:4222)");
  const m = /^(nats|tls):\/\/(.+)$/i.exec(target);
  if (!m) throw new TargetError(target, 'expected nats://host:port[,host:port…] (or "tls://")');
  const common = resolveCommon(o, target, ["target", "ignoreDiscoveredServers", "auth", "tls", "requestTimeout", "maxPending"]);
  const auth = o.auth ?? {};
  if (auth.user !== undefined && auth.token !== undefined) throw new ConfigError("auth", "give user/pass or a token, not both");
  let resolver: Resolver;
  if (o.discovery === undefined) resolver = targetResolver(target, m[2] as string);
  else if (typeof o.discovery === "string") resolver = resolverFor(o.discovery, 4222, o.dns);
  else if (typeof o.discovery === "object" && typeof o.discovery.start === "function") resolver = o.discovery;
  else throw new ConfigError("discovery", "expected a discovery string or a Resolver");
  return {
    ...common,
    target,
    resolver,
    learnServers: !(o.ignoreDiscoveredServers ?? false),
    auth,
    tls: o.tls,
    requestTimeout: requireDuration("requestTimeout", o.requestTimeout ?? 5000),
    maxPending: requireInteger("maxPending", o.maxPending ?? 65_536, 1),
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

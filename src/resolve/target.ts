import { isIP } from "node:net";
import { systemClock, type Clock } from "../core/clock.js";
import { ipAddress, parseHostPort, type Address } from "../core/address.js";
import { TargetError } from "../core/errors.js";
import { hasUserInfo, redactTarget } from "../core/redact.js";
import type { Resolver } from "./resolver.js";
import { StaticResolver } from "./static-resolver.js";
import { SystemResolver } from "./system-resolver.js";
import { DnsResolver, type DnsResolverOptions } from "./dns-resolver.js";

/**
 * Parses a discovery string into a Resolver:
 * - `static:///127.0.0.2:8443,127.0.0.3:8443` (IP literals, [v6]:port);
 * - `127.0.0.2:8443` or `[::1]:8443` (one IP literal);
 * - `host:port` (resolved once through the OS);
 * - `dns:///name:port` and `dns+srv:///_service._proto.name` (the TTL-following
 *   DNS resolver; `dns://server:port/name:port` names the nameserver).
 * Its timers (re-resolution, query timeouts, retries) run on `clock`, the channel's.
 */
export function resolverFor(discovery: string, defaultPort?: number, dns?: DnsResolverOptions, clock: Clock = systemClock): Resolver {
  // No discovery scheme takes credentials, and every message below quotes the string: refuse them first, redacted.
  if (hasUserInfo(discovery)) throw new TargetError(redactTarget(discovery), "credentials have no place in a discovery string");
  const schemeMatch = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(discovery);
  if (schemeMatch) {
    const scheme = (schemeMatch[1] as string).toLowerCase();
    const rest = schemeMatch[2] as string;
    if (scheme === "static") return new StaticResolver(discovery, parseStaticList(discovery, rest, defaultPort));
    if (scheme === "dns" || scheme === "dns+srv") {
      // IP literals never touch the network, whatever the scheme.
      const literal = scheme === "dns" ? ipLiteralTarget(discovery, rest, defaultPort) : undefined;
      return literal ?? new DnsResolver(discovery, dns, defaultPort, { clock });
    }
    throw new TargetError(discovery, `unknown discovery scheme "${scheme}:" (expected static://, dns://, dns+srv:// or host:port)`);
  }
  const { host, port } = parseHostPort(discovery, discovery, defaultPort);
  if (isIP(host)) return new StaticResolver(discovery, [ipAddress(host, port, discovery)]);
  return hostResolver(discovery, host, port, clock);
}

/** The resolver for a host name taken from a URL: static for IP literals, OS lookup otherwise. */
export function hostResolver(target: string, host: string, port: number, clock: Clock = systemClock): Resolver {
  if (isIP(host)) return new StaticResolver(target, [ipAddress(host, port, target)]);
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(host)) {
    throw new TargetError(target, `${JSON.stringify(host)} is not a valid host name`);
  }
  return new SystemResolver(host, port, {}, clock);
}

function parseStaticList(target: string, rest: string, defaultPort?: number): Address[] {
  // static:///a,b — the authority part is empty; static://a,b is accepted too.
  const list = rest.startsWith("/") ? rest.slice(1) : rest;
  if (list.trim() === "") throw new TargetError(target, "no addresses listed");
  const seen = new Set<string>();
  const out: Address[] = [];
  for (const item of list.split(",")) {
    const { host, port } = parseHostPort(item, target, defaultPort);
    if (!isIP(host)) throw new TargetError(target, `${JSON.stringify(host)} is not an IP address (static:// takes IP literals)`);
    const a = ipAddress(host, port, target);
    const key = `${a.host}|${a.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(a);
  }
  return out;
}

function ipLiteralTarget(discovery: string, rest: string, defaultPort?: number): Resolver | undefined {
  const path = rest.slice(rest.indexOf("/") + 1);
  const { host, port } = parseHostPort(path, discovery, defaultPort);
  return isIP(host) ? new StaticResolver(discovery, [ipAddress(host, port, discovery)]) : undefined;
}

import { isIP } from "node:net";
import { systemClock, type Clock } from "../../core/clock.js";
import { addressKey, ipAddress, parseHostPort, type Address } from "../../core/address.js";
import type { AddressSet, Resolver, ResolverListener } from "../../resolve/resolver.js";
import { StaticResolver } from "../../resolve/static-resolver.js";
import { hostResolver } from "../../resolve/target.js";

/**
 * A server list as a Resolver: IP literals as they are, each host name
 * resolved on its own, one union set out. It remembers which name each
 * resolved IP came from, because the member that dials that IP must speak
 * to the name (TLS SNI and certificate checks), not to the IP.
 */
export class NamedServersResolver implements Resolver {
  readonly target: string;
  readonly #parts: Array<{ resolver: Resolver; name: string | undefined; set: AddressSet | undefined }>;
  readonly #names = new Map<string, string>();

  constructor(target: string, servers: readonly string[], clock: Clock = systemClock) {
    this.target = target;
    const ips: Address[] = [];
    const named: Array<{ resolver: Resolver; name: string; set: undefined }> = [];
    for (const s of servers) {
      const { host, port } = parseHostPort(s, target, 4222);
      if (isIP(host)) ips.push(ipAddress(host, port, target));
      else named.push({ resolver: hostResolver(target, host, port, clock), name: host.toLowerCase(), set: undefined });
    }
    this.#parts = [...(ips.length > 0 ? [{ resolver: new StaticResolver(target, ips), name: undefined, set: undefined }] : []), ...named];
  }

  /** The host name an address was resolved from; undefined for listed IPs and addresses learned elsewhere. */
  nameOf(address: Address): string | undefined {
    return this.#names.get(addressKey(address));
  }

  start(listener: ResolverListener): void {
    for (const part of this.#parts) {
      part.resolver.start({
        onAddresses: (set) => {
          part.set = set;
          if (part.name !== undefined) for (const a of set.addresses) this.#names.set(addressKey(a), part.name);
          this.#emit(listener);
        },
        onError: (e) => listener.onError(e),
      });
    }
  }

  refresh(): void {
    for (const p of this.#parts) p.resolver.refresh?.();
  }

  close(): void {
    for (const p of this.#parts) p.resolver.close();
  }

  /** One set once any part has answered (a name that does not resolve must not hold the others back). */
  #emit(listener: ResolverListener): void {
    const seen = new Set<string>();
    const addresses: Address[] = [];
    let ttl = Number.POSITIVE_INFINITY;
    for (const p of this.#parts) {
      if (!p.set) continue;
      ttl = Math.min(ttl, p.set.ttl);
      for (const a of p.set.addresses) {
        const k = addressKey(a);
        if (!seen.has(k)) {
          seen.add(k);
          addresses.push(a);
        }
      }
    }
    listener.onAddresses({ addresses, ttl });
  }
}

import { lookup } from "node:dns/promises";
import { systemClock, type Clock, type Timer } from "../core/clock.js";
import { ipAddress, type Address } from "../core/address.js";
import { ResolveError, asError } from "../core/errors.js";
import type { Resolver, ResolverListener } from "./resolver.js";

export interface SystemResolverOptions {
  /** 4, 6 or 0 (both). */
  family?: 0 | 4 | 6;
  /** Delay before retrying a failed lookup; doubles up to retryMax. */
  retryInitial?: number;
  retryMax?: number;
}

/**
 * Resolves a host name once through the OS (getaddrinfo: /etc/hosts, nsswitch),
 * retrying with backoff until it succeeds. getaddrinfo reports no TTLs, so the
 * set is kept until the channel closes; `dns:///` targets follow TTLs instead.
 */
export class SystemResolver implements Resolver {
  readonly target: string;
  #host: string;
  #port: number;
  #options: Required<SystemResolverOptions>;
  #timer: Timer | undefined;
  #closed = false;
  readonly #clock: Clock;

  constructor(host: string, port: number, options: SystemResolverOptions = {}, clock: Clock = systemClock) {
    this.#clock = clock;
    this.#host = host;
    this.#port = port;
    this.target = `${host}:${port}`;
    this.#options = { family: 0, retryInitial: 250, retryMax: 10_000, ...options };
  }

  start(listener: ResolverListener): void {
    void this.#attempt(listener, this.#options.retryInitial);
  }

  async #attempt(listener: ResolverListener, nextDelay: number): Promise<void> {
    if (this.#closed) return;
    try {
      const found = await lookup(this.#host, { all: true, family: this.#options.family });
      if (this.#closed) return;
      const seen = new Set<string>();
      const addresses: Address[] = [];
      for (const f of found) {
        if (seen.has(f.address)) continue;
        seen.add(f.address);
        addresses.push(ipAddress(f.address, this.#port, this.target));
      }
      if (addresses.length === 0) throw new Error("no addresses");
      listener.onAddresses({ addresses, ttl: Number.POSITIVE_INFINITY });
    } catch (err) {
      if (this.#closed) return;
      listener.onError(new ResolveError(this.target, asError(err).message, { cause: err }));
      this.#timer = this.#clock.setTimeout(() => void this.#attempt(listener, Math.min(nextDelay * 2, this.#options.retryMax)), nextDelay);
    }
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}

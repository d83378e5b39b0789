import type { Address } from "../core/address.js";
import type { AddressSet, Resolver, ResolverListener } from "./resolver.js";

/** A fixed list of addresses that never changes (static:///…, IP literals). */
export class StaticResolver implements Resolver {
  readonly target: string;
  readonly addresses: readonly Address[];
  #timer: NodeJS.Immediate | undefined;

  constructor(target: string, addresses: readonly Address[]) {
    this.target = target;
    this.addresses = addresses;
  }

  start(listener: ResolverListener): void {
    const set: AddressSet = { addresses: this.addresses, ttl: Number.POSITIVE_INFINITY };
    // Asynchronous like every other resolver, so callers see one ordering. A turn of the event loop,
    // not a wait: no time passes, so it is not the clock's (a fake clock's test runs it by flushing).
    this.#timer = setImmediate(() => listener.onAddresses(set));
  }

  close(): void {
    if (this.#timer) clearImmediate(this.#timer);
  }
}

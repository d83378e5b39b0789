import { addressKey, type Address } from "../core/address.js";
import type { AddressSet, Resolver, ResolverListener } from "./resolver.js";

/**
 * A resolver's addresses plus addresses learned at run time (e.g. the servers
 * a NATS cluster advertises). Learned addresses are kept until close, and
 * every change is passed on as one union set with the base set's TTL.
 */
export class UnionResolver implements Resolver {
  readonly target: string;
  #base: Resolver;
  #baseSet: AddressSet | undefined;
  #learned = new Map<string, Address>();
  #listener: ResolverListener | undefined;

  constructor(base: Resolver) {
    this.#base = base;
    this.target = base.target;
  }

  start(listener: ResolverListener): void {
    this.#listener = listener;
    this.#base.start({
      onAddresses: (set) => {
        this.#baseSet = set;
        this.#emit();
      },
      onError: (e) => listener.onError(e),
    });
  }

  /** Adds addresses; emits a new union only when something is new. */
  learn(addresses: readonly Address[]): void {
    let added = false;
    for (const a of addresses) {
      const k = addressKey(a);
      if (!this.#learned.has(k)) {
        this.#learned.set(k, a);
        added = true;
      }
    }
    if (added && this.#baseSet) this.#emit();
  }

  refresh(): void {
    this.#base.refresh?.();
  }

  close(): void {
    this.#base.close();
  }

  #emit(): void {
    const base = this.#baseSet;
    if (!base || !this.#listener) return;
    const seen = new Set(base.addresses.map(addressKey));
    const extra = [...this.#learned.entries()].filter(([k]) => !seen.has(k)).map(([, a]) => a);
    this.#listener.onAddresses({ ...base, addresses: [...base.addresses, ...extra] });
  }
}

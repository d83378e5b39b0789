import type { Address } from "../core/address.js";
import type { FamilyAnswer } from "../core/events.js";

/** One answer: the addresses a target has now, and how long they may be trusted. */
export interface AddressSet {
  readonly addresses: readonly Address[];
  /** ms until the set should be refreshed; Infinity for static sets. */
  readonly ttl: number;
  /**
   * From the DNS resolver: each family that gave no fresh addresses and what
   * it answered (NODATA, NXDOMAIN, or a failure that kept its last good
   * addresses). Says why, when the set is empty.
   */
  readonly answers?: readonly FamilyAnswer[];
}

export interface ResolverListener {
  /** A new (or first) address set. Called only when resolution succeeded. */
  onAddresses(set: AddressSet): void;
  /** Resolution failed; the last good set stays in force. */
  onError(error: Error): void;
}

/**
 * Turns a target into address sets over time. A resolver pushes: it calls
 * onAddresses whenever it has a set (first, and again when a refresh
 * changes or confirms it) and onError on failures, keeping its last good set.
 * The DNS resolver (TTL-aware) implements the same interface.
 */
export interface Resolver {
  /** What is being resolved, for messages: "static:///…", "dns:///…". */
  readonly target: string;
  start(listener: ResolverListener): void;
  /** A hint that the current addresses are failing: re-resolve soon if the source allows it. */
  refresh?(): void;
  close(): void;
}

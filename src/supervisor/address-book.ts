import { addressKey, type Address } from "../core/address.js";
import { baseDelay, jitterExtra, type BackoffOptions } from "./backoff.js";
import { subsetOrder } from "./subset.js";

/** How one address stands when a slot needs somewhere to dial. */
export interface AddressLoad {
  readonly address: Address;
  /** Members on it that count toward spread (dialing, connecting, ready, unhealthy). */
  readonly members: number;
  /** A member on it has not yet proven itself (dial or first PING in progress). */
  readonly proving: boolean;
  /** Until when (ms, same clock as `now`) it is backing off after a failure; 0 if not. */
  readonly coolingUntil: number;
  /** Members on it that have proven themselves (default 0). */
  readonly proven?: number | undefined;
  /** How many of its members are proving (default: 1 when `proving`). */
  readonly provingCount?: number | undefined;
}

export type SpreadDecision = { kind: "dial"; address: Address } | { kind: "wait"; until: number | undefined };

/**
 * DESIGN.md's Spread rule over one tier of addresses, which come in rank
 * order (so ties spread many clients over many backends):
 * - the address with the fewest members wins, among those not backing off;
 * - an address whose member is still proving itself takes no second member
 *   (stacking waits until the first has proven itself or backed off), and no
 *   address is stacked deeper than one that is still proving (its first
 *   member, or a full batch);
 * - an address that has proven itself takes further members in growing
 *   batches: as many proving at once as it has proven members (1, 2, 4, …),
 *   so 1,000 members over 10 addresses warm up in a few round trips rather
 *   than one round trip per member;
 * - when every eligible address is backing off, wait for the earliest to end;
 * - with nothing eligible at all, wait for a change (`until` undefined).
 */
export function chooseAddress(loads: readonly AddressLoad[], now: number): SpreadDecision {
  let best: AddressLoad | undefined;
  let earliestCooling: number | undefined;
  // The least-loaded address whose member is still proving: stacking deeper elsewhere must wait for it.
  let provingMin = Number.POSITIVE_INFINITY;
  for (const l of loads) {
    if (l.members > 0 && l.proving) {
      const proven = l.proven ?? 0;
      // Unproven: nothing stacks there, nor deeper elsewhere, until it answers.
      if (proven === 0) {
        if (l.coolingUntil <= now) provingMin = Math.min(provingMin, l.members);
        continue;
      }
      // Proven: its batch is full while as many are proving as have proven, and, like an
      // unproven one, it then holds back deeper stacking elsewhere so spread stays even.
      if ((l.provingCount ?? 1) >= proven) {
        if (l.coolingUntil <= now) provingMin = Math.min(provingMin, l.members);
        continue;
      }
    }
    if (l.coolingUntil > now) {
      if (earliestCooling === undefined || l.coolingUntil < earliestCooling) earliestCooling = l.coolingUntil;
      continue;
    }
    if (!best || l.members < best.members) best = l;
  }
  if (best && best.members <= provingMin) return { kind: "dial", address: best.address };
  if (best) return { kind: "wait", until: undefined };
  return { kind: "wait", until: earliestCooling };
}

/** One address the resolver gave, and how it has fared. */
export interface AddressEntry {
  readonly key: string;
  readonly address: Address;
  /** Position in this process's order (lower first): the per-process shuffle, or the subsetting order. */
  rank: number;
  /** Failures since the address last held a member for a whole flap window. */
  failures: number;
  /** Backing off until then (regulator clock, ms); 0 when not. */
  coolingUntil: number;
  lastError: Error | undefined;
  /** When an answer last named it. */
  lastSeen: number;
}

/** What the regulator tells the book about one address's members right now. */
export interface AddressUse {
  /** Active and pending members (and dials) on it. */
  members: number;
  /** One of them has not proven itself yet. */
  proving: boolean;
  /** One of them is ready: the address answers now, whatever its failure count says. */
  live: boolean;
  /** How many are proving (default: 1 when `proving`). */
  provingCount?: number;
  /** How many have proven themselves (default 0). */
  proven?: number;
}

export interface AddressBookOptions {
  backoff: BackoffOptions;
  /**
   * How long an address stays in the book after answers stop naming it, as
   * long as answers keep overlapping what the book holds: DNS that rotates a
   * subset of a stable set must not move members.
   */
  minHold: number;
  random: () => number;
  /**
   * The delay after the n-th failure, from the caller (NATS's reconnect-delay
   * callback), instead of the backoff formula; no jitter is added to it.
   */
  backoffDelay?: ((failures: number) => number) | undefined;
  /** Rank new addresses in the order the resolver gave them, not shuffled (NATS's no-randomize). */
  retainOrder?: boolean | undefined;
  /**
   * Deterministic subsetting (see subset.ts): rank every address by this
   * client's place in the fleet instead of a per-process shuffle. `size` is
   * the subset each client takes (its member count). SRV weights do not
   * apply: evenness across the fleet is the point.
   */
  subset?: { clientId: number; size: number } | undefined;
}

/**
 * Every address the resolver gave: rank, one backoff clock each (p-retry's
 * delay formula: initial × multiplier^(failures-1), capped, plus jitter),
 * failure counts, and the choice of where a slot dials next. Pure: time is
 * always passed in.
 */
export class AddressBook {
  #o: AddressBookOptions;
  #entries = new Map<string, AddressEntry>();
  #nextRank = 0;
  /** entries() sorted by rank; undefined after ranks change. */
  #sorted: AddressEntry[] | undefined;

  constructor(options: AddressBookOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  get(key: string): AddressEntry | undefined {
    return this.#entries.get(key);
  }

  /** The entries in rank order. */
  entries(): AddressEntry[] {
    // choose() runs once per slot per event: sorting each time made warm-up of many members quadratic.
    this.#sorted ??= [...this.#entries.values()].sort((a, b) => a.rank - b.rank);
    return [...this.#sorted];
  }

  /**
   * Takes a resolver answer; returns the keys that left the book. An answer
   * that shares an address with the book is a rotation: addresses it omits
   * are held until minHold after they were last named. An answer that shares
   * none (a migration, or an empty NXDOMAIN answer) replaces the book at once.
   */
  update(addresses: readonly Address[], now: number): string[] {
    const named = new Map(addresses.map((a) => [addressKey(a), a]));
    const overlaps = [...named.keys()].some((k) => this.#entries.has(k));
    const removed: string[] = [];
    for (const [key, e] of this.#entries) {
      if (named.has(key)) e.lastSeen = now;
      else if (!overlaps || now - e.lastSeen >= this.#o.minHold) removed.push(key);
    }
    for (const key of removed) this.#entries.delete(key);
    const fresh = [...named].filter(([k]) => !this.#entries.has(k));
    for (const [key, address] of this.#o.retainOrder ? fresh : weightedShuffle(fresh, this.#o.random)) {
      this.#entries.set(key, { key, address, rank: this.#nextRank++, failures: 0, coolingUntil: 0, lastError: undefined, lastSeen: now });
    }
    if (this.#o.subset && (removed.length > 0 || fresh.length > 0)) this.#rankBySubset(this.#o.subset);
    this.#sorted = undefined;
    return removed;
  }

  /**
   * Subsetting ranks depend on the whole set (its size decides the rounds),
   * so every change re-ranks every address. Members already connected stay
   * where they are (the regulator only re-dials lost slots), so a change
   * moves only the members it must.
   */
  #rankBySubset(subset: { clientId: number; size: number }): void {
    const order = subsetOrder([...this.#entries.keys()], subset.clientId, subset.size);
    order.forEach((key, rank) => {
      const e = this.#entries.get(key);
      if (e) e.rank = rank;
    });
  }

  /** One more failure: the address backs off on its own clock. */
  failed(key: string, error: Error, now: number): void {
    const e = this.#entries.get(key);
    if (!e) return;
    e.failures++;
    e.lastError = error;
    if (this.#o.backoffDelay) {
      e.coolingUntil = now + this.#o.backoffDelay(e.failures);
      return;
    }
    const base = baseDelay(this.#o.backoff, e.failures);
    e.coolingUntil = now + base + jitterExtra(this.#o.backoff, base, this.#o.random);
  }

  /** The address held a member through a flap window: its backoff starts over. */
  stable(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    e.failures = 0;
    e.coolingUntil = 0;
  }

  /** True when the book is not empty and no address in it is known to work. */
  allFailing(use: ReadonlyMap<string, AddressUse>): boolean {
    if (this.#entries.size === 0) return false;
    for (const e of this.#entries.values()) if (e.failures === 0 || use.get(e.key)?.live) return false;
    return true;
  }

  /**
   * Where a slot should dial next. Addresses that are not failing (never
   * failed, or holding a ready member) come first, by the Spread rule; so a
   * slot stacks on a live address at once instead of waiting for a dead one.
   * Only when none is left do failing addresses get dialed, each when its
   * own backoff ends.
   */
  choose(use: ReadonlyMap<string, AddressUse>, now: number): SpreadDecision {
    const good: AddressLoad[] = [];
    const failing: AddressLoad[] = [];
    for (const e of this.entries()) {
      const u = use.get(e.key);
      // An address with a ready member answers now: its backoff (from some other connection's loss) does not apply.
      const load: AddressLoad = {
        address: e.address,
        members: u?.members ?? 0,
        proving: u?.proving ?? false,
        coolingUntil: u?.live ? 0 : e.coolingUntil,
        proven: u?.proven,
        provingCount: u?.provingCount,
      };
      (e.failures === 0 || u?.live ? good : failing).push(load);
    }
    if (good.length > 0) {
      const d = chooseAddress(good, now);
      // A good tier whose addresses are all backing off falls through to the failing ones.
      if (d.kind === "dial" || d.until === undefined) return d;
      const f = chooseAddress(failing, now);
      if (f.kind === "dial") return f;
      return { kind: "wait", until: f.until === undefined ? d.until : Math.min(d.until, f.until) };
    }
    return chooseAddress(failing, now);
  }
}

/**
 * A random order in which heavier (SRV weight) addresses tend to come first:
 * Efraimidis–Spirakis, key = u^(1/weight). With equal weights it is a plain
 * uniform shuffle.
 */
function weightedShuffle<T extends [string, Address]>(items: T[], random: () => number): T[] {
  const keyed = items.map((item) => {
    // SRV weight 0 means "only when nothing else": tiny, not zero, so it still gets a rank.
    const w = item[1].weight === undefined ? 1 : Math.max(item[1].weight, 0.001);
    return { item, k: Math.log(Math.max(random(), Number.MIN_VALUE)) / w };
  });
  keyed.sort((a, b) => b.k - a.k);
  return keyed.map((x) => x.item);
}

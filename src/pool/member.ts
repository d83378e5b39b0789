import { InFlight, type Load } from "./load.js";
import { OutlierState } from "./outlier.js";
import { Progress } from "./overdue.js";

/**
 * What the pool knows of one backend address, shared by the members on it
 * (pool-owned): members stacked on one address freeze together, and an idle
 * one there looks like the cheapest member of all.
 */
export class PeerMark {
  /** Requests started on the address's members and neither answered nor ended, all members together. */
  pending = 0;
  /**
   * When the address last answered one (or went from nothing pending to
   * one), pool clock ms: Progress's `since` for the address as a whole
   * (overdue.ts), so that it can be overtaken like a member.
   */
  since = 0;
  /** Members admitted on it and not yet removed. */
  members = 0;
}

/**
 * What the pool keeps of one member: its load, and whether it is in the
 * usable index. Never its lifecycle state (connecting, ready, unhealthy,
 * draining): that is the regulator's record alone (supervisor/regulator.ts),
 * which says through `setPickable` whether the member may take picks.
 */
export class PoolMember<C = unknown> {
  readonly id: number;
  readonly key: string;
  readonly connection: C;
  /** Its address's mark, shared with the other members on that address. */
  readonly peer: PeerMark;
  /**
   * Pool-owned: the pool gives each member the load object of its balancer
   * when the member is added (before that, nothing can be in flight).
   */
  load: Load = new InFlight();
  /** The regulator's word: the member may take picks (ready, or unhealthy while degraded). */
  pickable = false;
  /** The peer's concurrent stream limit; Infinity when it set none. */
  maxConcurrent = Number.POSITIVE_INFINITY;
  /** Smoothed PING round trip, ms. */
  rtt: number | undefined;
  /** When the peer last proved alive (a PONG, a completed response), pool clock ms. */
  lastHeardAt = 0;
  /** When in-flight last went from 0 to 1, pool clock ms. */
  busySince = 0;
  /** Unanswered requests and when the member last answered one (pool-owned; see overdue.ts). */
  readonly progress = new Progress();
  /** Outcome counts and ejection (pool-owned; see outlier.ts). */
  readonly outlier = new OutlierState();
  /** Reported as suspect and not yet heard from since. */
  suspected = false;
  /** A PING went unanswered and the peer has not been heard from since: avoided like a suspect member. */
  pingLost = false;
  /** When the latest PING went out, pool clock ms (0: none yet); outstanding while after lastHeardAt. */
  pingSentAt = 0;
  /**
   * Pool clock ms from which the member's PING facts make picks avoid it:
   * when its outstanding PING becomes overdue, −Infinity after a lost one,
   * +Infinity with none outstanding. Kept by the pool on PING events, so a
   * pick of an idle member compares this one number instead of the rules.
   */
  watchFrom = Number.POSITIVE_INFINITY;
  /** Position in the pool's usable array, -1 when not usable (pool-owned). */
  usableIndex = -1;

  /** Requests in flight on this member (kept as a field-like getter: the supervisor and transports read it). */
  get inFlight(): number {
    return this.load.inFlight;
  }

  /** Peak-EWMA latency estimate, ms, decayed to now; undefined with the in-flight balancer or before any response. */
  get latency(): number | undefined {
    return this.load.estimate?.();
  }

  constructor(id: number, key: string, connection: C, peer: PeerMark) {
    this.id = id;
    this.key = key;
    this.connection = connection;
    this.peer = peer;
  }
}

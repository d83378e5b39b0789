import type { Address } from "../core/address.js";
import { Listeners } from "../core/listeners.js";
import { PoolMember, type MemberState } from "./member.js";
import { InFlight, PeakEwma, type Load } from "./load.js";
import { AVOID_FACTOR, overdueFactor, pingOverdue } from "./overdue.js";
import { ejectionTime, mayEject, noteOutcome, type AttemptOutcome, type EjectionReason, type OutlierOptions } from "./outlier.js";
import { pickP2C } from "./picker.js";
import { UsableSet } from "./usable-set.js";

export type Balancer = "in-flight" | "peak-ewma";

export interface PoolOptions {
  balancer: Balancer;
  random?: () => number;
  /** Peak-EWMA decay window, ms (tower's decay_ns; default 10 s). */
  decay?: number;
  /**
   * Passive suspicion (health/passive.ts, handed in by the supervisor): a
   * suspect member is avoided by picks while another is usable. None: off.
   */
  suspect?: SuspectRule;
  /** Outlier ejection from request outcomes; undefined: off. */
  outlier?: OutlierOptions | undefined;
  now?: () => number;
}

/** Passive suspicion as the pool sees it (implemented by health/passive.ts's PassiveSuspicion). */
export interface SuspectRule {
  readonly enabled: boolean;
  isSuspect(member: { readonly inFlight: number; readonly lastHeardAt: number; readonly busySince: number }, now: number): boolean;
}

/**
 * A member as every other part sees it: read-only. Only the pool changes a
 * member's record; the supervisor asks it to (setState, record*, release…).
 */
export type PoolMemberRef<C = unknown> = Readonly<PoolMember<C>>;

/**
 * The pool's own record behind a reference it handed out (admit() made it):
 * the one place a read-only view becomes writable again.
 */
function own<C>(ref: PoolMemberRef<C>): PoolMember<C> {
  return ref as PoolMember<C>;
}

export type PoolEvent =
  | { type: "state"; member: PoolMember; from: MemberState; to: MemberState; reason: string }
  | { type: "usable"; count: number }
  /** A member looks stuck (busy, silent for suspectAfter); the owner should probe it now. */
  | { type: "suspect"; member: PoolMember }
  /** Request outcomes ejected a member for `durationMs`; the owner calls restore() when that is up. */
  | { type: "ejected"; member: PoolMember; reason: EjectionReason; durationMs: number }
  | { type: "restored"; member: PoolMember };

/**
 * The index of usable members, their load and the P2C pick. Knows nothing
 * of sockets or timers, and decides nothing about members: their states and
 * degraded mode are the regulator's (supervisor/regulator.ts), handed down
 * by the supervisor as setState() and setDegraded().
 *
 * Usable = ready (or, while degraded, unhealthy: connected but failing
 * PINGs), not ejected, and below its stream limit. The usable members are
 * kept in an indexed set so a pick is O(1).
 */
export class Pool<C = unknown> {
  readonly events = new Listeners<PoolEvent>();
  #members = new Set<PoolMember<C>>();
  #usable = new UsableSet<PoolMember<C>>();
  #ready = 0;
  #unhealthy = 0;
  #degraded = false;
  #newLoad: (m: PoolMember<C>) => Load;
  #random: () => number;
  #decay: number;
  #now: () => number;
  #suspect: SuspectRule | undefined;
  #outlier: OutlierOptions | undefined;
  #ejected = 0;
  /** Members the pick in progress must not return (a hedge's); set only during pick(). */
  #exclude: readonly object[] | undefined;
  /**
   * The clock reading of the pick in progress (NaN until needed): a pick
   * reads the clock at most once, or never when its caller passed the
   * reading it already had. A clock read costs ~50 ns on a VM, as much as
   * the rest of a pick.
   */
  #pickAt = Number.NaN;
  /** The pick in progress drew a suspect, overdue or excluded member (set by #pickCost). */
  #drewAvoided = false;

  constructor(options: PoolOptions) {
    this.#random = options.random ?? Math.random;
    this.#decay = options.decay ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
    // Loads read the pool's clock, so a fake clock in tests reaches the decay too.
    this.#newLoad = options.balancer === "peak-ewma" ? (m) => new PeakEwma({ now: this.#now, decay: this.#decay, rtt: () => m.rtt }) : () => new InFlight();
    this.#suspect = options.suspect?.enabled ? options.suspect : undefined;
    this.#outlier = options.outlier;
  }

  get degraded(): boolean {
    return this.#degraded;
  }

  get readyCount(): number {
    return this.#ready;
  }

  /**
   * Members that could take picks were they not at their stream limit: what
   * "Connected" means. Load alone must not flap a channel's status.
   */
  get servingCount(): number {
    return this.#ready + (this.#degraded ? this.#unhealthy : 0);
  }

  get usableCount(): number {
    return this.#usable.size;
  }

  get size(): number {
    return this.#members.size;
  }

  members(): IterableIterator<PoolMemberRef<C>> {
    return this.#members.values();
  }

  /** A new member for `connection` (state connecting), made and kept by the pool. */
  admit(id: number, address: Address, key: string, connection: C): PoolMemberRef<C> {
    const member = new PoolMember<C>(id, address, key, connection);
    member.load = this.#newLoad(member);
    this.#members.add(member);
    return member;
  }

  /**
   * Moves a member to a new state and re-applies every rule that depends on
   * it. All of the pool's state is updated before any event goes out, so a
   * listener never sees a half-applied change (e.g. the last ready member
   * turning unhealthy before degraded mode makes it pickable).
   */
  setState(ref: PoolMemberRef<C>, to: MemberState, reason: string): void {
    const member = own(ref);
    const from = member.state;
    if (from === to || from === "closed") return;
    member.state = to;
    if (from === "ready") this.#ready--;
    if (to === "ready") this.#ready++;
    if (from === "unhealthy") this.#unhealthy--;
    if (to === "unhealthy") this.#unhealthy++;
    if (to === "closed") {
      this.#members.delete(member);
      if (member.outlier.ejected) {
        member.outlier.ejected = false;
        this.#ejected--;
      }
    }
    this.#afterChange(member, { type: "state", member, from, to, reason });
  }

  setMaxConcurrent(ref: PoolMemberRef<C>, max: number): void {
    const member = own(ref);
    member.maxConcurrent = max > 0 ? max : 0;
    this.#afterChange(member, undefined);
  }

  /**
   * P2C over usable members; counts the pick as in flight. A suspect member
   * costs infinitely much, an overdue one more the longer it is silent. When
   * either member drawn is avoided (suspect, overdue past AVOID_FACTOR, its PING overdue, or
   * excluded), the draw says nothing about the rest, so every usable member
   * is looked at instead: the cheapest of the best rank wins. That matters
   * when two members share a backend that froze: P2C alone then draws the
   * two frozen ones in a third of its picks, and the other frozen one (not
   * yet overdue) would win a third of them; redrawing a few times at random
   * still let 1 pick in 243 through until a PING noticed (issue 25, item 8).
   *
   * `exclude` (a hedge: members already running this call) is avoided
   * harder still; when only excluded members are usable, nothing is picked.
   */
  pick(exclude?: readonly object[], now = Number.NaN): PoolMemberRef<C> | undefined {
    this.#exclude = exclude;
    this.#pickAt = now;
    // Nothing in a pick throws (listeners are isolated by Listeners.emit), so no try/finally on this hot path.
    const m = this.#pick(exclude);
    this.#exclude = undefined;
    this.#pickAt = Number.NaN;
    return m;
  }

  /** The pick's clock reading (see #pickAt). */
  #pickNow(): number {
    const t = this.#pickAt;
    return t === t ? t : (this.#pickAt = this.#now());
  }

  #pick(exclude: readonly object[] | undefined): PoolMember<C> | undefined {
    this.#drewAvoided = false;
    let m = pickP2C(this.#usable, this.#pickCost, this.#random);
    if (!m) return undefined;
    // One usable member is returned undrawn (no cost read): only exclusion stops it.
    if (this.#drewAvoided || this.#usable.size === 1) {
      m = this.#usable.size > 1 ? this.#best(exclude) : exclude?.includes(m) ? undefined : m;
      if (!m) return undefined;
    }
    const load = m.load;
    const p = m.progress;
    if (p.pending === 0) {
      // The clock matters when the member goes from nothing pending to busy, shared with suspicion's busySince.
      const now = this.#pickNow();
      if (this.#suspect && load.inFlight === 0) m.busySince = now;
      p.start(now);
    } else {
      p.more();
    }
    load.start();
    if (load.inFlight >= m.maxConcurrent) this.#refreshUsable(m);
    return m;
  }

  /** The member's smoothed PING round trip, ms (health reports it; peak-EWMA uses it as its floor). */
  recordRtt(ref: PoolMemberRef<C>, rttMs: number): void {
    const member = own(ref);
    member.rtt = rttMs;
  }

  /** The member proved itself (its first PONG) at `at` (wall clock, for stats). */
  recordConnected(ref: PoolMemberRef<C>, at: number): void {
    const member = own(ref);
    member.connectedSince = at;
  }

  /** The member's latest failure, for stats and the reason it leaves. */
  recordError(ref: PoolMemberRef<C>, error: Error): void {
    const member = own(ref);
    member.lastError = error;
  }

  /** The peer proved alive (a PONG, a completed response): not suspect any more. */
  heard(ref: PoolMemberRef<C>, now: number = this.#now()): void {
    const member = own(ref);
    member.lastHeardAt = now;
    member.suspected = false;
    member.pingLost = false;
  }

  /**
   * A PING went unanswered: picks avoid the member, busy or idle, until it
   * is heard from again (its health check confirms at once). Passive
   * suspicion sees only busy members; an idle member on a frozen backend
   * otherwise looks like the cheapest of all once its latency estimate has
   * decayed, and takes a request that hangs until the next PING fails
   * (bench/failover: picked 1.7 s into the freeze; issue 25, item 8).
   */
  pingLost(ref: PoolMemberRef<C>): void {
    own(ref).pingLost = true;
  }

  /** A PING went out to the member: picks avoid it while that PING is overdue (overdue.ts's pingOverdue). */
  pingSent(ref: PoolMemberRef<C>, now: number = this.#now()): void {
    own(ref).pingSentAt = now;
  }

  /**
   * The load's cost, times how overdue the member's unanswered requests are
   * (overdue.ts): a member that stopped answering loses every comparison
   * within milliseconds, long before suspectAfter. No clock read while it has
   * nothing pending.
   */
  #pickCost = (m: PoolMember<C>): number => {
    // An excluded member loses every comparison against one that is not.
    if (this.#isSuspect(m) || this.#exclude?.includes(m)) {
      this.#drewAvoided = true;
      return Number.POSITIVE_INFINITY;
    }
    const cost = m.load.cost(this.#pickNow());
    // A PING out and unanswered for long: avoided (the field test first keeps a pick clock-free while none is out).
    if (m.pingSentAt > m.lastHeardAt && pingOverdue(m.pingSentAt, m.lastHeardAt, this.#pickNow(), m.rtt)) this.#drewAvoided = true;
    if (m.progress.pending === 0) return cost;
    const factor = overdueFactor(m.progress, this.#pickNow(), m.rtt);
    if (factor >= AVOID_FACTOR) this.#drewAvoided = true;
    return cost * factor;
  };

  /**
   * The rare path of a pick whose draw hit an avoided member: the cheapest
   * member of the best rank, undefined when all are excluded. The scan
   * starts at a random member, so ties (every member suspect after an
   * event-loop stall) spread as a random pick would, not all on the first.
   */
  #best(exclude: readonly object[] | undefined): PoolMember<C> | undefined {
    const n = this.#usable.size;
    const start = Math.floor(this.#random() * n);
    let best: PoolMember<C> | undefined;
    let bestRank = 3;
    let bestCost = Number.POSITIVE_INFINITY;
    for (let k = 0; k < n; k++) {
      const x = this.#usable.at((start + k) % n);
      const rank = this.#rank(x, exclude);
      if (rank > bestRank) continue;
      const cost = rank === 2 ? Number.POSITIVE_INFINITY : this.#rawCost(x);
      if (rank < bestRank || cost < bestCost) {
        best = x;
        bestRank = rank;
        bestCost = cost;
      }
    }
    return bestRank === 2 ? undefined : best;
  }

  /** The load's cost times the overdue factor, without the infinite cost of a suspect member (to rank among the avoided). */
  #rawCost(m: PoolMember<C>): number {
    const cost = m.load.cost(this.#pickNow());
    return m.progress.pending === 0 ? cost : cost * overdueFactor(m.progress, this.#pickNow(), m.rtt);
  }

  /** 0: a good pick; 1: suspect or overdue; 2: excluded. */
  #rank(m: PoolMember<C>, exclude: readonly object[] | undefined): number {
    if (exclude?.includes(m)) return 2;
    return this.#avoid(m) ? 1 : 0;
  }

  #avoid(m: PoolMember<C>): boolean {
    return (
      this.#isSuspect(m) ||
      (m.progress.pending > 0 && overdueFactor(m.progress, this.#pickNow(), m.rtt) >= AVOID_FACTOR) ||
      pingOverdue(m.pingSentAt, m.lastHeardAt, this.#pickNow(), m.rtt)
    );
  }

  /** The suspect rule says so. Reported once per episode so the owner can probe it. */
  #isSuspect(m: PoolMember<C>): boolean {
    if (m.pingLost) return true;
    if (!this.#suspect || m.inFlight === 0 || !this.#suspect.isSuspect(m, this.#pickNow())) return false;
    if (!m.suspected) {
      m.suspected = true;
      this.events.emit({ type: "suspect", member: m });
    }
    return true;
  }

  /**
   * A request's response head arrived while its body still streams: the
   * member answered (progress, and proof of life), though the request stays
   * in flight until release().
   */
  answered(ref: PoolMemberRef<C>): void {
    const member = own(ref);
    member.progress.answer(this.#now());
    this.heard(member);
  }

  /**
   * Ends one in-flight request; `latency` (ms), given when the member
   * answered, is a load sample. `wasAnswered`: answered() already counted
   * its answer.
   */
  release(ref: PoolMemberRef<C>, latency?: number, wasAnswered = false, now?: number): void {
    const member = own(ref);
    if (latency !== undefined) {
      // One clock read for the load's sample and the proof of life (none when the caller has one).
      const at = now ?? this.#now();
      member.load.end(latency, at);
      this.heard(member, at);
    } else {
      member.load.end(latency);
    }
    if (!wasAnswered) {
      if (latency !== undefined) member.progress.answer(member.lastHeardAt, latency);
      else member.progress.drop();
    }
    if (member.load.inFlight + 1 >= member.maxConcurrent) this.#refreshUsable(member);
  }

  /**
   * Ends a request cancelled because another attempt of its call answered
   * first, after it ran `ranMs` unanswered: the load takes that lower bound
   * of its latency as a sample (peak-EWMA then sees a member whose answers
   * hedges keep beating as slow, as the unhedged calls' full latencies
   * would have shown it), but it is no answer: not heard from, no progress.
   */
  releaseSuperseded(ref: PoolMemberRef<C>, ranMs: number, wasAnswered: boolean, now: number): void {
    const member = own(ref);
    member.load.end(ranMs, now);
    if (!wasAnswered) member.progress.drop();
    if (member.load.inFlight + 1 >= member.maxConcurrent) this.#refreshUsable(member);
  }

  /**
   * How one attempt on `member` ended, for outlier ejection (off unless
   * configured). Past a threshold, and while fewer than maxEjectedPercent
   * are ejected, the member takes no picks for its ejection time; it stays
   * connected and PINGed.
   */
  outcome(ref: PoolMemberRef<C>, outcome: AttemptOutcome): void {
    const member = own(ref);
    const o = this.#outlier;
    if (!o || member.state === "closed") return;
    const reason = noteOutcome(member.outlier, outcome, o);
    if (!reason || member.outlier.ejected || !mayEject(this.#ejected, this.#members.size, o)) return;
    member.outlier.ejected = true;
    member.outlier.ejections++;
    this.#ejected++;
    const durationMs = ejectionTime(member.outlier, o);
    this.#refreshUsable(member);
    this.events.emit({ type: "ejected", member, reason, durationMs });
  }

  /** An ejection's time is up: the member takes picks again, its counts start over. */
  restore(ref: PoolMemberRef<C>): void {
    const member = own(ref);
    const s = member.outlier;
    if (!s.ejected) return;
    s.ejected = false;
    s.consecutive5xx = s.consecutiveGateway = s.consecutiveLocal = 0;
    this.#ejected--;
    if (member.state === "closed") return;
    this.#refreshUsable(member);
    this.events.emit({ type: "restored", member });
  }

  #shouldBeUsable(m: PoolMember<C>): boolean {
    const byState = m.state === "ready" || (this.#degraded && m.state === "unhealthy");
    return byState && !m.outlier.ejected && m.load.inFlight < m.maxConcurrent;
  }

  /** Re-files one member; returns true when the usable count changed. */
  #fileUsable(m: PoolMember<C>): boolean {
    const before = this.#usable.size;
    if (this.#shouldBeUsable(m)) this.#usable.add(m);
    else this.#usable.delete(m);
    return this.#usable.size !== before;
  }

  #refreshUsable(m: PoolMember<C>): void {
    if (this.#fileUsable(m)) this.events.emit({ type: "usable", count: this.#usable.size });
  }

  /** Re-files the member, then emits: state, usable, in that order. */
  #afterChange(m: PoolMember<C>, stateEvent: PoolEvent | undefined): void {
    const usableBefore = this.#usable.size;
    this.#fileUsable(m);
    if (stateEvent) this.events.emit(stateEvent);
    if (this.#usable.size !== usableBefore) this.events.emit({ type: "usable", count: this.#usable.size });
  }

  /**
   * Degraded mode as the regulator decided it: while on, unhealthy members
   * take picks too (better a doubtful member than none). Only unhealthy
   * members change usability with the mode: O(members) per transition, not
   * per pick.
   */
  setDegraded(degraded: boolean): void {
    if (degraded === this.#degraded) return;
    this.#degraded = degraded;
    const usableBefore = this.#usable.size;
    for (const u of this.#members) if (u.state === "unhealthy") this.#fileUsable(u);
    if (this.#usable.size !== usableBefore) this.events.emit({ type: "usable", count: this.#usable.size });
  }
}

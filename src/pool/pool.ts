import { Listeners } from "../core/listeners.js";
import { PeerMark, PoolMember } from "./member.js";
import { InFlight, PeakEwma, type Load } from "./load.js";
import { AVOID_FACTOR, overdueFactor, overtaken, pingDeadline } from "./overdue.js";
import { noteOutcome, type AttemptOutcome, type EjectionReason, type OutlierOptions } from "./outlier.js";
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
 * A member's load record as every other part sees it: read-only. Only the
 * pool changes it; the supervisor asks it to (setPickable, record*, release…).
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
  | { type: "usable"; count: number }
  /** A member looks stuck (busy, silent for suspectAfter); the owner should probe it now. */
  | { type: "suspect"; member: PoolMember }
  /**
   * A member's outcomes ran past a detector's threshold (outlier.ts): the
   * regulator decides whether it is ejected, and for how long.
   */
  | { type: "outlier"; member: PoolMember; reason: EjectionReason };

/**
 * The index of usable members, their load and the P2C pick. Knows nothing
 * of sockets or timers, and nothing of member states or degraded mode: the
 * regulator (supervisor/regulator.ts) decides which members may take picks
 * and the supervisor hands each decision down as setPickable().
 *
 * Usable = pickable (the regulator's word: ready, or unhealthy while
 * degraded, and not ejected) and below its stream limit. The usable members
 * are kept in an indexed set so a pick is O(1).
 */
export class Pool<C = unknown> {
  readonly events = new Listeners<PoolEvent>();
  #members = new Set<PoolMember<C>>();
  /** One mark per address that has members (member.ts's PeerMark). */
  #peers = new Map<string, PeerMark>();
  #usable = new UsableSet<PoolMember<C>>();
  #newLoad: (m: PoolMember<C>) => Load;
  #random: () => number;
  #decay: number;
  #now: () => number;
  #suspect: SuspectRule | undefined;
  #outlier: OutlierOptions | undefined;
  /**
   * The latest start (pool clock ms) of any request answered on any member:
   * a member still silent on a request older than that was overtaken
   * (overdue.ts's overtaken).
   */
  #answeredStart = Number.NEGATIVE_INFINITY;
  /** The pick in progress drew a suspect, overdue or excluded member (set by #pickCost). */
  #drewAvoided = false;

  constructor(options: PoolOptions) {
    this.#random = options.random ?? Math.random;
    this.#decay = options.decay ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
    // Loads read the pool's clock, so a fake clock in tests reaches the decay too.
    this.#newLoad = options.balancer === "peak-ewma" ? () => new PeakEwma({ now: this.#now, decay: this.#decay }) : () => new InFlight();
    this.#suspect = options.suspect?.enabled ? options.suspect : undefined;
    this.#outlier = options.outlier;
  }

  get usableCount(): number {
    return this.#usable.size;
  }

  /** A new member for `connection`, made and kept by the pool; it takes no picks until setPickable(). */
  admit(id: number, key: string, connection: C): PoolMemberRef<C> {
    let peer = this.#peers.get(key);
    if (peer === undefined) this.#peers.set(key, (peer = new PeerMark()));
    peer.members++;
    const member = new PoolMember<C>(id, key, connection, peer);
    member.load = this.#newLoad(member);
    this.#members.add(member);
    return member;
  }

  /** The regulator's decision that the member may (or may no longer) take picks. */
  setPickable(ref: PoolMemberRef<C>, pickable: boolean): void {
    const member = own(ref);
    if (member.pickable === pickable || !this.#members.has(member)) return;
    member.pickable = pickable;
    this.#refreshUsable(member);
  }

  /** The member is gone (closed): out of the index for good. */
  remove(ref: PoolMemberRef<C>): void {
    const member = own(ref);
    if (!this.#members.has(member)) return;
    this.setPickable(member, false);
    this.#members.delete(member);
    if (--member.peer.members === 0) this.#peers.delete(member.key);
  }

  setMaxConcurrent(ref: PoolMemberRef<C>, max: number): void {
    const member = own(ref);
    member.maxConcurrent = max > 0 ? max : 0;
    this.#refreshUsable(member);
  }

  /**
   * P2C over usable members; counts the pick as in flight. A suspect member
   * costs infinitely much, an overdue one more the longer it is silent. When
   * either member drawn is avoided (suspect, overdue past AVOID_FACTOR,
   * overtaken, its PING overdue, or excluded), the draw says nothing about
   * the rest, so every usable member is looked at instead: the cheapest of
   * the best rank wins. That matters when two members share a backend that
   * froze: P2C alone then draws the two frozen ones in a third of its picks,
   * and the other frozen one (not yet overdue) would win a third of them;
   * redrawing a few times at random still let 1 pick in 243 through until a
   * PING noticed (issue 25, item 8).
   *
   * The draw of two idle members with no PING overdue, on addresses not
   * overtaken (and no hedge), is the fast path: nothing else can make them
   * avoided, so their loads alone decide, with one clock reading (the
   * caller's) and no other rule looked at.
   *
   * `exclude` (a hedge: members already running this call) is avoided
   * harder still; when only excluded members are usable, nothing is picked.
   */
  pick(exclude?: readonly object[], now = Number.NaN): PoolMemberRef<C> | undefined {
    const items = this.#usable.items;
    const n = items.length;
    if (n === 0) return undefined;
    const t = now === now ? now : this.#now();
    let m: PoolMember<C> | undefined;
    if (n === 1) {
      // One usable member is returned undrawn (no cost read): only exclusion stops it.
      m = items[0] as PoolMember<C>;
      if (exclude !== undefined && exclude.includes(m)) return undefined;
    } else {
      // Power of two choices: two distinct members, every ordered pair as likely. Written out here
      // (a draw function or a cost callback kept V8 from inlining this path: 20–40 % dearer in
      // bench/pick), and both draws from one random number (a random() call was a fifth of a pick):
      // r's whole part is the first, its fraction rescaled to the n − 1 others the second.
      const r = this.#random() * n;
      const i = Math.floor(r);
      const k = Math.floor((r - i) * (n - 1));
      // k below i, else k + 1: (k − i) >>> 31 is 1 exactly when k < i. No branch: it would go
      // either way at random, and mispredicted it cost ~8 % of a pick.
      const j = k + 1 - ((k - i) >>> 31);
      const a = items[i] as PoolMember<C>;
      const b = items[j] as PoolMember<C>;
      const la = a.load;
      const lb = b.load;
      if (
        exclude === undefined &&
        la.inFlight === 0 &&
        lb.inFlight === 0 &&
        t <= a.watchFrom &&
        t <= b.watchFrom &&
        !this.#addressOvertaken(a) &&
        !this.#addressOvertaken(b)
      ) {
        m = lb.cost(t) < la.cost(t) ? b : a;
      } else {
        m = this.#pickCareful(a, b, exclude, t);
        if (m === undefined) return undefined;
      }
    }
    const load = m.load;
    if (load.inFlight === 0) m.busySince = t;
    m.progress.start(t);
    const peer = m.peer;
    if (peer.pending++ === 0) peer.since = t;
    load.start();
    if (load.inFlight >= m.maxConcurrent) this.#refreshUsable(m);
    return m;
  }

  /** A draw where a rule may apply (a member busy, its PING out, or a hedge's exclusions): P2C over the full cost, else the scan. */
  #pickCareful(a: PoolMember<C>, b: PoolMember<C>, exclude: readonly object[] | undefined, now: number): PoolMember<C> | undefined {
    this.#drewAvoided = false;
    const ca = this.#pickCost(a, exclude, now);
    const cb = this.#pickCost(b, exclude, now);
    return this.#drewAvoided ? this.#best(exclude, now) : cb < ca ? b : a;
  }

  /** The member's smoothed PING round trip, ms (health reports it; peak-EWMA uses it as its floor). */
  recordRtt(ref: PoolMemberRef<C>, rttMs: number): void {
    const member = own(ref);
    member.rtt = rttMs;
    member.load.setRtt(rttMs);
    this.#watchPing(member);
  }

  /** The peer proved alive (a PONG, a completed response): not suspect any more, no PING outstanding. */
  heard(ref: PoolMemberRef<C>, now: number = this.#now()): void {
    const member = own(ref);
    member.lastHeardAt = now;
    member.suspected = false;
    member.pingLost = false;
    // Heard at or after the latest PING went out: none is outstanding (a PING is out while pingSentAt > lastHeardAt).
    member.watchFrom = member.pingSentAt > now ? pingDeadline(member.pingSentAt, member.rtt) : Number.POSITIVE_INFINITY;
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
    const member = own(ref);
    member.pingLost = true;
    member.watchFrom = Number.NEGATIVE_INFINITY;
  }

  /** A PING went out to the member: picks avoid it once that PING is overdue (overdue.ts's pingDeadline). */
  pingSent(ref: PoolMemberRef<C>, now: number = this.#now()): void {
    const member = own(ref);
    member.pingSentAt = now;
    this.#watchPing(member);
  }

  /**
   * Keeps the member's watchFrom (member.ts) true after its PING facts
   * changed, so a pick of an idle member need not look at them: the moment
   * its outstanding PING becomes overdue, or at once after a lost one.
   */
  #watchPing(m: PoolMember<C>): void {
    if (m.pingLost) m.watchFrom = Number.NEGATIVE_INFINITY;
    else m.watchFrom = m.pingSentAt > m.lastHeardAt ? pingDeadline(m.pingSentAt, m.rtt) : Number.POSITIVE_INFINITY;
  }

  /**
   * The load's cost, times how overdue the member's unanswered requests are
   * (overdue.ts): a member that stopped answering loses every comparison
   * within milliseconds, long before suspectAfter. Sets #drewAvoided when
   * the member is one a pick should not take while another is better.
   */
  #pickCost(m: PoolMember<C>, exclude: readonly object[] | undefined, now: number): number {
    // An excluded member loses every comparison against one that is not.
    if (this.#isSuspect(m, now) || (exclude !== undefined && exclude.includes(m))) {
      this.#drewAvoided = true;
      return Number.POSITIVE_INFINITY;
    }
    const cost = m.load.cost(now);
    // A PING out and unanswered for long: avoided.
    if (now > m.watchFrom) this.#drewAvoided = true;
    const p = m.progress;
    if (this.#addressOvertaken(m)) this.#drewAvoided = true;
    if (p.pending === 0) return cost;
    if (overtaken(p, this.#answeredStart)) this.#drewAvoided = true;
    const factor = overdueFactor(p, now, m.rtt);
    if (factor >= AVOID_FACTOR) this.#drewAvoided = true;
    return cost * factor;
  }

  /**
   * The rare path of a pick whose draw hit an avoided member: the cheapest
   * member of the best rank, undefined when all are excluded. The scan
   * starts at a random member, so ties (every member suspect after an
   * event-loop stall) spread as a random pick would, not all on the first.
   */
  #best(exclude: readonly object[] | undefined, now: number): PoolMember<C> | undefined {
    const n = this.#usable.size;
    const start = Math.floor(this.#random() * n);
    let best: PoolMember<C> | undefined;
    let bestRank = 4;
    let bestCost = Number.POSITIVE_INFINITY;
    for (let k = 0; k < n; k++) {
      const x = this.#usable.at((start + k) % n);
      const rank = this.#rank(x, exclude, now);
      if (rank > bestRank) continue;
      const cost = rank === 3 ? Number.POSITIVE_INFINITY : this.#rawCost(x, now);
      if (rank < bestRank || cost < bestCost) {
        best = x;
        bestRank = rank;
        bestCost = cost;
      }
    }
    return bestRank === 3 ? undefined : best;
  }

  /** The load's cost times the overdue factor, without the infinite cost of a suspect member (to rank among the avoided). */
  #rawCost(m: PoolMember<C>, now: number): number {
    const cost = m.load.cost(now);
    return m.progress.pending === 0 ? cost : cost * overdueFactor(m.progress, now, m.rtt);
  }

  /**
   * 0: a good pick; 1: its requests are overdue, or overtaken; 2: silent to
   * a PING, or suspect; 3: excluded. Silence to a PING is the stronger
   * evidence: an event-loop stall makes healthy busy members look overdue
   * for a moment, and an idle member on a frozen backend (nothing pending,
   * so its cost is the lowest) must not win against them then.
   */
  #rank(m: PoolMember<C>, exclude: readonly object[] | undefined, now: number): number {
    if (exclude !== undefined && exclude.includes(m)) return 3;
    if (this.#isSuspect(m, now) || now > m.watchFrom) return 2;
    const p = m.progress;
    if (this.#addressOvertaken(m)) return 1;
    return p.pending > 0 && (overtaken(p, this.#answeredStart) || overdueFactor(p, now, m.rtt) >= AVOID_FACTOR) ? 1 : 0;
  }

  /**
   * overdue.ts's overtaken, for the member's address as a whole (its own
   * typical latency the margin): the members stacked on one backend, which
   * froze for all of them, are avoided together, the idle ones too, until
   * the address answers anything or its requests end. An idle one otherwise
   * looks like the cheapest member of all and takes a request that hangs.
   */
  #addressOvertaken(m: PoolMember<C>): boolean {
    const peer = m.peer;
    if (peer.pending === 0) return false;
    const typical = m.progress.typical;
    return peer.since + (typical === typical ? typical : 0) < this.#answeredStart;
  }

  /** A member on the address answered: progress for the address (Progress.answer's bookkeeping, without the latency). */
  #addressAnswered(peer: PeerMark, at: number): void {
    if (peer.pending > 0) peer.pending--;
    peer.since = at;
  }

  /** The suspect rule says so. Reported once per episode so the owner can probe it. */
  #isSuspect(m: PoolMember<C>, now: number): boolean {
    if (m.pingLost) return true;
    if (!this.#suspect || m.inFlight === 0 || !this.#suspect.isSuspect(m, now)) return false;
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
    const at = this.#now();
    member.progress.answer(at);
    this.#addressAnswered(member.peer, at);
    this.heard(member, at);
  }

  /**
   * Ends one in-flight request; `latency` (ms), given when the member
   * answered, is a load sample. `wasAnswered`: answered() already counted
   * its answer.
   */
  release(ref: PoolMemberRef<C>, latency?: number, wasAnswered = false, now?: number): void {
    const member = own(ref);
    const load = member.load;
    if (latency === undefined) {
      load.end();
      if (!wasAnswered) {
        member.progress.drop();
        if (member.peer.pending > 0) member.peer.pending--;
      }
    } else {
      // One clock read for the load's sample, the proof of life and the progress (none when the caller has one).
      const at = now ?? this.#now();
      load.end(latency, at);
      this.heard(member, at);
      if (!wasAnswered) {
        member.progress.answer(at, latency);
        this.#addressAnswered(member.peer, at);
      }
      // This request started then and is answered: a member silent on an older one was overtaken.
      const started = at - latency;
      if (started > this.#answeredStart) this.#answeredStart = started;
    }
    if (load.inFlight + 1 >= member.maxConcurrent) this.#refreshUsable(member);
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
    if (!wasAnswered) {
      member.progress.drop();
      if (member.peer.pending > 0) member.peer.pending--;
    }
    if (member.load.inFlight + 1 >= member.maxConcurrent) this.#refreshUsable(member);
  }

  /**
   * How one attempt on `member` ended, for outlier detection (off unless
   * configured): a run past a threshold is reported as an `outlier` event,
   * and the regulator decides the ejection (setPickable).
   */
  outcome(ref: PoolMemberRef<C>, outcome: AttemptOutcome): void {
    const member = own(ref);
    const o = this.#outlier;
    if (!o || !this.#members.has(member)) return;
    const reason = noteOutcome(member.outlier, outcome, o);
    if (reason) this.events.emit({ type: "outlier", member, reason });
  }

  /** An ejection ended: the member's outcome counts start over. */
  resetOutcomes(ref: PoolMemberRef<C>): void {
    own(ref).outlier.reset();
  }

  #refreshUsable(m: PoolMember<C>): void {
    const before = this.#usable.size;
    if (m.pickable && m.load.inFlight < m.maxConcurrent) this.#usable.add(m);
    else this.#usable.delete(m);
    if (this.#usable.size !== before) this.events.emit({ type: "usable", count: this.#usable.size });
  }
}

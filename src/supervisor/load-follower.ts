/**
 * Members that follow load (`members: { min, max }`): given load samples,
 * decides when the member count grows or shrinks by one. Pure: time is
 * passed in, and the regulator carries the decision out.
 *
 * Grow one member while the average in-flight per ready member stays above
 * target for growAfter (and only once every slot is served, so growth never
 * outruns proof), or while there is load (above a quarter of target) and
 * the latency estimate stays above LATENCY_RISE × its quiet level: queueing
 * on the connections shows there before the in-flight count reaches target.
 * Shrink one after shrinkAfter below a quarter of target. Between the two
 * nothing changes, so steady load in that band never flaps.
 */

import type { MembersPlan } from "./members-plan.js";

/** How far the latency estimate must rise over its quiet level before members grow for it. */
const LATENCY_RISE = 2;
/** …and by at least this much (ms): on loopback, 0.1 → 0.3 ms is noise, not queueing. */
const LATENCY_RISE_MIN_MS = 2;
/** With no target given and no peer stream limit. */
const DEFAULT_TARGET = 64;

/** The channel's members plan, as resolved (members-plan.ts). */
export type LoadFollowerOptions = MembersPlan;

export interface LoadSample {
  /** Requests in flight on ready members. */
  inFlight: number;
  /** The lowest stream limit a peer set (Infinity: none). */
  streamLimit: number;
  /** Mean latency estimate, ms (peak-EWMA only). */
  latency: number | undefined;
  /** The member count now. */
  size: number;
  ready: number;
  /** Every slot has a member and no dial is open. */
  settled: boolean;
  /** Every slot but the last has a ready member: dropping the last costs nothing the channel cannot spare. */
  othersReady: boolean;
}

export class LoadFollower {
  #o: LoadFollowerOptions;
  /** Since when load has been above target / below a quarter of it. */
  #highSince: number | undefined;
  #lowSince: number | undefined;
  /** The latency estimate while quiet: what "latency rises with load" is measured against. */
  #quietLatency: number | undefined;

  constructor(options: LoadFollowerOptions) {
    this.#o = options;
  }

  /** The new member count and why, or undefined to stay. */
  sample(s: LoadSample, now: number): { to: number; reason: string } | undefined {
    if (s.ready === 0) return undefined;
    const target = this.#o.target ?? (Number.isFinite(s.streamLimit) ? Math.max(1, Math.floor(s.streamLimit / 2)) : DEFAULT_TARGET);
    const average = s.inFlight / s.ready;
    const quiet = average < target / 4;
    // Learned only while requests flow: an idle peak-EWMA estimate decays toward zero and would make any load look slow.
    // It follows a drop at once and a rise slowly, so one slow spike (a GC pause) does not raise the bar.
    if (quiet && s.inFlight > 0 && s.latency !== undefined) {
      const q = this.#quietLatency;
      this.#quietLatency = q === undefined || s.latency < q ? s.latency : 0.9 * q + 0.1 * s.latency;
    }
    const q = this.#quietLatency;
    const slowed = !quiet && s.latency !== undefined && q !== undefined && s.latency > Math.max(LATENCY_RISE * q, q + LATENCY_RISE_MIN_MS);
    if (average > target || slowed) {
      this.#lowSince = undefined;
      this.#highSince ??= now;
      if (!s.settled || s.size >= this.#o.max || now - this.#highSince < this.#o.growAfter) return undefined;
      // The next member must earn its own period of high load.
      this.#highSince = now;
      const why =
        average > target
          ? `${round1(average)} in flight per member > target ${target}`
          : `latency ${round1(s.latency ?? 0)} ms > ${LATENCY_RISE} × ${round1(q ?? 0)} ms when quiet`;
      return { to: s.size + 1, reason: why };
    }
    if (quiet) {
      this.#highSince = undefined;
      this.#lowSince ??= now;
      if (!s.othersReady || s.size <= this.#o.min || now - this.#lowSince < this.#o.shrinkAfter) return undefined;
      this.#lowSince = now;
      return { to: s.size - 1, reason: `${round1(average)} in flight per member < ${round1(target / 4)} for ${this.#o.shrinkAfter} ms` };
    }
    this.#highSince = undefined;
    this.#lowSince = undefined;
    return undefined;
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/**
 * Passive suspicion, the health check that needs no PING: a member with
 * requests in flight that has not been heard from (no completed response,
 * no PONG) for `suspectAfter` ms is suspect. Picks avoid it, and its owner
 * PINGs it at once; a PONG clears it. It is not unhealthy until PINGs say so.
 *
 * The rule is pure (time is passed in); the pool applies it at pick time
 * and reports each episode once. The pool never imports health/: the
 * supervisor hands this object to it as a `SuspectRule`.
 */

/** What the rule reads of a member. */
export interface Activity {
  readonly inFlight: number;
  /** When the peer last proved alive (ms, the pool's clock). */
  readonly lastHeardAt: number;
  /** When in-flight last went from 0 to 1. */
  readonly busySince: number;
}

export class PassiveSuspicion {
  /** 0 turns it off. */
  readonly suspectAfter: number;

  constructor(suspectAfter: number) {
    this.suspectAfter = suspectAfter;
  }

  get enabled(): boolean {
    return this.suspectAfter > 0;
  }

  /** Busy, and silent for longer than suspectAfter since it was last heard from or became busy. */
  isSuspect(a: Activity, now: number): boolean {
    if (this.suspectAfter === 0 || a.inFlight === 0) return false;
    return now - Math.max(a.lastHeardAt, a.busySince) > this.suspectAfter;
  }
}

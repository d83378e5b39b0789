import type { AttemptOutcome } from "../pool/outlier.js";
import type { Pool, PoolMemberRef } from "../pool/pool.js";

/** What a lease needs from the supervisor that handed it out: one object per channel, not closures per request. */
export interface LeaseOwner<C> {
  readonly pool: Pool<C>;
  /** close() destroyed this member at closeGrace. */
  isCut(member: PoolMemberRef<C>): boolean;
  /** One lease fewer outstanding. */
  released(): void;
}

/**
 * A picked member, held for one request; released exactly once (a second
 * release is ignored, so a late close cannot count a request twice). A class
 * rather than an object of closures: one allocation per request on the hot
 * path. It is what dispatch/ knows as a DispatchLease (dispatch and
 * supervisor do not import each other; the shapes match).
 */
export class MemberLease<C> {
  readonly member: PoolMemberRef<C>;
  readonly connection: C;
  readonly #owner: LeaseOwner<C>;
  #released = false;
  #answered = false;

  constructor(owner: LeaseOwner<C>, member: PoolMemberRef<C>) {
    this.#owner = owner;
    this.member = member;
    this.connection = member.connection;
  }

  /** close() destroyed this lease's member at closeGrace: a request that failed on it was cut by closing (ClosedError), not by the peer. */
  get closedByChannel(): boolean {
    return this.#owner.isCut(this.member);
  }

  /** How the attempt ended, for outlier ejection. */
  report(outcome: AttemptOutcome): void {
    this.#owner.pool.outcome(this.member, outcome);
  }

  /** The response head arrived; the request stays in flight until release() (a streamed body). */
  answered(): void {
    if (this.#answered || this.#released) return;
    this.#answered = true;
    this.#owner.pool.answered(this.member);
  }

  /** `now`: the caller's clock reading when it has one (it measured the latency), so the pool need not read again. */
  release(latencyMs?: number, now?: number): void {
    if (this.#released) return;
    this.#released = true;
    this.#owner.released();
    this.#owner.pool.release(this.member, latencyMs, this.#answered, now);
  }

  /** Cancelled because another attempt of the call answered first, after running `ranMs` (dispatch/lease.ts). */
  superseded(ranMs: number, now: number): void {
    if (this.#released) return;
    this.#released = true;
    this.#owner.released();
    this.#owner.pool.releaseSuperseded(this.member, ranMs, this.#answered, now);
  }
}

import { raceSignal } from "../core/abort.js";
import { clockTimeout, type Clock } from "../core/clock.js";
import { ClosedError, NoMemberError, NotReadyError, OverloadedError, QueueFullError } from "../core/errors.js";
import type { ChannelEvent } from "../core/events.js";
import type { Listeners } from "../core/listeners.js";
import type { Pool, PoolMemberRef } from "../pool/pool.js";
import { AcquireQueue } from "./acquire-queue.js";
import type { ChangeSignal } from "./change-signal.js";
import { MemberLease, type LeaseOwner } from "./member-lease.js";

export interface LeaseSourceOptions {
  target: string;
  acquireTimeout: number;
  maxQueue: number;
  /** Requests in flight on the channel past which acquire() fails at once. */
  maxOutstanding: number;
  /** How long ready() waits when the caller gives no signal. */
  readyTimeout: number;
  /** What ready() waits for: the fixed member count, or a range's minimum. */
  minMembers: number;
}

/** How far the channel got, as ready() reports it; the supervisor answers from the regulator's record. */
export interface WarmUp {
  readonly readyCount: number;
  /** Why the channel has no address, when it has none. */
  noAddressReason(): string | undefined;
}

/**
 * The channel's request side: hands out leases on usable members (P2C, by
 * the pool), holds callers in a bounded queue while there is none, caps the
 * requests in flight, and keeps the channel's last error, which every error
 * it gives names. It decides nothing about members: the supervisor runs
 * them and tells it when one may have become usable (serve()).
 *
 * acquire(), tryAcquire() and a lease's release() are the request path:
 * synchronous when a member is free, one allocation (the lease) per request.
 */
export class LeaseSource<C> implements LeaseOwner<C> {
  readonly target: string;
  readonly pool: Pool<C>;
  readonly clock: Clock;
  /** The channel's events, for dispatch (request outcomes, budget withdrawals). */
  readonly events: Listeners<ChannelEvent>;
  #o: LeaseSourceOptions;
  #queue: AcquireQueue<MemberLease<C>>;
  #changes: ChangeSignal;
  #warmUp: WarmUp;
  #outstanding = 0;
  #closed = false;
  #lastError: Error | undefined;
  /** Members close() destroyed when closeGrace ran out. */
  #cut = new WeakSet<PoolMemberRef<C>>();

  constructor(o: LeaseSourceOptions, pool: Pool<C>, clock: Clock, events: Listeners<ChannelEvent>, changes: ChangeSignal, warmUp: WarmUp) {
    this.#o = o;
    this.target = o.target;
    this.pool = pool;
    this.clock = clock;
    this.events = events;
    this.#changes = changes;
    this.#warmUp = warmUp;
    this.#queue = new AcquireQueue(o.maxQueue, clock);
  }

  /** The most recent failure: a dial, a lost member, a give-up, a request, or (when nothing else is known) a lookup. */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** Callers waiting in the queue. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Records the channel's most recent error. `ifNone`: only when none is
   * known yet (a failed lookup, with last-good addresses, says less than a
   * failed connection).
   */
  noteError(error: Error, ifNone = false): void {
    if (ifNone && this.#lastError) return;
    this.#lastError = error;
  }

  /**
   * Resolves once `minMembers` members are ready. Rejects if the channel
   * closes first; when `signal` aborts, or (with no signal) after
   * readyTimeout, with a NotReadyError naming how far it got and why.
   */
  async ready(signal?: AbortSignal): Promise<void> {
    // Backoff timers are unref'd; someone awaiting ready() must still keep the process alive.
    const keepAlive = setInterval(() => {}, 60_000);
    const started = this.clock.now();
    const own = signal ? undefined : clockTimeout(this.clock, this.#o.readyTimeout);
    try {
      while (this.#warmUp.readyCount < this.#o.minMembers) {
        if (this.#closed) throw new ClosedError(`channel ${this.target}`);
        await raceSignal(this.#changes.next(), signal ?? own?.signal);
      }
    } catch (err) {
      if (!this.#closed && (own?.signal.aborted || signal?.aborted)) {
        const waited = Math.round(this.clock.now() - started);
        throw new NotReadyError(this.target, this.#warmUp.readyCount, this.#o.minMembers, waited, this.#lastError, this.#warmUp.noAddressReason());
      }
      throw err;
    } finally {
      own?.cancel();
      clearInterval(keepAlive);
    }
  }

  /**
   * A usable member, picked by P2C; waits (bounded queue, acquireTimeout)
   * when there is none, then fails with NoMemberError naming the last cause.
   * Past maxOutstanding requests in flight it fails at once: members that
   * stopped answering must not collect an unbounded pile.
   */
  acquire(signal?: AbortSignal, timeoutMs = this.#o.acquireTimeout): Promise<MemberLease<C>> {
    if (this.#closed) return Promise.reject(new ClosedError(`channel ${this.target}`));
    if (this.#outstanding >= this.#o.maxOutstanding) return Promise.reject(new OverloadedError(this.target, this.#o.maxOutstanding, this.#lastError));
    const lease = this.#tryPick();
    if (lease) return Promise.resolve(lease);
    return this.#queue.wait(
      timeoutMs,
      signal,
      () => new NoMemberError(this.target, timeoutMs, this.#lastError),
      () => new QueueFullError(this.target, this.#o.maxQueue, this.#lastError),
    );
  }

  /**
   * A usable member other than those in `exclude`, now, or undefined (a
   * hedge: it goes to a different member or not at all, and never queues).
   */
  tryAcquire(exclude?: readonly object[], now?: number): MemberLease<C> | undefined {
    if (this.#closed || this.#outstanding >= this.#o.maxOutstanding) return undefined;
    return this.#tryPick(exclude, now);
  }

  /** A member may have become usable: hand leases to queued callers, first come first served. */
  serve(): void {
    if (this.#queue.length > 0) this.#queue.serve(() => this.#tryPick());
  }

  // ── LeaseOwner: what every lease of this channel shares ─────────────

  isCut(member: PoolMemberRef<C>): boolean {
    return this.#cut.has(member);
  }

  released(): void {
    this.#outstanding--;
  }

  // ── closing ──────────────────────────────────────────────────────────

  /** No more leases; queued callers fail with `error`. */
  close(error: Error): void {
    this.#closed = true;
    this.#queue.rejectAll(error);
  }

  /** close() destroyed this member at closeGrace: requests that fail on it were cut by closing. */
  cut(member: PoolMemberRef<C>): void {
    this.#cut.add(member);
  }

  #tryPick(exclude?: readonly object[], now?: number): MemberLease<C> | undefined {
    const m = this.pool.pick(exclude, now);
    if (!m) return undefined;
    this.#outstanding++;
    return new MemberLease(this, m);
  }
}

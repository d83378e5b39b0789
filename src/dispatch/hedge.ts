import { AbortPool } from "../core/abort-pool.js";
import type { Timer } from "../core/clock.js";
import { RequestError, RequestTimeoutError, type DialtoneError } from "../core/errors.js";
import { Context, acquireLease, attemptAnswered, attemptFailed, budgetAllows, retryAllowed } from "./attempt.js";
import { mayRetry } from "./classify.js";
import type { HedgeTiming } from "./hedge-timing.js";
import type { Attempt, DispatchLease, DispatchOptions, LeaseSource, Trace } from "./lease.js";
import type { AttemptReason } from "./diagnostics.js";
import type { TracedCall } from "./traced-call.js";

interface Running<C> {
  readonly lease: DispatchLease<C>;
  readonly cancel: AbortController;
  readonly hedge: boolean;
  /** The call's first attempt: the one whose latency a "p95" delay learns. */
  readonly first: boolean;
  readonly started: number;
}

/**
 * A hedged call (gRFC A6, "The Tail at Scale"): the first attempt goes out
 * as usual; while no attempt has answered, every `delay` another goes to a
 * different member (up to `max`, each paid from maxExtraLoad's budget and
 * the retry budget), and the first success wins: the others are aborted
 * through their attempt signal, which cancels their streams (RST_STREAM
 * CANCEL) or drops a late NATS reply. The delay learns from each call's
 * first attempt: its latency, or the time it ran before a hedge won.
 *
 * A failed attempt is retried as in the plain pipeline (attempt.ts's
 * retryAllowed: maxRetries, within the budget) only when no other attempt is
 * still running: a hedge in flight is already the retry. A failure that may
 * not be retried (the call's deadline, bad input) ends the call at once.
 * Each attempt goes through the same steps as the plain pipeline's
 * (attempt.ts); this file only decides when attempts go out and which wins.
 */
export function hedgedAttempts<C, T>(
  source: LeaseSource<C>,
  o: DispatchOptions,
  attempt: Attempt<C, T>,
  trace: Trace | undefined,
  timing: HedgeTiming,
  diag?: TracedCall,
): Promise<T> {
  return new Promise<T>((resolve, reject) => new HedgedCall(source, o, attempt, trace, timing, resolve, reject, diag).start());
}

/**
 * The attempts' cancel controllers, shared by every hedged call: almost
 * every attempt ends without being cancelled (the first answers before any
 * hedge goes out), and creating a controller was a third of what a hedged
 * call allocated beyond an unhedged one (bench/tail: 21 KB a call against
 * 17 KB, and a fifth more CPU).
 */
const aborts = new AbortPool();

/**
 * A hedge timer this late (ms), and later than the delay itself, was held up
 * by the event loop, not by the member: the call looks again after I/O.
 */
export const STALLED_LOOP_MS = 5;

class HedgedCall<C, T> {
  readonly #active = new Set<Running<C>>();
  readonly #deadline: number;
  #done = false;
  #attempts = 0;
  #hedges = 0;
  #retries = 0;
  /** maxExtraLoad refused this call a hedge: it waits in line (said once per call). */
  #refused = false;
  /** Its place in maxExtraLoad's line: called when the budget has room for it. */
  readonly #granted = (): void => {
    this.#waiting = false;
    this.#send();
  };
  /** In maxExtraLoad's line, not granted yet. */
  #waiting = false;
  #timer: Timer | undefined;
  /** When the armed hedge timer should fire (clock ms). */
  #due = 0;
  /** This call's place among the hedgeable calls started (HedgeTiming.overtaken). */
  #ticket = 0;
  /** The call ended with an answer (the other attempts were cancelled by it). */
  #answered = false;
  /** Why the next attempt from #acquireAndLaunch goes out (diagnostics). */
  #lastFailure: RequestError | undefined;

  constructor(
    private readonly source: LeaseSource<C>,
    private readonly o: DispatchOptions,
    private readonly attempt: Attempt<C, T>,
    private readonly trace: Trace | undefined,
    private readonly timing: HedgeTiming,
    private readonly resolve: (v: T) => void,
    private readonly reject: (e: DialtoneError) => void,
    private readonly diag: TracedCall | undefined,
  ) {
    this.#deadline = source.clock.now() + o.timeout;
  }

  start(): void {
    const now = this.#deadline - this.o.timeout;
    this.o.budget?.deposit(now);
    this.timing.deposit(now);
    this.#ticket = this.timing.ticket();
    this.#acquireAndLaunch(false);
  }

  #remaining(): number {
    return this.#deadline - this.source.clock.now();
  }

  /** The first attempt, or a retry: may wait (bounded) in the acquire queue. */
  #acquireAndLaunch(retry: boolean): void {
    const now = this.source.clock.now();
    const remaining = this.#deadline - now;
    if (remaining <= 0) return this.#fail(new RequestTimeoutError(this.o.target, undefined, this.o.timeout));
    const got = (lease: DispatchLease<C>): void => {
      if (this.#done) return lease.release();
      if (retry) this.#retries++;
      this.#launch(lease, false);
      if (!retry) this.#armHedge();
    };
    const lease = acquireLease(this.source, this.o, remaining, now);
    if (!(lease instanceof Promise)) return got(lease);
    lease.then(got, (err: DialtoneError) => {
      if (this.#active.size === 0) this.#fail(err);
    });
  }

  #armHedge(): void {
    const delay = this.timing.delayMs();
    if (delay === undefined || this.#hedges >= this.timing.max || this.#done) return;
    this.#arm(delay);
  }

  #arm(ms: number): void {
    this.#due = this.source.clock.now() + ms;
    this.#timer = this.source.clock.setTimeout(() => this.#hedge(), ms);
  }

  #hedge(): void {
    this.#timer = undefined;
    if (this.#done || this.#remaining() <= 0) return;
    // Fired late: our own event loop was held up (a GC pause, a busy CPU), and every call waiting
    // then is overdue at once, its answer most likely already read off the socket but not yet
    // processed (timers run before I/O in each turn of the loop). A hedge now would be the caller's
    // lateness, not the member's, and would add load just when the process is behind. Look again
    // once I/O has had its turn.
    const delay = this.timing.delayMs() ?? 0;
    if (this.source.clock.now() - this.#due > Math.max(delay, STALLED_LOOP_MS)) return this.#arm(0);
    // Calls started after this one are all still waiting too: the wait is not this member's (see
    // HedgeTiming.overtaken). Look again after another delay; a call that is slow on its own is
    // soon overtaken by the ones behind it.
    if (!this.timing.overtaken(this.#ticket)) return this.#arm(delay);
    // A one-shot body already read cannot be sent twice.
    if (this.o.replayable && !this.o.replayable()) return;
    // maxExtraLoad first, as Finagle's backup requests do: it is the tighter bound, so the shared
    // budget (retries need it too) is rarely drawn for a hedge that then may not go. Past it the
    // call waits in line, and the next room the budget makes goes to the call that has waited
    // longest: a call still waiting long after the delay is more likely stuck than slow.
    this.#waiting = true;
    if (!this.timing.tryWithdraw(this.#granted)) {
      if (!this.#refused) {
        this.#refused = true;
        const waiting = this.#active.values().next().value;
        this.source.events.emit({ type: "retry-budget-exhausted", kind: "hedge-load", address: waiting?.lease.member.key ?? "" });
      }
      // Still in line (not served just now): ask again after another delay, as time makes room too.
      if (this.#waiting) this.#armHedge();
      return;
    }
    this.#waiting = false;
    this.#send();
  }

  /** Sends the hedge maxExtraLoad allowed, to a member this call is not on yet, within the retry budget. */
  #send(): void {
    if (this.#done || this.#remaining() <= 0) return;
    // Granted from the line later: the body may have been read meanwhile.
    if (this.o.replayable && !this.o.replayable()) return;
    const exclude = [...this.#active].map((r) => r.lease.member);
    const lease = this.source.tryAcquire?.(exclude);
    // No other member usable now: look again after another delay.
    if (!lease) return this.#armHedge();
    if (!budgetAllows(this.source, this.o, "hedge", lease.member.key)) {
      lease.release();
      return;
    }
    this.#hedges++;
    this.#launch(lease, true);
    this.#armHedge();
  }

  #launch(lease: DispatchLease<C>, hedge: boolean): void {
    // With the caller's signal the attempt's is a combined one (AbortSignal.any), which keeps a link
    // to its source: that controller is never reused (#giveBack).
    const cancel = this.o.signal ? new AbortController() : aborts.take();
    const signal = this.o.signal ? AbortSignal.any([this.o.signal, cancel.signal]) : cancel.signal;
    const started = this.source.clock.now();
    const run: Running<C> = { lease, cancel, hedge, first: this.#attempts === 0, started };
    this.#active.add(run);
    const ctx = new Context(Math.max(1, this.#deadline - started), ++this.#attempts, signal);
    const traced = this.diag?.attempt(ctx, lease, this.#reason(hedge));
    this.attempt(lease, ctx).then(
      (res) => {
        this.#active.delete(run);
        const end = attemptAnswered(this.source, lease, ctx, started);
        traced?.answered(res, !this.#done);
        this.#giveBack(run, ctx);
        if (this.#done) return;
        if (run.first) this.timing.record(end - started);
        this.timing.answered(this.#ticket);
        // How the hedges fare decides how late they go (HedgeTiming: most of them losing moves the delay up).
        if (this.#hedges > 0) this.timing.hedgeAnswered(hedge);
        this.#finish(true);
        if (this.trace) {
          this.trace.address = lease.member.key;
          this.trace.hedgeWon = hedge;
        }
        this.resolve(res);
      },
      (err: unknown) => {
        this.#active.delete(run);
        this.#giveBack(run, ctx);
        // A loser this call cancelled: nobody's failure, and not the call's error. When an answer
        // cancelled it, the time it ran is a lower bound of its member's latency (lease.ts).
        if (this.#done) {
          traced?.cancelled();
          if (!this.#answered || !lease.superseded) return lease.release();
          const now = this.source.clock.now();
          return lease.superseded(now - started, now);
        }
        const e = attemptFailed(this.source, this.o, lease, err);
        traced?.failed(e);
        if (e instanceof RequestError) this.#lastFailure = e;
        if (this.trace) this.trace.address = lease.member.key;
        if (!(e instanceof RequestError) || !mayRetry(e, this.o)) return this.#fail(e);
        // Another attempt still running is this one's retry.
        if (this.#active.size > 0) return;
        if (!retryAllowed(this.source, this.o, e, this.#retries, lease.member.key)) return this.#fail(e);
        this.#acquireAndLaunch(true);
      },
    );
  }

  /**
   * The attempt settled: its controller may serve another attempt — unless it
   * was combined with the caller's signal, or a streamed response still runs
   * on it (a kept lease: cancelling the call cancels the body); the pool
   * itself drops one that aborted or that something still listens on.
   */
  #giveBack(run: Running<C>, ctx: Context): void {
    if (!this.o.signal && !ctx.kept) aborts.give(run.cancel);
  }

  #reason(hedge: boolean): AttemptReason {
    if (hedge) return "hedge";
    if (this.#attempts === 1) return "first";
    return this.#lastFailure?.unprocessed ? "retry-unprocessed" : "retry-idempotent";
  }

  /**
   * Ends the call: no more hedges, every other attempt cancelled. When it
   * ends with an answer, a first attempt still running is cut short by it:
   * its latency is at least the time it ran (a censored sample), and that
   * is what the delay learns.
   */
  #finish(answered: boolean): void {
    this.#done = true;
    this.#answered = answered;
    this.#timer?.cancel();
    if (this.#refused) this.timing.leaveLine(this.#granted);
    const now = answered ? this.source.clock.now() : 0;
    for (const r of this.#active) {
      if (answered && r.first) this.timing.record(now - r.started);
      r.cancel.abort();
    }
    if (this.trace) {
      this.trace.retries = this.#retries;
      this.trace.hedges = this.#hedges;
    }
  }

  #fail(e: DialtoneError): void {
    if (this.#done) return;
    this.#finish(false);
    this.reject(e);
  }
}

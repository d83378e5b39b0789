import type { Timer } from "../core/clock.js";
import { ClosedError, RequestError, RequestTimeoutError, type DialtoneError } from "../core/errors.js";
import type { AttemptOutcome } from "../pool/outlier.js";
import { mayRetry, memberFailure, settle } from "./classify.js";
import type { HedgeTiming } from "./hedge-timing.js";
import type { Attempt, DispatchLease, DispatchOptions, LeaseSource, Trace } from "./lease.js";

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
 * A failed attempt is retried as in the plain pipeline (maxRetries, within
 * the budget) only when no other attempt is still running: a hedge in
 * flight is already the retry. A failure that may not be retried (the
 * call's deadline, bad input) ends the call at once.
 */
export function hedgedAttempts<C, T>(source: LeaseSource<C>, o: DispatchOptions, attempt: Attempt<C, T>, trace: Trace | undefined, timing: HedgeTiming): Promise<T> {
  return new Promise<T>((resolve, reject) => new HedgedCall(source, o, attempt, trace, timing, resolve, reject).start());
}

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
  readonly #granted = (): void => this.#send();
  #timer: Timer | undefined;

  constructor(
    private readonly source: LeaseSource<C>,
    private readonly o: DispatchOptions,
    private readonly attempt: Attempt<C, T>,
    private readonly trace: Trace | undefined,
    private readonly timing: HedgeTiming,
    private readonly resolve: (v: T) => void,
    private readonly reject: (e: DialtoneError) => void,
  ) {
    this.#deadline = source.clock.now() + o.timeout;
  }

  start(): void {
    const now = this.#deadline - this.o.timeout;
    this.o.budget?.deposit(now);
    this.timing.deposit(now);
    this.#acquireAndLaunch(false);
  }

  #remaining(): number {
    return this.#deadline - this.source.clock.now();
  }

  /** The first attempt, or a retry: may wait (bounded) in the acquire queue. */
  #acquireAndLaunch(retry: boolean): void {
    const remaining = this.#remaining();
    if (remaining <= 0) return this.#fail(new RequestTimeoutError(this.o.target, undefined, this.o.timeout));
    this.source.acquire(this.o.signal, Math.min(this.o.acquireTimeout, remaining)).then(
      (lease) => {
        if (this.#done) return lease.release();
        if (retry) this.#retries++;
        this.#launch(lease, false);
        if (!retry) this.#armHedge();
      },
      (err: unknown) => {
        if (this.#active.size === 0) this.#fail(settle(err, this.o));
      },
    );
  }

  #armHedge(): void {
    const delay = this.timing.delayMs();
    if (delay === undefined || this.#hedges >= this.timing.max || this.#done) return;
    this.#timer = this.source.clock.setTimeout(() => this.#hedge(), delay);
  }

  #hedge(): void {
    this.#timer = undefined;
    if (this.#done || this.#remaining() <= 0) return;
    // A one-shot body already read cannot be sent twice.
    if (this.o.replayable && !this.o.replayable()) return;
    // maxExtraLoad first, as Finagle's backup requests do: it is the tighter bound, so the shared
    // budget (retries need it too) is rarely drawn for a hedge that then may not go. Past it the
    // call waits in line, and the next room the budget makes goes to the call that has waited
    // longest: a call still waiting long after the delay is more likely stuck than slow.
    if (!this.timing.tryWithdraw(this.#granted)) {
      if (!this.#refused) {
        this.#refused = true;
        const waiting = this.#active.values().next().value;
        this.source.events.emit({ type: "retry-budget-exhausted", kind: "hedge-load", address: waiting?.lease.member.key ?? "" });
      }
      return;
    }
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
    if (this.o.budget && !this.o.budget.tryWithdraw()) {
      lease.release();
      this.source.events.emit({ type: "retry-budget-exhausted", kind: "hedge", address: lease.member.key });
      return;
    }
    this.#hedges++;
    this.#launch(lease, true);
    this.#armHedge();
  }

  #launch(lease: DispatchLease<C>, hedge: boolean): void {
    const cancel = new AbortController();
    const signal = this.o.signal ? AbortSignal.any([this.o.signal, cancel.signal]) : cancel.signal;
    const started = this.source.clock.now();
    const run: Running<C> = { lease, cancel, hedge, first: this.#attempts === 0, started };
    this.#active.add(run);
    let kept = false;
    let verdict: AttemptOutcome = "ok";
    const ctx = { budgetMs: Math.max(1, this.#deadline - started), attempt: ++this.#attempts, signal, keepLease: () => (kept = true), classify: (v: AttemptOutcome) => (verdict = v) };
    this.attempt(lease, ctx).then(
      (res) => {
        this.#active.delete(run);
        lease.report?.(verdict);
        const latency = this.source.clock.now() - started;
        if (!kept) lease.release(latency);
        else lease.answered?.();
        if (this.#done) return;
        if (run.first) this.timing.record(latency);
        this.#finish(true);
        if (this.trace) {
          this.trace.address = lease.member.key;
          this.trace.hedgeWon = hedge;
        }
        this.resolve(res);
      },
      (err: unknown) => {
        this.#active.delete(run);
        lease.release();
        if (this.#done) return;
        if (lease.closedByChannel) return this.#fail(new ClosedError(`channel ${this.o.target}`));
        const e = settle(err, this.o);
        if (memberFailure(e)) lease.report?.("local");
        if (this.trace) this.trace.address = lease.member.key;
        if (!(e instanceof RequestError) || !mayRetry(e, this.o)) return this.#fail(e);
        this.source.noteError(e);
        // Another attempt still running is this one's retry.
        if (this.#active.size > 0) return;
        if (this.#retries >= this.o.maxRetries) return this.#fail(e);
        if (this.o.budget && !this.o.budget.tryWithdraw()) {
          this.source.events.emit({ type: "retry-budget-exhausted", kind: "retry", address: lease.member.key });
          return this.#fail(e);
        }
        this.#acquireAndLaunch(true);
      },
    );
  }

  /**
   * Ends the call: no more hedges, every other attempt cancelled. When it
   * ends with an answer, a first attempt still running is cut short by it:
   * its latency is at least the time it ran (a censored sample), and that
   * is what the delay learns.
   */
  #finish(answered: boolean): void {
    this.#done = true;
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

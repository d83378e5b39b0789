import { ClosedError, RequestError, type DialtoneError } from "../core/errors.js";
import type { AttemptOutcome } from "../pool/outlier.js";
import { mayRetry, memberFailure, settle } from "./classify.js";
import type { AttemptContext, DispatchLease, DispatchOptions, LeaseSource } from "./lease.js";

/**
 * One attempt, written once: what happens before, after and around an
 * attempt on a leased member, whichever policy sent it. The retry loop
 * (pipeline.ts) and hedging (hedge.ts) are wrappers around these steps, as
 * undici's interceptors wrap `dispatch` and tower's layers wrap a Service:
 * a new per-attempt rule (how a lease is released, what counts against a
 * member, what the retry budget allows) goes here and holds for both.
 *
 * Plain functions and one small class, so a call allocates no closures and
 * pays no promise layer for them (the request path's cost, issue 15).
 */

/** One attempt's context (a class: one allocation, no closures per attempt). */
export class Context implements AttemptContext {
  kept = false;
  verdict: AttemptOutcome = "ok";
  /** Set only by a diagnostics subscriber (traced-call.ts). */
  headers: Record<string, string> | undefined = undefined;
  status: number | undefined = undefined;
  constructor(
    readonly budgetMs: number,
    readonly attempt: number,
    readonly signal: AbortSignal | undefined,
  ) {}

  keepLease(): void {
    this.kept = true;
  }

  classify(outcome: AttemptOutcome): void {
    this.verdict = outcome;
  }
}

/**
 * A member for an attempt: one free now is taken without a promise; else the
 * call waits in the bounded queue for at most acquireTimeout (or what is left
 * of its deadline). A failed wait rejects with the call's own error (an abort
 * is AbortedError, whoever noticed it).
 */
export function acquireLease<C>(source: LeaseSource<C>, o: DispatchOptions, remainingMs: number, now: number): DispatchLease<C> | Promise<DispatchLease<C>> {
  const free = source.tryAcquire?.(undefined, now);
  if (free) return free;
  return source.acquire(o.signal, Math.min(o.acquireTimeout, remainingMs)).catch((err: unknown) => {
    throw settle(err, o);
  });
}

/**
 * The attempt answered: its outcome goes to outlier ejection, and its lease
 * is released with the latency — or, for a streamed response it keeps, marked
 * answered. Returns the clock reading it ended at.
 */
export function attemptAnswered<C>(source: LeaseSource<C>, lease: DispatchLease<C>, ctx: Context, started: number): number {
  lease.report?.(ctx.verdict);
  const end = source.clock.now();
  // A kept lease resolved at its response head: the member answered, the body still streams.
  if (!ctx.kept) lease.release(end - started, end);
  else lease.answered?.();
  return end;
}

/**
 * The attempt failed: its lease is released, and the failure becomes the
 * call's error — ClosedError when close() cut the member (closing is its own
 * reason), AbortedError for an abort, else a DialtoneError. A failure of the
 * member (not the caller's input) counts against it for outlier ejection,
 * and a request-level failure is the channel's most recent error.
 */
export function attemptFailed<C>(source: LeaseSource<C>, o: DispatchOptions, lease: DispatchLease<C>, err: unknown): DialtoneError {
  lease.release();
  if (lease.closedByChannel) return new ClosedError(`channel ${o.target}`);
  const failure = settle(err, o);
  if (memberFailure(failure)) lease.report?.("local");
  if (failure instanceof RequestError) source.noteError(failure);
  return failure;
}

/**
 * May the call send again after `e`? Only what the protocol proves
 * unprocessed, or any failure of a call marked idempotent; at most maxRetries
 * times; and only within the retry budget (a refusal is an event).
 */
export function retryAllowed<C>(source: LeaseSource<C>, o: DispatchOptions, e: DialtoneError, retriesSoFar: number, address: string): boolean {
  if (!(e instanceof RequestError) || !mayRetry(e, o) || retriesSoFar >= o.maxRetries) return false;
  return budgetAllows(source, o, "retry", address);
}

/** Retries and hedges are paid from the channel's one budget; past it, nothing extra goes out and the refusal is an event. */
export function budgetAllows<C>(source: LeaseSource<C>, o: DispatchOptions, kind: "retry" | "hedge", address: string): boolean {
  if (!o.budget || o.budget.tryWithdraw()) return true;
  source.events.emit({ type: "retry-budget-exhausted", kind, address });
  return false;
}

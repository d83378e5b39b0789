import { AbortedError, ClosedError, DialtoneError, RequestError, RequestTimeoutError } from "../core/errors.js";
import type { AttemptOutcome } from "../pool/outlier.js";
import { mayRetry, memberFailure, outcomeOf, settle } from "./classify.js";
import { hedgedAttempts } from "./hedge.js";
import type { Attempt, AttemptContext, DispatchOptions, LeaseSource, Trace } from "./lease.js";

export type { Attempt, AttemptContext, DispatchLease, DispatchOptions, LeaseSource } from "./lease.js";

/**
 * The one request pipeline every operation goes through: acquire a member
 * (bounded queue, acquireTimeout), run one attempt on it, classify a failure,
 * and send again on another member only when the protocol proves the first
 * attempt was not processed (`RequestError.unprocessed`) or the caller said
 * the call may be repeated — within the channel's retry budget. Retry is a
 * decision around the attempt, as undici's retry interceptor wraps
 * `dispatch`; hedging (hedge.ts) is another such wrapper, taken for
 * idempotent calls when the channel has a hedge policy.
 *
 * Every rejection is a DialtoneError: an abort becomes AbortedError with the
 * signal's reason as `cause`, whatever part of the pipeline noticed it.
 */
export function dispatch<C, T>(source: LeaseSource<C>, options: DispatchOptions, attempt: Attempt<C, T>): Promise<T> {
  const run = options.hedge && options.idempotent === true && source.tryAcquire ? options.hedge : undefined;
  // Outcome events cost an allocation per call, so only when someone listens.
  const trace: Trace | undefined = source.events.size === 0 ? undefined : { retries: 0, hedges: 0, hedgeWon: false, address: undefined, started: source.clock.now() };
  if (!run) return attempts(source, options, attempt, trace);
  return trace ? tracedHedge(source, options, attempt, trace) : hedged(source, options, attempt, undefined);
}

/** The request event: one per call, however it ended. */
function emitRequest<C>(source: LeaseSource<C>, trace: Trace, err: unknown, end = source.clock.now()): void {
  const failed = err !== undefined;
  source.events.emit({
    type: "request",
    outcome: failed ? outcomeOf(err) : "ok",
    durationMs: end - trace.started,
    retries: trace.retries,
    hedges: trace.hedges,
    hedgeWon: trace.hedgeWon,
    code: failed && err instanceof DialtoneError ? err.code : undefined,
    address: trace.address,
  });
}

async function tracedHedge<C, T>(source: LeaseSource<C>, options: DispatchOptions, attempt: Attempt<C, T>, trace: Trace): Promise<T> {
  try {
    const res = await hedged(source, options, attempt, trace);
    emitRequest(source, trace, undefined);
    return res;
  } catch (err) {
    emitRequest(source, trace, err);
    throw err;
  }
}

function hedged<C, T>(source: LeaseSource<C>, o: DispatchOptions, attempt: Attempt<C, T>, trace: Trace | undefined): Promise<T> {
  if (o.signal?.aborted) return Promise.reject(new AbortedError(o.target, o.signal.reason));
  return hedgedAttempts(source, o, attempt, trace, o.hedge as NonNullable<DispatchOptions["hedge"]>);
}

/**
 * The plain pipeline. With a trace it also emits the call's request event
 * from inside — success just before returning, failure in the outer catch —
 * so listeners cost no async layer of their own.
 */
async function attempts<C, T>(source: LeaseSource<C>, o: DispatchOptions, attempt: Attempt<C, T>, trace: Trace | undefined): Promise<T> {
  try {
    const signal = o.signal;
    if (signal) {
      if (signal.aborted) throw new AbortedError(o.target, signal.reason);
      // A member free now is taken without waiting, so yield once here: a call
      // its caller aborts in the same tick must send nothing.
      await Promise.resolve();
      if (signal.aborted) throw new AbortedError(o.target, signal.reason);
    }
    const clock = source.clock;
    const begun = clock.now();
    // The budget reads the same clock: one read for both.
    o.budget?.deposit(begun);
    const deadline = begun + o.timeout;
    let last: unknown;
    for (let n = 1; n <= 1 + o.maxRetries; n++) {
      // The first attempt starts at `begun`; one clock read serves the pick, the budget and the latency.
      let now = n === 1 ? begun : clock.now();
      const remaining = deadline - now;
      if (remaining <= 0) throw last ?? new RequestTimeoutError(o.target, undefined, o.timeout);
      // A member free now is taken without a promise; only a wait goes through the queue.
      let lease = source.tryAcquire?.(undefined, now);
      if (!lease) {
        try {
          lease = await source.acquire(signal, Math.min(o.acquireTimeout, remaining));
        } catch (err) {
          throw settle(err, o);
        }
        // The wait took time: the attempt starts when the member came.
        now = clock.now();
      }
      if (trace) {
        trace.retries = n - 1;
        trace.address = lease.member.key;
      }
      const started = now;
      const ctx = new Context(Math.max(1, deadline - started), n, signal);
      try {
        const res = await attempt(lease, ctx);
        lease.report?.(ctx.verdict);
        const end = clock.now();
        const latency = end - started;
        // A kept lease resolved at its response head: the member answered, the body still streams.
        if (!ctx.kept) lease.release(latency, end);
        else lease.answered?.();
        // A p95 hedge delay learns from every call, hedged or not.
        o.hedge?.record(latency);
        if (trace) emitRequest(source, trace, undefined, end);
        return res;
      } catch (err) {
        lease.release();
        // Closing is its own reason: a request cut by close() is not a stream or member failure.
        if (lease.closedByChannel) throw new ClosedError(`channel ${o.target}`);
        const failure = settle(err, o);
        last = failure;
        if (memberFailure(failure)) lease.report?.("local");
        if (!(last instanceof RequestError)) throw last;
        source.noteError(last);
        if (!mayRetry(last, o)) throw last;
        // Past the budget no retry goes out: the caller gets this attempt's error.
        if (n <= o.maxRetries && o.budget && !o.budget.tryWithdraw()) {
          source.events.emit({ type: "retry-budget-exhausted", kind: "retry", address: lease.member.key });
          throw last;
        }
      }
    }
    throw last;
  } catch (err) {
    if (trace) emitRequest(source, trace, err);
    throw err;
  }
}

/** One attempt's context (a class: one allocation, no closures per attempt). */
class Context implements AttemptContext {
  kept = false;
  verdict: AttemptOutcome = "ok";
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

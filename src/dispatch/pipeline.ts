import { AbortedError, DialtoneError, RequestTimeoutError, type RequestError } from "../core/errors.js";
import { Context, acquireLease, attemptAnswered, attemptFailed, retryAllowed } from "./attempt.js";
import { outcomeOf } from "./classify.js";
import { hedgedAttempts } from "./hedge.js";
import type { Attempt, DispatchOptions, LeaseSource, Trace } from "./lease.js";
import { TracedCall } from "./traced-call.js";

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
  const trace: Trace | undefined =
    source.events.size === 0 ? undefined : { retries: 0, hedges: 0, hedgeWon: false, address: undefined, started: source.clock.now() };
  // Diagnostics messages: the channel gave `info` only because someone subscribes.
  const diag = options.info === undefined ? undefined : new TracedCall(options, source.events);
  if (!run) return attempts(source, options, attempt, trace, diag);
  return trace || diag ? tracedHedge(source, options, attempt, trace, diag) : hedged(source, options, attempt, undefined, undefined);
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

async function tracedHedge<C, T>(
  source: LeaseSource<C>,
  options: DispatchOptions,
  attempt: Attempt<C, T>,
  trace: Trace | undefined,
  diag: TracedCall | undefined,
): Promise<T> {
  try {
    const res = await hedged(source, options, attempt, trace, diag);
    if (trace) emitRequest(source, trace, undefined);
    return res;
  } catch (err) {
    if (trace) emitRequest(source, trace, err);
    diag?.failed(err, undefined);
    throw err;
  }
}

function hedged<C, T>(source: LeaseSource<C>, o: DispatchOptions, attempt: Attempt<C, T>, trace: Trace | undefined, diag: TracedCall | undefined): Promise<T> {
  if (o.signal?.aborted) return Promise.reject(new AbortedError(o.target, o.signal.reason));
  return hedgedAttempts(source, o, attempt, trace, o.hedge as NonNullable<DispatchOptions["hedge"]>, diag);
}

/**
 * The retry wrapper around one attempt (attempt.ts): acquire, attempt, and on
 * a failure send again only as retryAllowed() says. With a trace it also
 * emits the call's request event from inside — success just before
 * returning, failure in the outer catch — so listeners cost no async layer
 * of their own.
 */
async function attempts<C, T>(
  source: LeaseSource<C>,
  o: DispatchOptions,
  attempt: Attempt<C, T>,
  trace: Trace | undefined,
  diag: TracedCall | undefined,
): Promise<T> {
  let address: string | undefined;
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
    // A traced call read the clock when it began (dispatch): the same reading starts its deadline.
    const begun = trace ? trace.started : clock.now();
    // The budget reads the same clock: one read for both.
    o.budget?.deposit(begun);
    const deadline = begun + o.timeout;
    let last: DialtoneError | undefined;
    for (let n = 1; ; n++) {
      // The first attempt starts at `begun`; one clock read serves the pick, the budget and the latency.
      let now = n === 1 ? begun : clock.now();
      const remaining = deadline - now;
      if (remaining <= 0) throw last ?? new RequestTimeoutError(o.target, undefined, o.timeout);
      let lease = acquireLease(source, o, remaining, now);
      if (lease instanceof Promise) {
        lease = await lease;
        // The wait took time: the attempt starts when the member came.
        now = clock.now();
      }
      if (trace) {
        trace.retries = n - 1;
        trace.address = lease.member.key;
      }
      const ctx = new Context(Math.max(1, deadline - now), n, signal);
      const traced = diag?.attempt(ctx, lease, n === 1 ? "first" : (last as RequestError).unprocessed ? "retry-unprocessed" : "retry-idempotent");
      try {
        const res = await attempt(lease, ctx);
        const end = attemptAnswered(source, lease, ctx, now);
        // A p95 hedge delay learns from every call, hedged or not.
        o.hedge?.record(end - now);
        if (trace) emitRequest(source, trace, undefined, end);
        traced?.answered(res, true);
        return res;
      } catch (err) {
        last = attemptFailed(source, o, lease, err);
        traced?.failed(last);
        address = lease.member.key;
        if (!retryAllowed(source, o, last, n - 1, lease.member.key)) throw last;
      }
    }
  } catch (err) {
    if (trace) emitRequest(source, trace, err);
    diag?.failed(err, address);
    throw err;
  }
}

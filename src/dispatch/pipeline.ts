import { AbortedError, ClosedError, DialtoneError, NoMemberError, OverloadedError, QueueFullError, RequestError, RequestTimeoutError } from "../core/errors.js";
import type { ChannelEvent, RequestOutcome } from "../core/events.js";
import type { Listeners } from "../core/listeners.js";
import type { RetryBudget } from "./retry-budget.js";

/** A picked member, held for one attempt; release it exactly once. */
export interface DispatchLease<C> {
  readonly member: { readonly key: string };
  readonly connection: C;
  /** True once close() cut this lease's member at closeGrace: the call failed because the channel closed. */
  readonly closedByChannel?: boolean;
  /** The attempt resolved but keeps its lease (a streamed body): the member answered. */
  answered?(): void;
  release(latencyMs?: number): void;
}

/** Where leases come from: the supervisor, seen only through what dispatch needs. */
export interface LeaseSource<C> {
  acquire(signal: AbortSignal | undefined, timeoutMs: number): Promise<DispatchLease<C>>;
  /** Records a request-level failure as the channel's most recent error. */
  noteError(error: Error): void;
  readonly events: Listeners<ChannelEvent>;
}

export interface DispatchOptions {
  /** Named in every error. */
  target: string;
  signal?: AbortSignal | undefined;
  /** Budget for the whole call: waiting for a member, attempts, retries (ms). */
  timeout: number;
  /** The caller asserts the call may be repeated. */
  idempotent?: boolean | undefined;
  maxRetries: number;
  acquireTimeout: number;
  /** False once the request can no longer be sent again (a one-shot body was read). */
  replayable?: () => boolean;
  /** The channel's retry budget, shared by all its calls; undefined: no budget. */
  budget?: RetryBudget | undefined;
}

export interface AttemptContext {
  /** ms left of the call's budget when the attempt started. */
  readonly budgetMs: number;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /**
   * The attempt keeps its lease past success (a streamed response still in
   * flight) and will release it itself.
   */
  keepLease(): void;
}

export type Attempt<C, T> = (lease: DispatchLease<C>, ctx: AttemptContext) => Promise<T>;

interface Trace {
  retries: number;
  address: string | undefined;
}

/**
 * The one request pipeline every operation goes through: acquire a member
 * (bounded queue, acquireTimeout), run one attempt on it, classify a failure,
 * and send again on another member only when the protocol proves the first
 * attempt was not processed (`RequestError.unprocessed`) or the caller said
 * the call may be repeated. Retry is a decision around the attempt, as
 * undici's retry interceptor wraps `dispatch`; later wrappers (hedging,
 * budgets) sit here too.
 *
 * Every rejection is a DialtoneError: an abort becomes AbortedError with the
 * signal's reason as `cause`, whatever part of the pipeline noticed it.
 */
export async function dispatch<C, T>(source: LeaseSource<C>, options: DispatchOptions, attempt: Attempt<C, T>): Promise<T> {
  // Outcome events cost an allocation per call, so only when someone listens.
  if (source.events.size === 0) return attempts(source, options, attempt, undefined);
  const started = performance.now();
  const trace: Trace = { retries: 0, address: undefined };
  try {
    const res = await attempts(source, options, attempt, trace);
    source.events.emit({ type: "request", outcome: "ok", durationMs: performance.now() - started, retries: trace.retries, code: undefined, address: trace.address });
    return res;
  } catch (err) {
    const code = err instanceof DialtoneError ? err.code : undefined;
    source.events.emit({ type: "request", outcome: outcomeOf(err), durationMs: performance.now() - started, retries: trace.retries, code, address: trace.address });
    throw err;
  }
}

async function attempts<C, T>(source: LeaseSource<C>, o: DispatchOptions, attempt: Attempt<C, T>, trace: Trace | undefined): Promise<T> {
  const signal = o.signal;
  if (signal?.aborted) throw new AbortedError(o.target, signal.reason);
  o.budget?.deposit();
  const deadline = performance.now() + o.timeout;
  let last: unknown;
  for (let n = 1; n <= 1 + o.maxRetries; n++) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) throw last ?? new RequestTimeoutError(o.target, undefined, o.timeout);
    let lease: DispatchLease<C>;
    try {
      lease = await source.acquire(signal, Math.min(o.acquireTimeout, remaining));
    } catch (err) {
      throw settle(err, o);
    }
    if (trace) {
      trace.retries = n - 1;
      trace.address = lease.member.key;
    }
    const started = performance.now();
    let kept = false;
    try {
      const res = await attempt(lease, { budgetMs: Math.max(1, deadline - started), attempt: n, keepLease: () => (kept = true) });
      // A kept lease resolved at its response head: the member answered, the body still streams.
      if (!kept) lease.release(performance.now() - started);
      else lease.answered?.();
      return res;
    } catch (err) {
      lease.release();
      // Closing is its own reason: a request cut by close() is not a stream or member failure.
      if (lease.closedByChannel) throw new ClosedError(`channel ${o.target}`);
      last = settle(err, o);
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
}

/** Retry only what HTTP/2 (or NATS) proves unprocessed, or what the caller called idempotent. */
function mayRetry(err: RequestError, o: DispatchOptions): boolean {
  if (err instanceof RequestTimeoutError || err.code === "ERR_DIALTONE_BAD_REQUEST" || err.code === "ERR_DIALTONE_REQUEST_BODY") return false;
  if (o.replayable && !o.replayable()) return false;
  return err.unprocessed || o.idempotent === true;
}

/**
 * The error the caller sees: an abort is AbortedError whoever noticed it
 * first (the queue, the stream, a timer), and nothing outside the taxonomy
 * escapes.
 */
function settle(err: unknown, o: DispatchOptions): DialtoneError {
  if (err instanceof AbortedError) return err;
  if (o.signal?.aborted && !(err instanceof ClosedError)) return new AbortedError(o.target, o.signal.reason);
  if (err instanceof DialtoneError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  return new RequestError("ERR_DIALTONE_STREAM", o.target, undefined, e.message, false, { cause: err });
}

function outcomeOf(err: unknown): RequestOutcome {
  if (err instanceof RequestTimeoutError) return "timeout";
  if (err instanceof NoMemberError) return "no-member";
  if (err instanceof QueueFullError) return "queue-full";
  if (err instanceof OverloadedError) return "overloaded";
  if (err instanceof ClosedError) return "closed";
  if (err instanceof AbortedError) return "aborted";
  return "error";
}

import { AbortedError, ClosedError, DialtoneError, NoMemberError, OverloadedError, QueueFullError, RequestError, RequestTimeoutError } from "../core/errors.js";
import type { RequestOutcome } from "../core/events.js";
import type { DispatchOptions } from "./lease.js";

/** Retry only what HTTP/2 (or NATS) proves unprocessed, or what the caller called idempotent. */
export function mayRetry(err: RequestError, o: DispatchOptions): boolean {
  // The caller's own body stream failing is not the member's doing, and repeating it cannot help.
  if (err instanceof RequestTimeoutError || err.code === "ERR_DIALTONE_REQUEST_BODY") return false;
  if (o.replayable && !o.replayable()) return false;
  return err.unprocessed || o.idempotent === true;
}

/**
 * The error the caller sees: an abort is AbortedError whoever noticed it
 * first (the queue, the stream, a timer), and nothing outside the taxonomy
 * escapes.
 */
export function settle(err: unknown, o: DispatchOptions): DialtoneError {
  if (err instanceof AbortedError) return err;
  if (o.signal?.aborted && !(err instanceof ClosedError)) return new AbortedError(o.target, o.signal.reason);
  if (err instanceof DialtoneError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  return new RequestError("ERR_DIALTONE_STREAM", o.target, undefined, e.message, false, { cause: err });
}

/** A failure that is the member's (reset, timeout, connection lost), not the caller's input or an abort: a local failure for outlier ejection. */
export function memberFailure(e: DialtoneError): boolean {
  return e instanceof RequestError && e.code !== "ERR_DIALTONE_REQUEST_BODY";
}

export function outcomeOf(err: unknown): RequestOutcome {
  if (err instanceof RequestTimeoutError) return "timeout";
  if (err instanceof NoMemberError) return "no-member";
  if (err instanceof QueueFullError) return "queue-full";
  if (err instanceof OverloadedError) return "overloaded";
  if (err instanceof ClosedError) return "closed";
  if (err instanceof AbortedError) return "aborted";
  return "error";
}

import diagnosticsChannel from "node:diagnostics_channel";
import type { RequestOutcome } from "../core/events.js";

/**
 * dialtone's own diagnostics channels (node:diagnostics_channel), published
 * by the dispatch layer for every call of every channel, whatever its
 * protocol or adapter: what a tracer (`dialtone/otel`) or a logger needs to
 * see a call, each attempt it made, why, on which member, and how each
 * ended. Nothing is built or published while nobody subscribes: a call
 * checks `hasSubscribers` once.
 *
 * The messages of one call share one `call` object (and one attempt's two
 * messages one `attempt` number), so a subscriber can correlate them by
 * identity, as undici's `request` object is shared by its channels.
 */

/** What a call is: set by the channel before it is dispatched. */
export interface CallInfo {
  /** "http2" or "nats". */
  readonly protocol: "http2" | "nats";
  /** The channel method: request, requestStream, stream (HTTP/2); request, publish (NATS). */
  readonly operation: "request" | "requestStream" | "stream" | "publish";
  /** HTTP/2: the request method. */
  readonly method?: string;
  /** HTTP/2: the request path (with its query). */
  readonly path?: string;
  /** NATS: the subject. */
  readonly subject?: string;
  /**
   * HTTP/2: the request's headers as the caller gave them (read-only: a
   * tracer looks for a `traceparent` already there, to parent its span).
   */
  readonly headers?: Readonly<Record<string, unknown>>;
}

/** `dialtone:call:start`: a call enters the dispatch pipeline. Also the `call` of every later message of that call. */
export interface CallStartMessage extends CallInfo {
  /** The channel's name (its metrics label). */
  readonly channel: string;
  /** The channel's target, credentials masked (`https://***@host`). */
  readonly target: string;
  /** The caller marked the call idempotent: it may be retried after any failure, and hedged. */
  readonly idempotent: boolean;
}

/**
 * Why an attempt went out: the call's first; a retry after the protocol
 * proved the previous attempt unprocessed (HTTP/2 REFUSED_STREAM, above a
 * GOAWAY's last-stream-id, not sent; a NATS member lost before sending); a
 * retry of an idempotent call after another failure; or a hedge sent while
 * another attempt was still running.
 */
export type AttemptReason = "first" | "retry-unprocessed" | "retry-idempotent" | "hedge";

/** `dialtone:attempt:start`: an attempt is about to go out on a picked member. */
export interface AttemptStartMessage {
  readonly call: CallStartMessage;
  /** 1 for the call's first attempt, counting retries and hedges alike. */
  readonly attempt: number;
  readonly reason: AttemptReason;
  /** The member's address, `ip:port` (`[v6]:port`). */
  readonly address: string;
  /**
   * Adds a header to this attempt's request (HTTP/2 header, NATS message
   * header), e.g. `traceparent`: valid only during the publish. A name or
   * value the protocol would refuse is dropped, never the call's failure.
   */
  setHeader(name: string, value: string): void;
}

/**
 * How an attempt ended: "ok" (an answer: any HTTP status), "error" (it
 * failed: `error` says why), or "cancelled" (a hedge that lost, cut by the
 * call once another attempt won).
 */
export type AttemptEndOutcome = "ok" | "error" | "cancelled";

/**
 * `dialtone:attempt:end`: an attempt ended. For a streamed response
 * (requestStream, stream) an attempt that answered ends when its stream
 * does, not at the response head.
 */
export interface AttemptEndMessage {
  readonly call: CallStartMessage;
  readonly attempt: number;
  readonly address: string;
  readonly outcome: AttemptEndOutcome;
  /** HTTP/2: the response status, when a head arrived. */
  readonly status: number | undefined;
  /** outcome "error": the failure (a DialtoneError, or what the stream failed with). */
  readonly error: Error | undefined;
}

/**
 * `dialtone:call:end`: the call ended — with its answer (for a streamed
 * response, when the stream ended) or its error.
 */
export interface CallEndMessage {
  readonly call: CallStartMessage;
  readonly outcome: RequestOutcome;
  /** The member whose answer (or last failure) ended the call; undefined when no member was reached. */
  readonly address: string | undefined;
  readonly status: number | undefined;
  readonly error: Error | undefined;
  /** Attempts sent, the first included. */
  readonly attempts: number;
}

/**
 * What happened to a member while an attempt was in flight on it: passive
 * suspicion, PINGs failing (`unhealthy`) or back (`ready`), an outlier
 * ejection, a drain (GOAWAY, NATS lame duck, address removed, …), or its
 * end (`closed`: lost, evicted, or closed with the channel).
 */
export type MemberChange = "suspect" | "unhealthy" | "ready" | "ejected" | "draining" | "closed";

/**
 * `dialtone:attempt:member`: the member an attempt is in flight on changed
 * state (the channel's own `state`, `suspect`, `ejected` and `draining`
 * events, as they happen). Published for each attempt in flight on that
 * member then — a streamed attempt until its stream ends — and for no
 * other: a call that did not live through the change never hears of it.
 */
export interface AttemptMemberMessage {
  readonly call: CallStartMessage;
  readonly attempt: number;
  readonly address: string;
  readonly change: MemberChange;
  /** Why, in the channel's words: the state event's reason, the DrainReason (`goaway`, …), the EjectionReason. */
  readonly reason: string;
}

export const callStart = diagnosticsChannel.channel("dialtone:call:start");
export const attemptStart = diagnosticsChannel.channel("dialtone:attempt:start");
export const attemptEnd = diagnosticsChannel.channel("dialtone:attempt:end");
export const callEnd = diagnosticsChannel.channel("dialtone:call:end");
export const attemptMember = diagnosticsChannel.channel("dialtone:attempt:member");

/** True when anyone listens to any of dialtone's channels: read once per call, and nothing else is paid when false. */
export function tracing(): boolean {
  return callStart.hasSubscribers || attemptStart.hasSubscribers || attemptEnd.hasSubscribers || callEnd.hasSubscribers || attemptMember.hasSubscribers;
}

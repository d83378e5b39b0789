import type { FamilyAnswer } from "./dns-answer.js";

/**
 * Every error dialtone throws is a DialtoneError with a stable `code`, so
 * callers can branch without parsing messages. Messages name the target, the
 * address and the cause, because that is what an operator needs at 3 a.m.
 */
export type DialtoneErrorCode =
  | "ERR_DIALTONE_CONFIG"
  | "ERR_DIALTONE_TARGET"
  | "ERR_DIALTONE_USAGE"
  | "ERR_DIALTONE_CONNECT"
  | "ERR_DIALTONE_PING_TIMEOUT"
  | "ERR_DIALTONE_UNHEALTHY"
  | "ERR_DIALTONE_DRAINING"
  | "ERR_DIALTONE_RESOLVE"
  | "ERR_DIALTONE_NO_MEMBER"
  | "ERR_DIALTONE_NOT_READY"
  | "ERR_DIALTONE_QUEUE_FULL"
  | "ERR_DIALTONE_OVERLOADED"
  | "ERR_DIALTONE_CLOSED"
  | "ERR_DIALTONE_GAVE_UP"
  | "ERR_DIALTONE_ABORTED"
  | "ERR_DIALTONE_BAD_REQUEST"
  | "ERR_DIALTONE_REQUEST_BODY"
  | "ERR_DIALTONE_NOT_SENT"
  | "ERR_DIALTONE_REFUSED_STREAM"
  | "ERR_DIALTONE_GOAWAY"
  | "ERR_DIALTONE_MEMBER_LOST"
  | "ERR_DIALTONE_STREAM"
  | "ERR_DIALTONE_INCOMPLETE_RESPONSE"
  | "ERR_DIALTONE_RESPONSE_TOO_LARGE"
  | "ERR_DIALTONE_REQUEST_TIMEOUT"
  | "ERR_DIALTONE_NO_RESPONDERS"
  | "ERR_DIALTONE_AUTH"
  | "ERR_DIALTONE_NATS";

/** Milliseconds as people read them: whole numbers ("1500 ms", never "1499.9986 ms"). */
export function ms(value: number): string {
  return `${Math.round(value)} ms`;
}

export class DialtoneError extends Error {
  readonly code: DialtoneErrorCode;
  constructor(code: DialtoneErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Bad configuration. Thrown at construction, never later. */
export class ConfigError extends DialtoneError {
  readonly option: string;
  /**
   * "duration": the option takes a number of milliseconds. Config files may
   * write "5s" there (the broker converts it); the library's own checks are
   * what says which options those are.
   */
  readonly expected: "duration" | undefined;
  constructor(option: string, message: string, expected?: "duration") {
    super("ERR_DIALTONE_CONFIG", `invalid option ${option}: ${message}`);
    this.option = option;
    this.expected = expected;
  }
}

/** A target or address string that cannot be parsed. */
export class TargetError extends DialtoneError {
  readonly target: string;
  constructor(target: string, message: string) {
    super("ERR_DIALTONE_TARGET", `invalid target ${JSON.stringify(target)}: ${message}`);
    this.target = target;
  }
}

/** Dialing one address failed (TCP, TLS, HTTP/2 handshake or first PING). */
export class ConnectError extends DialtoneError {
  readonly target: string;
  readonly address: string;
  constructor(target: string, address: string, message: string, options?: { cause?: unknown }) {
    super("ERR_DIALTONE_CONNECT", `${target} (${address}): ${message}`, options);
    this.target = target;
    this.address = address;
  }
}

/** A PING that got no PONG within its timeout. */
export class PingTimeoutError extends DialtoneError {
  constructor(timeoutMs: number) {
    super("ERR_DIALTONE_PING_TIMEOUT", `no PONG within ${ms(timeoutMs)}`);
  }
}

/** Resolving a target to addresses failed. */
export class ResolveError extends DialtoneError {
  readonly target: string;
  /** From the DNS resolver: what each family that gave no address answered, and from which server. */
  readonly answers: readonly FamilyAnswer[];
  constructor(target: string, message: string, options?: { cause?: unknown; answers?: readonly FamilyAnswer[] }) {
    super("ERR_DIALTONE_RESOLVE", `resolving ${target}: ${message}`, options && "cause" in options ? { cause: options.cause } : undefined);
    this.target = target;
    this.answers = options?.answers ?? [];
  }
}

/**
 * No usable member appeared within acquireTimeout. Names the target and the
 * last connection error, since "no member" alone explains nothing.
 */
export class NoMemberError extends DialtoneError {
  readonly target: string;
  readonly lastError: Error | undefined;
  constructor(target: string, waitedMs: number, lastError: Error | undefined) {
    super(
      "ERR_DIALTONE_NO_MEMBER",
      `${target}: no usable member within ${ms(waitedMs)}` +
        (lastError ? `; last connection error: ${lastError.message}` : "; no connection error recorded yet"),
      { cause: lastError },
    );
    this.target = target;
    this.lastError = lastError;
  }
}

/** ready() ran out of time before every member was connected and PINGed. */
export class NotReadyError extends DialtoneError {
  readonly target: string;
  readonly ready: number;
  readonly wanted: number;
  /** Why the channel has no address at all (which server answered what for which family), when it has none. */
  readonly noAddresses: string | undefined;
  constructor(target: string, ready: number, wanted: number, waitedMs: number, lastError: Error | undefined, noAddresses?: string) {
    super(
      "ERR_DIALTONE_NOT_READY",
      `${target}: ${ready} of ${wanted} members ready after ${ms(waitedMs)}` +
        (noAddresses !== undefined ? `; no address: ${noAddresses}` : lastError ? `; last connection error: ${lastError.message}` : ""),
      { cause: lastError },
    );
    this.target = target;
    this.ready = ready;
    this.wanted = wanted;
    this.noAddresses = noAddresses;
  }
}

/** The bounded acquire queue is full: shed load instead of queueing forever. */
export class QueueFullError extends DialtoneError {
  readonly target: string;
  constructor(target: string, limit: number, lastError: Error | undefined) {
    super(
      "ERR_DIALTONE_QUEUE_FULL",
      `${target}: ${limit} requests already waiting for a usable member` + (lastError ? `; last connection error: ${lastError.message}` : ""),
      { cause: lastError },
    );
    this.target = target;
  }
}

/**
 * maxOutstanding requests are already in flight: members that stopped
 * answering (all frozen, say) must not gather an unbounded pile, so the call
 * fails at once instead of joining it.
 */
export class OverloadedError extends DialtoneError {
  readonly target: string;
  readonly limit: number;
  constructor(target: string, limit: number, lastError: Error | undefined) {
    super(
      "ERR_DIALTONE_OVERLOADED",
      `${target}: ${limit} requests already in flight (maxOutstanding)` + (lastError ? `; last error: ${lastError.message}` : ""),
      { cause: lastError },
    );
    this.target = target;
    this.limit = limit;
  }
}

/** The channel (or Reconnect handle) was closed. */
export class ClosedError extends DialtoneError {
  constructor(what: string) {
    super("ERR_DIALTONE_CLOSED", `${what} is closed`);
  }
}

/** A Reconnect handle kept failing for longer than its backoff timeout. */
export class GaveUpError extends DialtoneError {
  readonly attempts: number;
  constructor(what: string, timeoutMs: number, attempts: number, cause: unknown) {
    super(
      "ERR_DIALTONE_GAVE_UP",
      `${what}: gave up after ${attempts} attempts over ${ms(timeoutMs)}` + (cause instanceof Error ? `; last error: ${cause.message}` : ""),
      { cause },
    );
    this.attempts = attempts;
  }
}

/** A request failed on the wire. `unprocessed` says whether the protocol proved the peer never processed it (so it may be sent again). */
export class RequestError extends DialtoneError {
  readonly target: string;
  readonly address: string | undefined;
  /** True when the protocol proves the peer did not process the request. */
  readonly unprocessed: boolean;
  constructor(code: DialtoneErrorCode, target: string, address: string | undefined, message: string, unprocessed: boolean, options?: { cause?: unknown }) {
    super(code, `${target}${address ? ` (${address})` : ""}: ${message}`, options);
    this.target = target;
    this.address = address;
    this.unprocessed = unprocessed;
  }
}

/** NATS: nobody is subscribed to the subject (the server said so at once). */
export class NoRespondersError extends RequestError {
  readonly subject: string;
  constructor(target: string, address: string | undefined, subject: string) {
    super("ERR_DIALTONE_NO_RESPONDERS", target, address, `no responders for ${JSON.stringify(subject)}`, false);
    this.subject = subject;
  }
}

/**
 * The member carrying a request was lost before its reply came. NATS is
 * at-most-once: the request may or may not have been processed.
 */
export class MemberLostError extends RequestError {
  constructor(target: string, address: string | undefined, detail: string, options?: { cause?: unknown }) {
    super("ERR_DIALTONE_MEMBER_LOST", target, address, `member lost before the reply: ${detail}`, false, options);
  }
}

/** A request that did not complete within its own timeout. */
export class RequestTimeoutError extends RequestError {
  constructor(target: string, address: string | undefined, timeoutMs: number) {
    super("ERR_DIALTONE_REQUEST_TIMEOUT", target, address, `request timed out after ${ms(timeoutMs)}`, false);
  }
}

/**
 * The caller's AbortSignal fired. The signal's reason is the `cause`, so a
 * caller that aborted with its own error can still find it.
 */
export class AbortedError extends DialtoneError {
  readonly target: string;
  constructor(target: string, reason: unknown, detail?: string) {
    const why = reason instanceof Error && reason.name !== "AbortError" ? `: ${reason.message}` : "";
    super("ERR_DIALTONE_ABORTED", `${target}: aborted by the caller${why}${detail ? ` (${detail})` : ""}`, { cause: reason });
    this.target = target;
  }
}

/**
 * The caller's input (method, path, a header, the body, a per-call option)
 * cannot be sent. Thrown before any member sees the request, never retried,
 * never counted against a member. `field` names what was wrong; header
 * values are never echoed (they may carry credentials).
 */
export class BadRequestError extends DialtoneError {
  readonly target: string;
  readonly field: string;
  /** "too-large" when the input is well-formed but over a size limit (an HTTP front end answers 431 or 413). */
  readonly reason: "invalid" | "too-large";
  constructor(target: string, field: string, message: string, options?: { cause?: unknown; reason?: "invalid" | "too-large" }) {
    super("ERR_DIALTONE_BAD_REQUEST", `${target}: bad request ${field}: ${message}`, options);
    this.target = target;
    this.field = field;
    this.reason = options?.reason ?? "invalid";
  }
}

/** Turns whatever was thrown into an Error, keeping Errors as they are. */
export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

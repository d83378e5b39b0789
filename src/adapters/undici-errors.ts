import { errors } from "undici";
import {
  BadRequestError,
  ClosedError,
  DialtoneError,
  NoMemberError,
  NotReadyError,
  OverloadedError,
  QueueFullError,
  RequestTimeoutError,
} from "../core/errors.js";

/**
 * The errors `dialtone/undici` raises are undici's own classes (from the
 * undici the caller installed, the adapter's peer), so `instanceof
 * errors.SocketError`, `err.code === "UND_ERR_BODY_TIMEOUT"` and fetch's
 * `TypeError: terminated` with its `cause` work as they do with undici's own
 * HTTP/2 client. The dialtone error behind one is its `cause`, with its own
 * code, target and address. The table of which dialtone error becomes which
 * undici error is in docs/adapters.md.
 */
type UndiciErrorClass = new (message: string) => Error;

/** How much of a response body arrived, against what its head declared. */
export interface BodyProgress {
  declared: number | undefined;
  received: number;
}

function short(b: BodyProgress): boolean {
  return b.declared !== undefined && b.received < b.declared;
}

/** Where the request was when it failed: undici's own client raises different errors before and after the response head. */
export type Phase = "before-head" | "after-head";

function make(Cls: UndiciErrorClass, message: string, cause?: unknown): Error {
  const err = new Cls(message);
  if (cause !== undefined) Object.defineProperty(err, "cause", { value: cause, writable: true, configurable: true, enumerable: false });
  return err;
}

export function notSupported(what: string): Error {
  return make(errors.NotSupportedError, `${what} is not supported through a dialtone channel`);
}

export function invalidArgument(message: string, cause?: unknown): Error {
  return make(errors.InvalidArgumentError, message, cause);
}

/** undici 8's exact words (its tests match them): no body data for `ms`. */
export function bodyTimeout(ms: number): Error {
  return make(errors.BodyTimeoutError, `HTTP/2: "stream timeout after ${Math.round(ms)}"`);
}

export function dispatcherClosed(): Error {
  return make(errors.ClientClosedError, "the dialtone dispatcher is closed");
}

export function dispatcherDestroyed(): Error {
  return make(errors.ClientDestroyedError, "the dialtone dispatcher was destroyed");
}

export function contentLengthMismatch(declared: string, actual: number): Error {
  return make(
    errors.RequestContentLengthMismatchError,
    `Request body length does not match content-length header (content-length says ${declared}, the body has ${actual} bytes)`,
  );
}

/** A body that closed without its end and without an error of its own: a premature close, as undici's client reports a lost stream. */
export function prematureClose(): Error {
  return make(errors.SocketError, "closed: the response body ended before it was complete");
}

/** Node's own HTTP/2 stream error (a peer's RST_STREAM with an error code), which undici's client hands its callers as is. */
function nodeStreamError(err: DialtoneError): (Error & { code: string }) | undefined {
  let c: unknown = err.cause;
  for (let i = 0; i < 3 && c instanceof Error; i++, c = c.cause) {
    if ((c as { code?: unknown }).code === "ERR_HTTP2_STREAM_ERROR") return c as Error & { code: string };
  }
  return undefined;
}

/**
 * The undici error for a dialtone error (or anything else thrown on the way),
 * as undici's own HTTP/2 client raises it in the same place. Messages start
 * with undici's and add dialtone's (target, address, what happened).
 */
export function toUndiciError(err: unknown, phase: Phase, body?: BodyProgress, headersTimeoutMs?: number): Error {
  if (!(err instanceof Error)) return make(errors.UndiciError, String(err));
  // undici's own errors, a handler's throw and a caller's abort reason pass through unchanged.
  if (!(err instanceof DialtoneError)) return err;
  const m = err.message;
  if (err instanceof RequestTimeoutError) {
    // undici's exact words when the dispatcher set the timeout; the channel's own requestTimeout says so in dialtone's.
    return make(
      errors.HeadersTimeoutError,
      headersTimeoutMs !== undefined ? `HTTP/2: "headers timeout after ${headersTimeoutMs}"` : `HTTP/2: "headers timeout": ${m}`,
      err,
    );
  }
  if (err instanceof BadRequestError) return make(errors.InvalidArgumentError, m, err);
  if (err instanceof NoMemberError || err instanceof QueueFullError || err instanceof OverloadedError || err instanceof NotReadyError) {
    return make(errors.ConnectTimeoutError, m, err);
  }
  switch (err.code) {
    case "ERR_DIALTONE_ABORTED":
      return make(errors.RequestAbortedError, `Request aborted: ${m}`, err);
    case "ERR_DIALTONE_RESPONSE_TOO_LARGE":
      return make(errors.ResponseExceededMaxSizeError, m, err);
    case "ERR_DIALTONE_GOAWAY":
      return make(errors.InformationalError, `HTTP/2: "GOAWAY" frame received: ${m}`, err);
    case "ERR_DIALTONE_NOT_SENT":
    case "ERR_DIALTONE_REFUSED_STREAM":
      return make(errors.InformationalError, `HTTP/2: stream not processed: ${m}`, err);
    case "ERR_DIALTONE_INCOMPLETE_RESPONSE":
      if (/content-length/.test(m))
        return make(errors.ResponseContentLengthMismatchError, `Response body length does not match content-length header: ${m}`, err);
      return make(errors.SocketError, `closed: ${m}`, err);
  }
  if (err instanceof ClosedError) return phase === "before-head" ? make(errors.ClientClosedError, m, err) : make(errors.SocketError, `closed: ${m}`, err);
  const rst = nodeStreamError(err);
  if (rst && body && short(body) && /PROTOCOL_ERROR/.test(rst.message)) {
    // Node resets a stream that ends short of its content-length with PROTOCOL_ERROR; undici 8 names the mismatch.
    return make(
      errors.ResponseContentLengthMismatchError,
      `Response body length does not match content-length header: ${body.received} of ${body.declared} bytes (${m})`,
      err,
    );
  }
  if (!rst && phase === "before-head" && err.code === "ERR_DIALTONE_STREAM") {
    // The peer ended the stream without an answer and without an error code: undici's exact words (its tests match them).
    return make(errors.InformationalError, "HTTP/2: stream half-closed (remote)", err);
  }
  if (rst) {
    // undici hands a peer's reset to its callers as Node's own error: same name, code and message, dialtone's detail after it.
    const e = make(Error, `${rst.message} (${m})`, err) as Error & { code: string };
    e.code = rst.code;
    return e;
  }
  return make(errors.SocketError, `other side closed: ${m}`, err);
}

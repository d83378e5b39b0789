import { BadRequestError, ClosedError, DialtoneError, NoMemberError, NotReadyError, OverloadedError, QueueFullError, RequestError, RequestTimeoutError } from "../core/errors.js";

/**
 * An error shaped like undici's own (same `name` and `code`), so code written
 * against undici — `err.code === "UND_ERR_HEADERS_TIMEOUT"`, fetch's
 * `TypeError: fetch failed` with its `cause` — keeps working. The dialtone
 * error that caused it is the `cause`, with its own code, target and address.
 * undici itself is not imported: the adapter works with whatever copy the
 * caller's fetch bundles.
 */
export class UndiciCompatibleError extends Error {
  readonly code: string;
  constructor(name: string, code: string, message: string, cause?: unknown) {
    super(message, { cause });
    this.name = name;
    this.code = code;
  }
}

export function notSupported(what: string): UndiciCompatibleError {
  return new UndiciCompatibleError("NotSupportedError", "UND_ERR_NOT_SUPPORTED", `${what} is not supported through a dialtone channel`);
}

export function bodyTimeout(ms: number): UndiciCompatibleError {
  return new UndiciCompatibleError("BodyTimeoutError", "UND_ERR_BODY_TIMEOUT", `no response body data for ${Math.round(ms)} ms`);
}

export function dispatcherClosed(): UndiciCompatibleError {
  return new UndiciCompatibleError("ClientClosedError", "UND_ERR_CLOSED", "the dialtone dispatcher is closed");
}

/** The undici-shaped error for a dialtone error (or anything else thrown on the way). */
export function toUndiciError(err: unknown): Error {
  if (err instanceof UndiciCompatibleError) return err;
  if (!(err instanceof DialtoneError)) return err instanceof Error ? err : new Error(String(err));
  const m = err.message;
  if (err instanceof RequestTimeoutError) return new UndiciCompatibleError("HeadersTimeoutError", "UND_ERR_HEADERS_TIMEOUT", m, err);
  if (err instanceof BadRequestError) return new UndiciCompatibleError("InvalidArgumentError", "UND_ERR_INVALID_ARG", m, err);
  if (err instanceof NoMemberError || err instanceof QueueFullError || err instanceof OverloadedError || err instanceof NotReadyError) {
    return new UndiciCompatibleError("ConnectTimeoutError", "UND_ERR_CONNECT_TIMEOUT", m, err);
  }
  if (err instanceof ClosedError) return new UndiciCompatibleError("ClientClosedError", "UND_ERR_CLOSED", m, err);
  if (err.code === "ERR_DIALTONE_ABORTED") return new UndiciCompatibleError("RequestAbortedError", "UND_ERR_ABORTED", m, err);
  if (err.code === "ERR_DIALTONE_RESPONSE_TOO_LARGE") return new UndiciCompatibleError("ResponseExceededMaxSizeError", "UND_ERR_RES_EXCEEDED_MAX_SIZE", m, err);
  if (err instanceof RequestError) return new UndiciCompatibleError("SocketError", "UND_ERR_SOCKET", m, err);
  return new UndiciCompatibleError("SocketError", "UND_ERR_SOCKET", m, err);
}

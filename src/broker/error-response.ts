import type { ServerResponse } from "node:http";
import type { Http2ServerResponse, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { BadRequestError, DialtoneError } from "../core/errors.js";

export type IngressResponse = ServerResponse | Http2ServerResponse;

/** What the client gets for a failure: a status it can act on, a stable code and one line of reason. */
export interface Failure {
  status: number;
  code: string;
  reason: string;
  /** Seconds; sent as Retry-After (503s: the pool may heal within it). */
  retryAfter?: number;
}

/**
 * Maps a channel's typed error to what an HTTP client can act on: 400 its
 * own bad input (431 / 413 when it is only too large: the client can send
 * less), 503 nothing usable right now (retry later), 504 too slow,
 * 502 anything the upstream did. Messages of dialtone's errors name the
 * target and cause but never a credential or header value, so they are safe
 * to send back.
 */
export function failureOf(err: unknown): Failure {
  if (!(err instanceof DialtoneError)) return { status: 502, code: "ERR_DIALTONE_BROKER", reason: "upstream request failed" };
  const reason = oneLine(err.message);
  if (err instanceof BadRequestError && err.reason === "too-large") {
    return { status: err.field.startsWith("headers") ? 431 : 413, code: err.code, reason };
  }
  switch (err.code) {
    case "ERR_DIALTONE_BAD_REQUEST":
    case "ERR_DIALTONE_CONFIG": // a per-call option the channel checks as config (a bad timeout)
      return { status: 400, code: err.code, reason };
    case "ERR_DIALTONE_NO_MEMBER":
    case "ERR_DIALTONE_QUEUE_FULL":
    case "ERR_DIALTONE_OVERLOADED":
    case "ERR_DIALTONE_CLOSED":
    case "ERR_DIALTONE_NOT_READY":
    case "ERR_DIALTONE_NO_RESPONDERS":
      return { status: 503, code: err.code, reason, retryAfter: 1 };
    case "ERR_DIALTONE_REQUEST_TIMEOUT":
      return { status: 504, code: err.code, reason };
    default:
      return { status: 502, code: err.code, reason };
  }
}

/** One line, bounded: a reason is for a log line or a terminal, not a document. */
export function oneLine(s: string): string {
  const line = s.replace(/[\r\n]+/g, " ").replace(/[^\x20-\x7e]/g, "?");
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** Sends a failure as a plain-text response, unless the head already left (then the caller resets instead). */
export function sendFailure(res: IngressResponse, f: Failure): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const body = `${f.reason}\n`;
  res.writeHead(f.status, failureHeaders(f, body));
  res.end(body);
}

/** The same, on an h2c stream served without the compat layer. */
export function sendStreamFailure(stream: ServerHttp2Stream, f: Failure): void {
  if (stream.headersSent || stream.writableEnded || stream.destroyed) return;
  const body = `${f.reason}\n`;
  const headers = failureHeaders(f, body);
  headers[":status"] = f.status;
  stream.respond(headers);
  // HEAD: respond() has ended the stream (the head says what the body would be).
  if (!stream.writableEnded) stream.end(body);
}

function failureHeaders(f: Failure, body: string): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    "content-type": "text/plain; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    "x-dialtone-error": f.code,
  };
  if (f.retryAfter !== undefined) headers["retry-after"] = String(f.retryAfter);
  return headers;
}

/**
 * The same failure as raw HTTP/1.1 bytes, for a socket Node's http server
 * has handed over (a CONNECT, a head its parser refused): the connection
 * closes after it.
 */
export function rawFailure(f: Failure): string {
  const body = `${f.reason}\n`;
  const head = Object.entries(failureHeaders(f, body))
    .map(([k, v]) => `${k}: ${String(v)}\r\n`)
    .join("");
  return `HTTP/1.1 ${f.status} ${STATUS_TEXT[f.status] ?? "Error"}\r\n${head}connection: close\r\n\r\n${body}`;
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  405: "Method Not Allowed",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
};

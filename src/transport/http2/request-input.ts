import type { OutgoingHttpHeaders } from "node:http2";
import { BadRequestError } from "../../core/errors.js";
import { checkSignal, checkTimeout } from "../../dispatch/call-options.js";
import { prepareBody, type Http2Body, type PreparedBody } from "./body.js";

/**
 * The largest request header block sent, counted as HPACK does (name +
 * value + 32 per field). Past about 64 KiB common servers (nghttp2, Node)
 * answer with a GOAWAY that takes every stream of the session with it, so a
 * too-large header must fail its own call instead. Envoy's default limit is
 * the same 60 KiB. A peer that advertises a smaller
 * SETTINGS_MAX_HEADER_LIST_SIZE is held to that at send time.
 */
export const MAX_HEADER_LIST_BYTES = 60 * 1024;

/** A request as the caller gave it. */
export interface Http2RequestInit {
  method?: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: Http2Body;
  signal?: AbortSignal;
  /** ms for the whole request, including waiting for a member and retries. */
  timeout?: number;
  /** The caller asserts the request may be sent twice; allows retry after any failure but a timeout. */
  idempotent?: boolean;
}

/** A request that has passed every check, ready for any session. */
export interface PreparedRequest {
  method: string;
  /** Header names lower-cased, values checked, pseudo-headers set. */
  headers: OutgoingHttpHeaders;
  /** HPACK-style size of `headers`, compared with a peer's limit at send time. */
  headerBytes: number;
  body: PreparedBody;
  signal: AbortSignal | undefined;
  timeout: number | undefined;
  idempotent: boolean;
}

const INIT_KEYS = new Set(["method", "path", "headers", "body", "signal", "timeout", "idempotent"]);
/** RFC 9110 token: methods and field names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A path as it goes on the wire: visible ASCII only (percent-encode the rest). */
const PATH = /^\/[\x21-\x7e]*$/;
/** Field values: no control characters but HTAB, nothing past Latin-1 (Node would reset the stream). */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** HTTP/1 connection-specific fields, forbidden in HTTP/2 (RFC 9113 §8.2.2); Node throws on them. */
const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings"]);

/**
 * Checks method, path, headers, body and per-call options before any
 * session sees them, because Node answers some bad input (a header name with
 * a space) by throwing from session.request() and destroying the whole
 * session: one caller's typo would cost every request on that member. Bad
 * input is a BadRequestError naming the field, never a member loss. Header
 * values are never echoed: they may carry credentials.
 */
export function prepareRequest(init: Http2RequestInit, target: string): PreparedRequest {
  if (init === null || typeof init !== "object") throw new BadRequestError(target, "init", "expected an object { path, method?, headers?, body?, … }");
  // for…in rather than Object.keys: no array per request (a request object's own keys are all it has).
  for (const k in init) {
    if (!INIT_KEYS.has(k)) throw new BadRequestError(target, k, `unknown request option (known: ${[...INIT_KEYS].join(", ")})`);
  }
  const method = checkMethod(init.method, target);
  const path = init.path;
  if (typeof path !== "string" || !PATH.test(path)) {
    throw new BadRequestError(target, "path", 'expected "/" followed by visible ASCII characters (percent-encode the rest)');
  }
  const signal = checkSignal(init.signal, target);
  const timeout = checkTimeout(init.timeout, target);
  if (init.idempotent !== undefined && typeof init.idempotent !== "boolean") throw new BadRequestError(target, "idempotent", "expected a boolean");
  const body = prepareBody(init.body, target);
  const headers: OutgoingHttpHeaders = {};
  let headerBytes = 32 + 7 + method.length + 32 + 5 + path.length;
  headers[":method"] = method;
  headers[":path"] = path;
  if (init.headers !== undefined && init.headers !== null) {
    if (typeof init.headers !== "object" || Array.isArray(init.headers)) throw new BadRequestError(target, "headers", "expected an object of name → value");
    for (const name of Object.keys(init.headers)) {
      const value = init.headers[name];
      if (value === undefined) continue;
      const lower = checkHeaderName(name, target);
      headerBytes += checkHeaderValue(lower, value, target);
      if (lower === "content-length") checkContentLength(value, body, target);
      headers[lower] = value;
    }
  }
  if (headerBytes > MAX_HEADER_LIST_BYTES) {
    throw new BadRequestError(target, "headers", `header block of ${headerBytes} bytes is over the ${MAX_HEADER_LIST_BYTES}-byte limit`, {
      reason: "too-large",
    });
  }
  return { method, headers, headerBytes, body, signal, timeout, idempotent: init.idempotent === true };
}

/** The methods callers write most, already checked and upper-case: no regular expression for them. */
const COMMON_METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]);

function checkMethod(method: unknown, target: string): string {
  if (method === undefined) return "GET";
  if (COMMON_METHODS.has(method as string)) return method as string;
  if (typeof method !== "string" || !TOKEN.test(method)) throw new BadRequestError(target, "method", "expected an HTTP method token such as GET or POST");
  const m = method.toUpperCase();
  // CONNECT needs :authority and no :path (a tunnel), which a channel of requests does not offer.
  if (m === "CONNECT") throw new BadRequestError(target, "method", "CONNECT is not supported");
  return m;
}

function checkHeaderName(name: string, target: string): string {
  if (name.startsWith(":")) throw new BadRequestError(target, `headers[${JSON.stringify(name)}]`, "pseudo-headers are set by dialtone (use method and path)");
  if (!TOKEN.test(name)) throw new BadRequestError(target, "headers", `${JSON.stringify(name.slice(0, 64))} is not a valid header name`);
  const lower = name.toLowerCase();
  if (CONNECTION_SPECIFIC.has(lower)) throw new BadRequestError(target, `headers.${lower}`, "connection-specific headers are not allowed in HTTP/2");
  return lower;
}

/** Returns the field's HPACK size; throws naming the field (never the value). */
function checkHeaderValue(name: string, value: unknown, target: string): number {
  const one = (v: unknown): number => {
    const s = typeof v === "number" && Number.isFinite(v) ? String(v) : v;
    if (typeof s !== "string") throw new BadRequestError(target, `headers.${name}`, "expected a string, a finite number or an array of them");
    if (BAD_VALUE.test(s))
      throw new BadRequestError(target, `headers.${name}`, "value contains a control character (CR, LF, NUL…) or a character outside Latin-1");
    if (s !== s.trim()) throw new BadRequestError(target, `headers.${name}`, "value has leading or trailing whitespace");
    if (name === "te" && s.toLowerCase() !== "trailers") throw new BadRequestError(target, "headers.te", 'only "trailers" is allowed in HTTP/2');
    return 32 + name.length + Buffer.byteLength(s, "latin1");
  };
  if (Array.isArray(value)) {
    let n = 0;
    for (const v of value) n += one(v);
    return n;
  }
  return one(value);
}

function checkContentLength(value: unknown, body: PreparedBody, target: string): void {
  const s = String(value);
  if (!/^\d{1,15}$/.test(s)) throw new BadRequestError(target, "headers.content-length", "expected a non-negative integer");
  const known = body.length;
  if (known !== undefined && Number(s) !== known) throw new BadRequestError(target, "headers.content-length", `says ${s} but the body has ${known} bytes`);
}

/**
 * undici's request options turned into a dialtone request, field by field as
 * undici's own HTTP/2 client (lib/dispatcher/client-h2.js) builds its
 * request: headers from any of undici's three shapes, repeated fields joined
 * as it joins them, and the content-length it sends.
 */
import type { OutgoingHttpHeaders } from "node:http2";
import { Readable } from "node:stream";
import type { Http2Body } from "../transport/http2/body.js";
import type { Http2RequestInit } from "../transport/http2/request-input.js";
import { contentLengthMismatch, invalidArgument } from "./undici-errors.js";

/** The part of undici's DispatchOptions a dialtone channel can honour. */
export interface DispatchOptions {
  origin?: string | URL;
  path: string;
  method: string;
  /** An object, a flat [name, value, …] array, or an iterable of [name, value] pairs (undici takes all three). */
  headers?: unknown;
  /** Bytes, a string, a Blob, a Node stream or an async iterable of bytes; anything else is refused (InvalidArgumentError). */
  body?: unknown;
  idempotent?: boolean;
  upgrade?: string | boolean | null;
  expectContinue?: boolean;
  headersTimeout?: number | null;
  bodyTimeout?: number | null;
}

/** HTTP/1 connection-level fields that undici callers may set and HTTP/2 forbids: dropped, as undici's own h2 client does. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings", "host"]);

/** Methods whose semantics expect a body: undici sends `content-length: 0` for them when the body is empty (RFC 9110 §8.6). */
const EXPECTS_PAYLOAD = new Set(["PUT", "POST", "PATCH", "QUERY", "PROPFIND", "PROPPATCH"]);

/** Methods for which undici never sends a content-length of its own (RFC 9110 §8.6). */
const NO_CONTENT_LENGTH = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"]);

/** Builds the channel request; throws undici's InvalidArgumentError / RequestContentLengthMismatchError for bad input. */
export async function toInit(o: DispatchOptions, signal: AbortSignal, headersTimeout: number | undefined): Promise<Http2RequestInit> {
  const method = typeof o.method === "string" ? o.method.toUpperCase() : o.method;
  const headers = toOutgoing(o.headers);
  const init: Http2RequestInit = { method, path: o.path, headers, signal };
  let body = o.body === undefined || o.body === null ? undefined : o.body;
  if (isFormDataLike(body)) {
    // As undici: a multipart body with its boundary in content-type and its content-length (every part's size is known).
    // A FormData from another copy of undici is copied into the global one, which the global Response encodes.
    const encoded = new Response(body instanceof FormData ? body : copyFormData(body));
    headers["content-type"] ??= encoded.headers.get("content-type") ?? undefined;
    body = Buffer.from(await encoded.arrayBuffer());
  } else if (isSyncIterable(body)) {
    // undici takes any iterable of chunks (strings or bytes); the channel streams async ones.
    body = Readable.from(body as Iterable<unknown>, { objectMode: false });
  }
  if (body !== undefined) init.body = body as Http2Body;
  setContentLength(headers, method, body);
  if (o.idempotent === true) init.idempotent = true;
  if (headersTimeout !== undefined) init.timeout = headersTimeout;
  return init;
}

/**
 * As undici: the length of a body whose size is known is sent as
 * content-length (a declared one that differs is an error, as with undici's
 * default strictContentLength); an empty body sends `0` for methods that
 * expect one; a stream keeps whatever the caller declared.
 */
function setContentLength(headers: OutgoingHttpHeaders, method: string, body: unknown): void {
  const known = knownLength(body);
  const declared = headers["content-length"];
  if (known === undefined) return;
  if (known === 0 && !EXPECTS_PAYLOAD.has(method)) {
    if (declared === undefined || String(declared) === "0") delete headers["content-length"];
    return;
  }
  if (declared !== undefined && String(declared) !== String(known) && !NO_CONTENT_LENGTH.has(method) && known > 0) {
    throw contentLengthMismatch(String(declared), known);
  }
  headers["content-length"] = String(known);
}

/** undici's own test (lib/core/util.js isFormDataLike): any FormData, from whichever copy of undici. */
function isFormDataLike(body: unknown): body is FormData {
  const f = body as FormData | undefined;
  return typeof f === "object" && f !== null && typeof f.append === "function" && typeof f.getAll === "function" && f[Symbol.toStringTag] === "FormData";
}

function copyFormData(from: FormData): FormData {
  const to = new FormData();
  for (const [k, v] of from as unknown as Iterable<[string, string | Blob]>) {
    if (typeof v === "string") to.append(k, v);
    else to.append(k, v, (v as File).name);
  }
  return to;
}

function isSyncIterable(body: unknown): boolean {
  if (body === undefined || typeof body !== "object" || body === null) return false;
  if (ArrayBuffer.isView(body) || body instanceof ArrayBuffer || typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") return false;
  return typeof (body as Iterable<unknown>)[Symbol.iterator] === "function";
}

function knownLength(body: unknown): number | undefined {
  if (body === undefined) return 0;
  if (typeof body === "string") return Buffer.byteLength(body, "utf8");
  if (body instanceof ArrayBuffer) return body.byteLength;
  if (ArrayBuffer.isView(body)) return body.byteLength;
  if (body instanceof Blob) return body.size;
  return undefined;
}

/** undici accepts headers as an object, a flat [name, value, …] array, or an iterable of pairs. */
export function toOutgoing(input: unknown): OutgoingHttpHeaders {
  const fields = new Map<string, string[]>();
  const add = (name: string, value: unknown): void => {
    if (value === undefined || value === null) return;
    const k = name.toLowerCase();
    if (HOP_BY_HOP.has(k)) return;
    const values = Array.isArray(value) ? value.map(String) : [String(value)];
    if (k === "te" && values.some((v) => v.toLowerCase() !== "trailers")) return;
    const prev = fields.get(k);
    if (prev) prev.push(...values);
    else fields.set(k, values);
  };
  if (input !== undefined && input !== null) {
    if (typeof input !== "object") throw invalidArgument("headers must be an object, an array or an iterable of pairs");
    if (Array.isArray(input)) {
      if (input.length > 0 && Array.isArray(input[0])) {
        for (const [k, v] of input as unknown as Array<[string, unknown]>) add(String(k), v);
      } else {
        if (input.length % 2 !== 0) throw invalidArgument("headers array must be even");
        for (let i = 0; i + 1 < input.length; i += 2) add(String(input[i]), input[i + 1]);
      }
    } else if (typeof (input as Iterable<[string, unknown]>)[Symbol.iterator] === "function") {
      for (const [k, v] of input as Iterable<[string, unknown]>) add(k, v);
    } else {
      for (const [k, v] of Object.entries(input as Record<string, unknown>)) add(k, v);
    }
  }
  const out: OutgoingHttpHeaders = {};
  // One field line per name, as undici's client-h2 builds them: cookies joined by "; " (RFC 9113 §8.2.3), the rest by ", " (RFC 9110 §5.3).
  for (const [k, values] of fields) out[k] = values.length === 1 ? (values[0] as string) : values.join(k === "cookie" ? "; " : ", ");
  return out;
}

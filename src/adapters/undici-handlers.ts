/**
 * undici's two handler styles, served through one: the controller style of
 * undici 7's interceptors and undici 8 (onRequestStart, onResponseStart,
 * onResponseData, onResponseEnd, onResponseError, with a controller), and the
 * older one of undici ≤ 7's request()/stream() and Node 20–24's bundled fetch
 * (onConnect, onHeaders, onData, onComplete, onError), through a small
 * wrapper as undici itself does.
 */
import type { IncomingHttpHeaders } from "node:http2";

/** undici's controller (controller-style handlers): pause/resume the body, abort the request, the head as raw fields. */
export interface DispatchController {
  readonly aborted: boolean;
  readonly paused: boolean;
  readonly reason: Error | null;
  /**
   * The response head as undici's own HTTP/2 client sets it before
   * onResponseStart: Node's header object without `:status` (undici's HTTP/1
   * client sets [name, value, …] Buffers; its readers take both). undici 8's
   * fetch, request() and interceptors read the headers from here.
   */
  rawHeaders: HeaderRecord | Buffer[] | null;
  /** The trailers in the same form, set before onResponseEnd. */
  rawTrailers: HeaderRecord | Buffer[] | null;
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/** Response headers or trailers as undici's controller-style handlers receive them. */
export type HeaderRecord = Record<string, string | string[]>;

/** undici 7 interceptors' and undici 8's style. */
export interface ControllerHandler {
  onRequestStart?(controller: DispatchController, context: unknown): void;
  onResponseStarted?(): void;
  /** Each chunk of the request body as it is handed to HTTP/2 (undici calls it in both styles). */
  onBodySent?(chunk: unknown): void;
  /** The whole request body has been handed to HTTP/2. */
  onRequestSent?(): void;
  onResponseStart?(controller: DispatchController, statusCode: number, headers: HeaderRecord, statusMessage?: string): void;
  onResponseData?(controller: DispatchController, chunk: Buffer): void;
  onResponseEnd?(controller: DispatchController, trailers: HeaderRecord): void;
  onResponseError?(controller: DispatchController, error: Error): void;
}

/** undici ≤ 7's request()/stream() and Node 20–24's bundled fetch. */
export interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void, context?: unknown): void;
  onResponseStarted?(): void;
  onBodySent?(chunk: unknown): void;
  onRequestSent?(): void;
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean | void;
  onData?(chunk: Buffer): boolean | void;
  /** undici 7 passes raw Buffers (what this adapter passes), undici 6's types say strings. */
  onComplete?(rawTrailers: Array<Buffer | string> | null): void;
  onError?(err: Error): void;
}

export type DispatchHandler = ControllerHandler | LegacyHandler;

function abortError(): Error {
  return new DOMException("This operation was aborted", "AbortError");
}

export class Controller implements DispatchController {
  #paused = false;
  #aborted = false;
  #reason: Error | null = null;
  rawHeaders: HeaderRecord | Buffer[] | null = null;
  rawTrailers: HeaderRecord | Buffer[] | null = null;
  /** Set by the body pump: called when a paused handler asks for more. */
  onResume: (() => void) | undefined;
  constructor(private readonly onAbort: (reason: Error) => void) {}
  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  abort(reason?: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason ?? abortError();
    this.onAbort(this.#reason);
  }
  pause(): void {
    this.#paused = true;
  }
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.onResume?.();
  }
}

/** Serves an undici ≤ 7 handler through the controller-style calls, with raw Buffer headers as it expects. */
class LegacyWrapper implements ControllerHandler {
  constructor(private readonly h: LegacyHandler) {}
  onRequestStart(c: DispatchController, context: unknown): void {
    this.h.onConnect?.((err) => c.abort(err ?? abortError()), context);
  }
  onResponseStarted(): void {
    this.h.onResponseStarted?.();
  }
  onBodySent(chunk: unknown): void {
    this.h.onBodySent?.(chunk);
  }
  onRequestSent(): void {
    this.h.onRequestSent?.();
  }
  onResponseStart(c: DispatchController, status: number, headers: HeaderRecord, statusMessage = ""): void {
    if (this.h.onHeaders?.(status, toRawHeaders(headers), () => c.resume(), statusMessage) === false) c.pause();
  }
  onResponseData(c: DispatchController, chunk: Buffer): void {
    if (this.h.onData?.(chunk) === false) c.pause();
  }
  onResponseEnd(_c: DispatchController, trailers: HeaderRecord): void {
    this.h.onComplete?.(toRawHeaders(trailers));
  }
  onResponseError(_c: DispatchController, err: Error): void {
    this.h.onError?.(err);
  }
}

/** The controller-style view of any handler undici or fetch may pass. */
export function asControllerHandler(h: DispatchHandler): ControllerHandler {
  const c = h as ControllerHandler;
  return typeof c.onResponseStart === "function" || typeof c.onRequestStart === "function" ? c : new LegacyWrapper(h as LegacyHandler);
}

/** Node's response headers without the pseudo-headers, as undici's controller-style handlers take them. */
export function headerRecord(h: IncomingHttpHeaders): HeaderRecord {
  const out: HeaderRecord = {};
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith(":") || v === undefined) continue;
    out[k] = v;
  }
  return out;
}

/** undici's raw form: [name, value, name, value, …] as latin1 Buffers, one pair per field line (set-cookie stays many). */
export function toRawHeaders(h: HeaderRecord): Buffer[] {
  const raw: Buffer[] = [];
  for (const [k, v] of Object.entries(h)) {
    for (const one of Array.isArray(v) ? v : [v]) raw.push(Buffer.from(k, "latin1"), Buffer.from(one, "latin1"));
  }
  return raw;
}

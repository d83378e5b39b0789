/**
 * `dialtone/undici`: an undici Dispatcher over a dialtone HTTP/2 channel, so
 * `fetch(url, { dispatcher })` (Node's global fetch or undici's),
 * `undici.request` and `undici.stream` balance over the channel's warm
 * members. It uses only the channel's public API (requestStream), so every
 * call goes through the dispatch pipeline: retried only where HTTP/2 proves
 * it unprocessed, counted in the channel's metrics and events.
 *
 * undici's handlers come in two styles: the one Node 20–24's bundled fetch
 * and undici ≤ 7 use (onConnect, onHeaders, onData, onComplete, onError) and
 * undici 8's (onRequestStart, onResponseStart, onResponseData, onResponseEnd,
 * onResponseError with a controller). Both are served; the older one through
 * a small wrapper, as undici 8 itself does.
 */
import { EventEmitter } from "node:events";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import type { Readable } from "node:stream";
import type { Dispatcher as UndiciDispatcher } from "undici-types";
import type { Http2Channel } from "../transport/http2/channel.js";
import type { Http2Body } from "../transport/http2/body.js";
import type { Http2RequestInit } from "../transport/http2/request-input.js";
import { bodyTimeout, dispatcherClosed, notSupported, toUndiciError, UndiciCompatibleError } from "./undici-errors.js";

export { UndiciCompatibleError };

/** The part of undici's DispatchOptions a dialtone channel can honour. */
export interface DispatchOptions {
  origin?: string | URL;
  path: string;
  method: string;
  /** An object, a flat [name, value, …] array, or an iterable of [name, value] pairs (undici takes all three). */
  headers?: unknown;
  /** Bytes, a string, a Node stream or an async iterable of bytes; anything else is refused (InvalidArgumentError). */
  body?: unknown;
  idempotent?: boolean;
  upgrade?: string | boolean | null;
  headersTimeout?: number | null;
  bodyTimeout?: number | null;
}

/** undici's controller (new-style handlers): pause/resume the body, abort the request. */
export interface DispatchController {
  readonly aborted: boolean;
  readonly paused: boolean;
  readonly reason: Error | null;
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/** Response headers or trailers as undici's controller-style handlers receive them. */
export type HeaderRecord = Record<string, string | string[]>;

/** undici 8 style. */
export interface ControllerHandler {
  onRequestStart?(controller: DispatchController, context: unknown): void;
  onResponseStart?(controller: DispatchController, statusCode: number, headers: HeaderRecord, statusMessage?: string): void;
  onResponseData?(controller: DispatchController, chunk: Buffer): void;
  onResponseEnd?(controller: DispatchController, trailers: HeaderRecord): void;
  onResponseError?(controller: DispatchController, error: Error): void;
}

/** undici ≤ 7 style, as Node 20–24's bundled fetch uses. */
export interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void, context?: unknown): void;
  onResponseStarted?(): void;
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean | void;
  onData?(chunk: Buffer): boolean | void;
  /** undici 7 passes raw Buffers (what this adapter passes), undici 6's types say strings. */
  onComplete?(rawTrailers: Array<Buffer | string> | null): void;
  onError?(err: Error): void;
}

export type DispatchHandler = ControllerHandler | LegacyHandler;

/** HTTP/1 connection-level fields that undici callers may set and HTTP/2 forbids: dropped, as undici's own h2 client does. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings", "host"]);

class Controller implements DispatchController {
  #paused = false;
  #aborted = false;
  #reason: Error | null = null;
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
    this.#reason = reason ?? new DOMException("This operation was aborted", "AbortError");
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
    this.h.onConnect?.((err) => c.abort(err ?? new DOMException("This operation was aborted", "AbortError")), context);
  }
  onResponseStart(c: DispatchController, status: number, headers: HeaderRecord, statusMessage = ""): void {
    this.h.onResponseStarted?.();
    if (this.h.onHeaders?.(status, rawHeaders(headers), () => c.resume(), statusMessage) === false) c.pause();
  }
  onResponseData(c: DispatchController, chunk: Buffer): void {
    if (this.h.onData?.(chunk) === false) c.pause();
  }
  onResponseEnd(_c: DispatchController, trailers: HeaderRecord): void {
    this.h.onComplete?.(rawHeaders(trailers));
  }
  onResponseError(_c: DispatchController, err: Error): void {
    this.h.onError?.(err);
  }
}

export interface DispatcherOptions {
  /**
   * Requests whose origin is not the channel's target are refused
   * (InvalidArgumentError) unless this is true; then they go to the channel
   * all the same, with the channel's :authority.
   */
  anyOrigin?: boolean;
}

/**
 * An undici Dispatcher whose connections are a dialtone channel's members.
 * Closing it stops new requests and waits for the ones in flight; it does
 * not close the channel, which its owner closes.
 */
export class DialtoneDispatcher extends EventEmitter {
  readonly #channel: Http2Channel;
  readonly #origin: string;
  readonly #anyOrigin: boolean;
  readonly #inFlight = new Set<{ abort(reason: Error): void; done: Promise<void> }>();
  #closed = false;

  constructor(channel: Http2Channel, options: DispatcherOptions = {}) {
    super();
    this.#channel = channel;
    this.#origin = new URL(channel.target).origin;
    this.#anyOrigin = options.anyOrigin === true;
  }

  /** undici's contract: start the request, report through `handler`; true = ready for more. */
  dispatch(options: DispatchOptions, handler: DispatchHandler): boolean {
    const h: ControllerHandler = isControllerHandler(handler) ? handler : new LegacyWrapper(handler);
    const ac = new AbortController();
    const controller = new Controller((reason) => ac.abort(reason));
    const entry = { abort: (reason: Error) => controller.abort(reason), done: Promise.resolve() };
    entry.done = this.#run(options, h, controller, ac.signal).finally(() => this.#inFlight.delete(entry));
    this.#inFlight.add(entry);
    return true;
  }

  /** Takes no new requests; resolves (or calls back) once those in flight have ended. */
  close(): Promise<void>;
  close(callback: () => void): void;
  close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const done = Promise.all([...this.#inFlight].map((e) => e.done)).then(() => undefined);
    if (callback) return void done.then(callback);
    return done;
  }

  /** Takes no new requests and aborts those in flight. */
  destroy(): Promise<void>;
  destroy(err: Error | null): Promise<void>;
  destroy(callback: () => void): void;
  destroy(err: Error | null, callback: () => void): void;
  destroy(err?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const cb = typeof err === "function" ? err : callback;
    const reason = err instanceof Error ? err : dispatcherClosed();
    this.#closed = true;
    for (const e of this.#inFlight) e.abort(reason);
    return cb ? this.close(cb) : this.close();
  }

  // undici's Dispatcher class also carries convenience methods (dispatcher.request() and the
  // like) that undici implements on its own prototype. This dispatcher serves undici's
  // top-level functions and fetch, which only call dispatch(); the methods below exist so a
  // DialtoneDispatcher is accepted wherever undici's types ask for a Dispatcher, and say
  // what to call instead if anyone calls them.
  request(..._args: unknown[]): never {
    throw notSupported('dispatcher.request(); call undici\'s request(url, { dispatcher }) instead, which');
  }
  stream(..._args: unknown[]): never {
    throw notSupported('dispatcher.stream(); call undici\'s stream(url, { dispatcher }, factory) instead, which');
  }
  pipeline(..._args: unknown[]): never {
    throw notSupported("dispatcher.pipeline()");
  }
  connect(..._args: unknown[]): never {
    throw notSupported("CONNECT");
  }
  upgrade(..._args: unknown[]): never {
    throw notSupported("a protocol upgrade");
  }
  compose(..._args: unknown[]): never {
    throw notSupported("dispatcher.compose()");
  }

  async #run(o: DispatchOptions, h: ControllerHandler, controller: Controller, signal: AbortSignal): Promise<void> {
    // undici reports every outcome through the handler, never synchronously from dispatch().
    await Promise.resolve();
    try {
      if (this.#closed) throw dispatcherClosed();
      h.onRequestStart?.(controller, {});
      if (controller.aborted) throw controller.reason;
      const init = this.#toInit(o, signal);
      const res = await this.#channel.requestStream(init);
      h.onResponseStart?.(controller, res.status, headerRecord(res.headers), "");
      await pumpBody(res.body, h, controller, positive(o.bodyTimeout));
      const trailers = await res.trailers;
      h.onResponseEnd?.(controller, headerRecord(trailers));
    } catch (err) {
      // An abort the caller asked for reaches it as its own reason, as undici does (fetch rejects with it).
      const e = controller.aborted && controller.reason ? controller.reason : toUndiciError(err);
      h.onResponseError?.(controller, e);
    }
  }

  #toInit(o: DispatchOptions, signal: AbortSignal): Http2RequestInit {
    if (o.upgrade || o.method === "CONNECT") throw notSupported(o.upgrade ? "a protocol upgrade" : "CONNECT");
    if (o.origin !== undefined && !this.#anyOrigin && new URL(String(o.origin)).origin !== this.#origin) {
      const origin = new URL(String(o.origin)).origin;
      throw new UndiciCompatibleError("InvalidArgumentError", "UND_ERR_INVALID_ARG", `origin ${origin} is not this channel's target ${this.#origin}`);
    }
    const init: Http2RequestInit = { method: o.method, path: o.path, headers: toOutgoing(o.headers), signal };
    if (o.body !== undefined && o.body !== null) init.body = o.body as Http2Body;
    if (o.idempotent === true) init.idempotent = true;
    const headersTimeout = positive(o.headersTimeout);
    if (headersTimeout !== undefined) init.timeout = headersTimeout;
    return init;
  }
}

/**
 * Creates an undici Dispatcher over `channel` (see DialtoneDispatcher), typed
 * as undici's own Dispatcher (from undici-types, which @types/node brings) so
 * that `fetch(url, { dispatcher })` type-checks without a cast. It serves
 * dispatch(), which fetch and undici's top-level functions call; its
 * convenience methods (dispatcher.request() …) throw NotSupportedError naming
 * what to call instead.
 */
export function createDispatcher(channel: Http2Channel, options?: DispatcherOptions): UndiciDispatcher & DialtoneDispatcher {
  return new DialtoneDispatcher(channel, options) as unknown as UndiciDispatcher & DialtoneDispatcher;
}

function isControllerHandler(h: DispatchHandler): h is ControllerHandler {
  return typeof (h as ControllerHandler).onResponseStart === "function" || typeof (h as ControllerHandler).onRequestStart === "function";
}

/** Feeds the body to the handler, pausing the stream (and so the peer) while the handler asks to. */
function pumpBody(body: Readable, h: ControllerHandler, controller: Controller, idleMs: number | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (idleMs === undefined) return;
      clearTimeout(timer);
      timer = setTimeout(() => body.destroy(bodyTimeout(idleMs)), idleMs);
    };
    controller.onResume = () => {
      arm();
      body.resume();
    };
    body.on("data", (chunk: Buffer) => {
      arm();
      h.onResponseData?.(controller, chunk);
      if (controller.paused) {
        clearTimeout(timer);
        body.pause();
      }
    });
    body.once("end", () => {
      clearTimeout(timer);
      resolve();
    });
    body.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    arm();
  });
}

/** undici accepts headers as an object, a flat [name, value, …] array, or an iterable of pairs. */
function toOutgoing(input: unknown): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const add = (name: string, value: unknown): void => {
    if (value === undefined || value === null) return;
    const k = name.toLowerCase();
    if (HOP_BY_HOP.has(k)) return;
    if (k === "te" && String(value).toLowerCase() !== "trailers") return;
    const prev = out[k];
    const v = Array.isArray(value) ? value.map(String) : typeof value === "number" ? value : String(value);
    if (prev === undefined) out[k] = v;
    else out[k] = [...(Array.isArray(prev) ? prev : [String(prev)]), ...(Array.isArray(v) ? v : [String(v)])];
  };
  if (input === undefined || input === null) return out;
  if (typeof input !== "object") throw new UndiciCompatibleError("InvalidArgumentError", "UND_ERR_INVALID_ARG", "headers must be an object, an array or an iterable of pairs");
  if (Array.isArray(input)) {
    if (input.length > 0 && Array.isArray(input[0])) {
      for (const [k, v] of input as unknown as Array<[string, string]>) add(String(k), v);
    } else {
      for (let i = 0; i + 1 < input.length; i += 2) add(String(input[i]), String(input[i + 1]));
    }
    return out;
  }
  if (typeof (input as Iterable<[string, string]>)[Symbol.iterator] === "function") {
    for (const [k, v] of input as Iterable<[string, string]>) add(k, v);
    return out;
  }
  for (const [k, v] of Object.entries(input as Record<string, unknown>)) add(k, v);
  return out;
}

/** Node's response headers without the pseudo-headers, as undici's controller-style handlers take them. */
function headerRecord(h: IncomingHttpHeaders): HeaderRecord {
  const out: HeaderRecord = {};
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith(":") || v === undefined) continue;
    out[k] = v;
  }
  return out;
}

/** undici ≤ 7's raw form: [name, value, name, value, …] as Buffers. */
function rawHeaders(h: HeaderRecord): Buffer[] {
  const raw: Buffer[] = [];
  for (const [k, v] of Object.entries(h)) {
    for (const one of Array.isArray(v) ? v : [v]) raw.push(Buffer.from(k, "latin1"), Buffer.from(one, "latin1"));
  }
  return raw;
}

function positive(n: number | null | undefined): number | undefined {
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? n : undefined;
}

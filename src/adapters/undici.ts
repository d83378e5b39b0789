/**
 * `dialtone/undici`: an undici Dispatcher over a dialtone HTTP/2 channel, so
 * `fetch(url, { dispatcher })` (Node's global fetch or undici's),
 * `undici.request`, `dispatcher.request()`, `stream()`, `pipeline()` and
 * `compose()` with undici's interceptors balance over the channel's warm
 * members. It extends undici's own Dispatcher class (undici, 7 or 8, is this
 * subpath's optional peer dependency: the main "dialtone" entry never loads
 * it) and uses only the channel's public API (requestStream), so every call
 * goes through the dispatch pipeline: retried only where HTTP/2 proves it
 * unprocessed, counted in the channel's metrics and events.
 *
 * Every request ends in exactly one of onResponseEnd or onResponseError, with
 * undici's own error classes (see undici-errors.ts), whatever happens to the
 * stream after its head: a reset, a lost connection, a body short of its
 * content-length, a body timeout, the caller's abort, the dispatcher's destroy.
 */
import type { Readable } from "node:stream";
import { Dispatcher } from "undici";
import type { Dispatcher as UndiciDispatcher } from "undici-types";
import type { Http2Channel } from "../transport/http2/channel.js";
import type { Http2StreamingResponse } from "../transport/http2/exchange.js";
import type { Http2RequestInit } from "../transport/http2/request-input.js";
import {
  bodyTimeout,
  dispatcherClosed,
  dispatcherDestroyed,
  invalidArgument,
  notSupported,
  prematureClose,
  toUndiciError,
  type BodyProgress,
  type Phase,
} from "./undici-errors.js";
import { publishBodySent, publishError, publishHeaders, publishTrailers, requestCreated, runAs, type DiagnosticsRequest } from "./undici-diagnostics.js";
import { asControllerHandler, Controller, headerRecord, type ControllerHandler, type DispatchHandler } from "./undici-handlers.js";
import { toInit, type DispatchOptions } from "./undici-request.js";

export type { ControllerHandler, DispatchController, DispatchHandler, HeaderRecord, LegacyHandler } from "./undici-handlers.js";
export type { DispatchOptions } from "./undici-request.js";

export interface DispatcherOptions {
  /**
   * Requests whose origin is not the channel's target are refused
   * (InvalidArgumentError) unless this is true; then they go to the channel
   * all the same, with the channel's :authority.
   */
  anyOrigin?: boolean;
  /**
   * How long to wait for a response head, in ms, unless a request says
   * otherwise (undici's `headersTimeout`); 0 = the channel's own
   * `requestTimeout`, which applies when this is not set.
   */
  headersTimeout?: number;
  /** The longest pause between two chunks of a response body, in ms (undici's `bodyTimeout`, default 300 000); 0 = none. */
  bodyTimeout?: number;
}

/** undici's default bodyTimeout (lib/dispatcher/client.js). */
const DEFAULT_BODY_TIMEOUT = 300_000;

interface InFlight {
  abort(reason: Error): void;
  done: Promise<void>;
}

/**
 * undici's class (an EventEmitter with request(), stream(), compose() …),
 * seen by TypeScript as a plain base: this class declares what it implements,
 * and createDispatcher() types the result as undici's Dispatcher.
 */
const Base = Dispatcher as unknown as new () => object;

/**
 * An undici Dispatcher whose connections are a dialtone channel's members.
 * Closing it stops new requests and waits for the ones in flight; it does
 * not close the channel, which its owner closes.
 */
export class DialtoneDispatcher extends Base {
  readonly #channel: Http2Channel;
  readonly #origin: string;
  readonly #anyOrigin: boolean;
  readonly #headersTimeout: number | undefined;
  readonly #bodyTimeout: number | undefined;
  readonly #inFlight = new Set<InFlight>();
  #closed = false;
  #destroyed = false;

  constructor(channel: Http2Channel, options: DispatcherOptions = {}) {
    super();
    this.#channel = channel;
    this.#origin = new URL(channel.target).origin;
    this.#anyOrigin = options.anyOrigin === true;
    this.#headersTimeout = positive(options.headersTimeout);
    this.#bodyTimeout = options.bodyTimeout === undefined ? DEFAULT_BODY_TIMEOUT : positive(options.bodyTimeout);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** undici's contract: start the request, report through `handler`; true = ready for more. */
  dispatch(options: DispatchOptions, handler: DispatchHandler): boolean {
    if (handler === null || typeof handler !== "object") throw invalidArgument("handler must be an object");
    const h = asControllerHandler(handler);
    // Decided now, not a microtask later: a close() right after this call must not reject this request.
    const refusal = this.#destroyed ? dispatcherDestroyed() : this.#closed ? dispatcherClosed() : undefined;
    const ac = new AbortController();
    const controller = new Controller((reason) => ac.abort(reason));
    const entry: InFlight = { abort: (reason) => controller.abort(reason), done: Promise.resolve() };
    this.#inFlight.add(entry);
    entry.done = this.#run(options, h, controller, ac.signal, refusal)
      // A handler that throws from onResponseError throws where undici's would: uncaught, not as a rejection nobody holds.
      .catch((err: unknown) =>
        process.nextTick(() => {
          throw err;
        }),
      )
      .finally(() => this.#inFlight.delete(entry));
    return !refusal;
  }

  /** Takes no new requests; resolves (or calls back) once those in flight have ended. */
  close(): Promise<void>;
  close(callback: () => void): void;
  close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const done = Promise.all([...this.#inFlight].map((e) => e.done)).then(() => undefined);
    if (typeof callback === "function") return void done.then(() => callback());
    return done;
  }

  /** Takes no new requests and aborts those in flight (with `err`, or ClientDestroyedError). */
  destroy(): Promise<void>;
  destroy(err: Error | null): Promise<void>;
  destroy(callback: () => void): void;
  destroy(err: Error | null, callback: () => void): void;
  destroy(err?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const cb = typeof err === "function" ? err : callback;
    const reason = err instanceof Error ? err : dispatcherDestroyed();
    this.#closed = true;
    this.#destroyed = true;
    for (const e of this.#inFlight) e.abort(reason);
    return cb ? this.close(cb) : this.close();
  }

  async #run(o: DispatchOptions, h: ControllerHandler, controller: Controller, signal: AbortSignal, refusal: Error | undefined): Promise<void> {
    // undici reports every outcome through the handler, never synchronously from dispatch().
    await Promise.resolve();
    let phase: Phase = "before-head";
    const progress: BodyProgress = { declared: undefined, received: 0 };
    let headersTimeout: number | undefined;
    let diag: DiagnosticsRequest | undefined;
    try {
      if (refusal) throw refusal;
      h.onRequestStart?.(controller, {});
      if (controller.aborted) throw controller.reason;
      if (o.upgrade || o.method === "CONNECT") throw notSupported(o.upgrade ? "a protocol upgrade" : "CONNECT");
      // The channel sends a request body with its head; it has no way to wait for 100 (Continue) first.
      if (o.expectContinue === true) throw notSupported("expectContinue (Expect: 100-continue)");
      this.#checkOrigin(o.origin);
      headersTimeout = o.headersTimeout === undefined || o.headersTimeout === null ? this.#headersTimeout : positive(o.headersTimeout);
      // undici:request:create, as undici's Request publishes it: its subscribers may add headers (traceparent).
      diag = requestCreated(o.origin === undefined || o.origin === null ? this.#origin : String(o.origin), o.method, o.path, o.headers);
      const init = await toInit(diag ? { ...o, headers: diag.headers } : o, signal, headersTimeout);
      const sent = reportBodySent(init, h);
      const res = await runAs(diag, () => this.#channel.requestStream(init));
      sent();
      publishBodySent(diag);
      phase = "after-head";
      if (controller.aborted) {
        res.body.destroy();
        throw controller.reason;
      }
      const declared = res.headers["content-length"];
      if (declared !== undefined && o.method !== "HEAD") progress.declared = Number(declared);
      const headers = headerRecord(res.headers);
      controller.rawHeaders = headers;
      publishHeaders(diag, res.status, headers);
      h.onResponseStarted?.();
      h.onResponseStart?.(controller, res.status, headers, "");
      const idle = o.bodyTimeout === undefined || o.bodyTimeout === null ? this.#bodyTimeout : positive(o.bodyTimeout);
      await pumpBody(res, h, controller, idle, progress);
      const trailers = headerRecord(await res.trailers);
      controller.rawTrailers = trailers;
      publishTrailers(diag, trailers);
      h.onResponseEnd?.(controller, trailers);
    } catch (err) {
      // An abort the caller asked for reaches it as its own reason, as undici does (fetch rejects with it).
      const e = controller.aborted && controller.reason ? controller.reason : toUndiciError(err, phase, progress, headersTimeout);
      publishError(diag, e);
      h.onResponseError?.(controller, e);
    }
  }

  #checkOrigin(origin: DispatchOptions["origin"]): void {
    if (origin === undefined || origin === null || this.#anyOrigin) return;
    const o = new URL(String(origin)).origin;
    if (o !== this.#origin) throw invalidArgument(`origin ${o} is not this channel's target ${this.#origin}`);
  }
}

/**
 * Creates an undici Dispatcher over `channel` (see DialtoneDispatcher), typed
 * as undici's Dispatcher (from undici-types, which @types/node brings) so
 * that `fetch(url, { dispatcher })` type-checks without a cast.
 */
export function createDispatcher(channel: Http2Channel, options?: DispatcherOptions): UndiciDispatcher & DialtoneDispatcher {
  return new DialtoneDispatcher(channel, options) as unknown as UndiciDispatcher & DialtoneDispatcher;
}

/**
 * Feeds the body to the handler, pausing the stream (and so the peer) while
 * the handler asks to. Settles on the body's end (resolve) or on any other
 * ending: its error, a body timeout, or a 'close' without 'end' — a body
 * whose stream was cut without an error event is a premature close, never a
 * clean end; the response's own failure (its trailers reject with it) says
 * why when it can.
 */
function pumpBody(
  res: Http2StreamingResponse,
  h: ControllerHandler,
  controller: Controller,
  idleMs: number | undefined,
  progress: BodyProgress,
): Promise<void> {
  const body: Readable = res.body;
  return new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let failure: Error | undefined;
    let ended = false;
    const fail = (err: Error): void => {
      failure ??= err;
      if (!body.destroyed) body.destroy(failure);
    };
    const arm = (): void => {
      if (idleMs === undefined) return;
      clearTimeout(timer);
      timer = setTimeout(() => fail(bodyTimeout(idleMs)), idleMs);
      timer.unref?.();
    };
    controller.onResume = () => {
      if (ended || failure) return;
      arm();
      body.resume();
    };
    body.on("data", (chunk: Buffer) => {
      arm();
      progress.received += chunk.length;
      try {
        h.onResponseData?.(controller, chunk);
      } catch (err) {
        controller.abort(err as Error);
        return;
      }
      if (controller.paused) {
        clearTimeout(timer);
        body.pause();
      }
    });
    body.once("end", () => {
      ended = true;
      clearTimeout(timer);
      resolve();
    });
    body.once("error", (err) => fail(err));
    body.once("close", () => {
      clearTimeout(timer);
      if (ended) return;
      if (failure) return reject(failure);
      res.trailers.then(
        () => reject(prematureClose()),
        (err: unknown) => reject(err),
      );
    });
    // A handler that paused in onResponseStart gets no data until it resumes.
    if (controller.paused) body.pause();
    else arm();
  });
}

/**
 * undici tells a handler each request body chunk it sends (onBodySent) and
 * when the request is all sent (onRequestSent). A streamed body is tapped as
 * the channel reads it; a body of bytes (sent whole, and replayable on a
 * retry) is reported once the response head proves it arrived. Returns what
 * to call at the head.
 */
function reportBodySent(init: Http2RequestInit, h: ControllerHandler): () => void {
  if (!h.onBodySent && !h.onRequestSent) return () => {};
  const body = init.body;
  const streamed = body !== undefined && typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
  if (!streamed) {
    return () => {
      if (body !== undefined) h.onBodySent?.(body);
      h.onRequestSent?.();
    };
  }
  init.body = (async function* tap(): AsyncGenerator<unknown> {
    for await (const chunk of body as AsyncIterable<unknown>) {
      h.onBodySent?.(chunk);
      yield chunk;
    }
    h.onRequestSent?.();
  })() as AsyncIterable<Uint8Array>;
  return () => {};
}

function positive(n: number | null | undefined): number | undefined {
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? n : undefined;
}

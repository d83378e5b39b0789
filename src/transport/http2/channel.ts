import { constants, type ClientHttp2Stream, type OutgoingHttpHeaders } from "node:http2";
import type { Clock } from "../../core/clock.js";
import { DeadlineQueue, type Deadline } from "../../core/deadlines.js";
import { AbortedError, BadRequestError } from "../../core/errors.js";
import { tracing, type CallInfo } from "../../dispatch/diagnostics.js";
import type { AttemptContext } from "../../dispatch/lease.js";
import { ChannelBase } from "../channel-base.js";
import { supervisorFor } from "../common-options.js";
import { connectionCheck } from "./app-check.js";
import { replayable } from "./body.js";
import type { Http2Connection } from "./connection.js";
import { Http2Connector } from "./connector.js";
import { openOnConnection, sendOnConnection, type Http2Response, type Http2StreamingResponse } from "./exchange.js";
import { http2Outcome } from "./outcome.js";
import { resolveHttp2Options, type Http2ChannelOptions, type ResolvedHttp2Options } from "./options.js";
import { prepareRequest, type Http2RequestInit, type PreparedRequest } from "./request-input.js";

export interface Http2StreamInit {
  method?: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  /** End the request side at once (default true: no request body); pass false to write one yourself. */
  endStream?: boolean;
  signal?: AbortSignal;
}

/**
 * An always-warm HTTP/2 channel: N members across distinct addresses,
 * PING-checked, P2C-balanced, degraded rather than dark, and safe retries
 * where HTTP/2 proves a request was not processed.
 */
export class Http2Channel extends ChannelBase<Http2Connection> {
  readonly #o: ResolvedHttp2Options;
  readonly #deadlines: DeadlineQueue;
  /** The limits of every call whose body can be sent again as it is (most): one object for all of them. */
  readonly #replayableLimits: { maxRetries: number; acquireTimeout: number; replayable: undefined };

  constructor(options: Http2ChannelOptions) {
    const o = resolveHttp2Options(options);
    const check = o.health.check ? connectionCheck(o.health.check, o.target) : undefined;
    // Every request's deadline, in one queue with one timer on the channel's clock.
    const deadlines = new DeadlineQueue(o.clock);
    const connector = new Http2Connector({ url: o.url, target: o.target, tls: o.tls, connectTimeout: o.connectTimeout, check, clock: o.clock, deadlines });
    super(o.target, o.name, supervisorFor<Http2Connection>(o, o.target, o.resolver, connector), o, deadlines);
    this.#o = o;
    this.#deadlines = deadlines;
    this.#replayableLimits = { maxRetries: o.maxRetries, acquireTimeout: o.acquireTimeout, replayable: undefined };
  }

  /** The channel's clock (its `clock` option, or the system's): adapters over the channel read time through it too. */
  get clock(): Clock {
    return this.#o.clock;
  }

  /**
   * Calls `fn(arg)` `ms` from now on the channel's clock, in the queue that
   * holds its requests' deadlines (one timer for all, and a time past Node's
   * longest timer, about 24.8 days, is waited out in full). For adapters
   * whose calls outlive the head timeout of `requestStream` (a gRPC
   * deadline); cancel with `unschedule`.
   */
  schedule<A>(ms: number, fn: (arg: A) => void, arg: A): Deadline {
    return this.#deadlines.add(ms, fn, arg);
  }

  /** Forgets what `schedule` returned; a second call, or one after it ran, does nothing. */
  unschedule(deadline: Deadline): void {
    this.#deadlines.cancel(deadline);
  }

  /**
   * One request, its whole response collected (at most maxResponseBytes),
   * trailers included. Retried on another member only when HTTP/2 proves the
   * first attempt was not processed, or when `idempotent` is set. Bad input
   * rejects with BadRequestError before any member sees it.
   */
  request(init: Http2RequestInit): Promise<Http2Response> {
    let req: PreparedRequest;
    try {
      req = prepareRequest(init, this.target);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    // The exchange classifies the response for outlier ejection itself (ctx): no promise step of our own per attempt.
    return this.call(
      this.#callOptions(req),
      this.#limits(req),
      (lease, ctx) => sendOnConnection(lease.connection, this.target, forAttempt(req, ctx), ctx.budgetMs, this.#o.maxResponseBytes, ctx),
      tracing() ? about("request", req) : undefined,
    );
  }

  /**
   * One request whose response body streams: resolves at the response head
   * with `body` (a Readable, back-pressured) and `trailers` (a promise). The
   * request counts as in flight until the body ends or is destroyed;
   * destroying it cancels the stream. `timeout` bounds the wait for the
   * head; after that, use `signal` or destroy the body.
   */
  async requestStream(init: Http2RequestInit): Promise<Http2StreamingResponse> {
    const req = prepareRequest(init, this.target);
    return await this.call(
      this.#callOptions(req),
      this.#limits(req),
      async (lease, ctx) => {
        const clock = this.sup.clock;
        const started = clock.now();
        // The member stays leased while the body streams; the stream's end releases it.
        ctx.keepLease();
        const res = await openOnConnection(lease.connection, this.target, forAttempt(req, ctx), ctx.budgetMs, (completed) =>
          lease.release(completed ? clock.now() - started : undefined),
        );
        // gRPC puts a failure in the trailers; a trailers-only response (UNAVAILABLE at once) has it in the headers.
        ctx.classify(http2Outcome(res.status, res.headers));
        return res;
      },
      tracing() ? about("requestStream", req) : undefined,
    );
  }

  /**
   * A raw ClientHttp2Stream on a picked member; it counts as in flight until
   * it closes. No retries: the caller owns the stream. Method, path and
   * headers are checked as for request().
   */
  async stream(init: Http2StreamInit): Promise<ClientHttp2Stream> {
    if (init === null || typeof init !== "object") throw new BadRequestError(this.target, "init", "expected an object { path, method?, headers?, … }");
    const { endStream, ...rest } = init;
    if (endStream !== undefined && typeof endStream !== "boolean") throw new BadRequestError(this.target, "endStream", "expected a boolean");
    const req = prepareRequest(rest, this.target);
    if (req.signal?.aborted) throw new AbortedError(this.target, req.signal.reason);
    let attempt: AttemptContext | undefined;
    const info = tracing() ? about("stream", req) : undefined;
    const lease = await this.call(
      { signal: req.signal, timeout: this.#o.acquireTimeout },
      { maxRetries: 0, acquireTimeout: this.#o.acquireTimeout },
      async (l, ctx) => {
        ctx.keepLease();
        attempt = ctx;
        return l;
      },
      info,
    );
    if (req.signal?.aborted) {
      lease.release();
      throw new AbortedError(this.target, req.signal.reason);
    }
    let stream: ClientHttp2Stream;
    try {
      const extra = attempt?.headers;
      stream = lease.connection.session.request(extra ? { ...req.headers, ...extra } : req.headers, { endStream: endStream ?? true });
    } catch (err) {
      lease.release();
      const code = (err as NodeJS.ErrnoException).code ?? "unknown error";
      throw new BadRequestError(this.target, "stream", `stream not opened (${code})`);
    }
    lease.connection.track(stream);
    // Diagnostics read the status of a raw stream's attempt when it ends (its lease's release).
    if (info) {
      const ctx = attempt as AttemptContext;
      stream.once("response", (h) => (ctx.status = Number(h[":status"])));
    }
    const clock = this.sup.clock;
    const started = clock.now();
    stream.once("close", () => lease.release(stream.rstCode === constants.NGHTTP2_NO_ERROR ? clock.now() - started : undefined));
    if (req.signal) cancelOnAbort(stream, req.signal, this.target);
    return stream;
  }

  #callOptions(req: PreparedRequest): { signal: AbortSignal | undefined; timeout: number; idempotent: boolean } {
    return { signal: req.signal, timeout: req.timeout ?? this.#o.requestTimeout, idempotent: req.idempotent };
  }

  #limits(req: PreparedRequest): { maxRetries: number; acquireTimeout: number; replayable: (() => boolean) | undefined } {
    // Bytes and Blobs can always be sent again: only a stream body needs asking.
    if (req.body.kind !== "stream") return this.#replayableLimits;
    return { maxRetries: this.#o.maxRetries, acquireTimeout: this.#o.acquireTimeout, replayable: () => replayable(req.body) };
  }
}

/**
 * The caller's abort ends the stream as every ending dialtone causes does:
 * RST_STREAM CANCEL, and an 'error' that is an AbortedError (the signal's
 * reason its cause). Node's own `signal` option would emit its AbortError.
 */
function cancelOnAbort(stream: ClientHttp2Stream, signal: AbortSignal, target: string): void {
  const onAbort = (): void => {
    if (stream.destroyed) return;
    stream.close(constants.NGHTTP2_CANCEL);
    stream.destroy(new AbortedError(target, signal.reason, "stream cancelled with RST_STREAM CANCEL"));
  };
  signal.addEventListener("abort", onAbort, { once: true });
  stream.once("close", () => signal.removeEventListener("abort", onAbort));
}

/**
 * The request as one attempt sends it: with that attempt's signal (a hedge's
 * also aborts when another attempt won), and the headers a diagnostics
 * subscriber added for it (traceparent), checked by traced-call.ts.
 */
function forAttempt(req: PreparedRequest, ctx: AttemptContext): PreparedRequest {
  const { signal, headers } = ctx;
  if (headers === undefined) return signal === req.signal ? req : { ...req, signal };
  let headerBytes = req.headerBytes;
  for (const k in headers) headerBytes += 32 + k.length + (headers[k] as string).length;
  return { ...req, signal, headers: { ...req.headers, ...headers }, headerBytes };
}

/** What a call is, for dialtone's diagnostics channels (built only when someone subscribes). */
function about(operation: CallInfo["operation"], req: PreparedRequest): CallInfo {
  return { protocol: "http2", operation, method: req.method, path: req.headers[":path"] as string, headers: req.headers };
}

export function createHttp2Channel(options: Http2ChannelOptions): Http2Channel {
  return new Http2Channel(options);
}

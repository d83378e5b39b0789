import { constants, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import { Readable } from "node:stream";
import type { Deadline } from "../../core/deadlines.js";
import { AbortedError, BadRequestError, DialtoneError, RequestError, RequestTimeoutError } from "../../core/errors.js";
import type { AttemptOutcome } from "../../pool/outlier.js";
import { writeBody } from "./body.js";
import { http2Outcome } from "./outcome.js";
import type { PreparedRequest } from "./request-input.js";
import type { Drainable, StreamHost } from "./stream-host.js";

/** A complete response: the body collected, trailers included. */
export interface Http2Response {
  status: number;
  headers: IncomingHttpHeaders;
  /** Trailing headers ({} when the peer sent none), e.g. gRPC's grpc-status. */
  trailers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * A response whose body is still arriving. `body` is a Readable (an async
 * iterable of Buffers) with back-pressure: the peer is flow-controlled while
 * the reader is slow. The request counts as in flight until the body ends or
 * is destroyed (which cancels the stream with RST_STREAM CANCEL). A body cut
 * short errors with a RequestError; it never just ends.
 */
export interface Http2StreamingResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** Resolves with the trailers once the body has ended cleanly; rejects as the body does. */
  trailers: Promise<IncomingHttpHeaders>;
}

/** Node's session.request() errors that mean the session, not the input, refused: nothing was sent. */
const SESSION_REFUSED = new Set(["ERR_HTTP2_INVALID_SESSION", "ERR_HTTP2_GOAWAY_SESSION", "ERR_HTTP2_OUT_OF_STREAMS", "ERR_HTTP2_STREAM_CANCEL"]);

/** Where a complete response's verdict goes (outlier ejection): the attempt's context. */
export interface Verdict {
  classify(outcome: AttemptOutcome): void;
}

const EMPTY = Buffer.alloc(0);

/** Node ends the request side by itself for these methods when no endStream option is given (isPayloadMeaningless). */
const ENDS_BY_DEFAULT = new Set(["GET", "HEAD", "DELETE"]);
const END_NOW = { endStream: true } as const;
const KEEP_OPEN = { endStream: false } as const;

/** The exchange a stream belongs to, kept on the stream so its listeners can be shared functions, not closures per request. */
const EXCHANGE = Symbol("dialtone.exchange");
type Owned = ClientHttp2Stream & { [EXCHANGE]: Exchange };

/**
 * One request on one connection: open the stream, send the body, and follow
 * it to its end, deciding what the end means. Success needs END_STREAM from
 * the peer (and a body as long as its content-length); a failure is a
 * RequestError whose `unprocessed` is true only when HTTP/2 proves the peer
 * never processed the request:
 * - the stream was reset with REFUSED_STREAM (also how nghttp2 ends streams
 *   above a GOAWAY's last-stream-id);
 * - its id is above the last-stream-id of a GOAWAY we received;
 * - the session refused it before it left the process.
 */
class Exchange implements Drainable {
  readonly #conn: StreamHost;
  readonly #target: string;
  readonly #req: PreparedRequest;
  /** A complete response's limit; a streamed response has none (its reader is back-pressured). */
  readonly #maxBytes: number;
  /** Set for a streamed response: runs once when the stream ends. Undefined: the body is collected. */
  readonly #onClosed: ((completed: boolean) => void) | undefined;
  #stream: ClientHttp2Stream | undefined;
  #deadline: Deadline | undefined;
  #timeoutMs = 0;
  #status: number | undefined;
  #headers: IncomingHttpHeaders | undefined;
  #trailers: IncomingHttpHeaders | undefined;
  /** The body's first chunk; #chunks only once a second arrives (most small bodies come in one). */
  #first: Buffer | undefined;
  #chunks: Buffer[] | undefined;
  #size = 0;
  /** END_STREAM arrived from the peer (see the shared push override in #on). */
  #endOfStream = false;
  #streamError: Error | undefined;
  /** The error we cancelled the stream for (timeout, abort, too large, body source failed). */
  #cancelled: Error | undefined;
  #settled = false;
  #body: Readable | undefined;
  #onHead: ((r: Http2Response | Http2StreamingResponse) => void) | undefined;
  #onFail: ((e: Error) => void) | undefined;
  #trailersDone: { resolve(t: IncomingHttpHeaders): void; reject(e: Error): void } | undefined;
  #onAbort: (() => void) | undefined;
  readonly #verdict: Verdict | undefined;

  // The sink's two fields rather than a sink object: one allocation fewer per request.
  constructor(
    conn: StreamHost,
    target: string,
    req: PreparedRequest,
    maxBytes: number,
    onClosed: ((completed: boolean) => void) | undefined,
    verdict?: Verdict,
  ) {
    this.#conn = conn;
    this.#target = target;
    this.#req = req;
    this.#maxBytes = maxBytes;
    this.#onClosed = onClosed;
    this.#verdict = verdict;
  }

  /**
   * The stream's listeners, one set for every exchange: each finds its
   * exchange on the stream, so a request allocates no closures for them.
   */
  static readonly #on = {
    response(this: Owned, h: IncomingHttpHeaders): void {
      this[EXCHANGE].#onResponse(h);
    },
    data(this: Owned, chunk: Buffer): void {
      this[EXCHANGE].#onData(chunk);
    },
    trailers(this: Owned, t: IncomingHttpHeaders): void {
      this[EXCHANGE].#trailers = t;
    },
    error(this: Owned, err: Error): void {
      this[EXCHANGE].#streamError = err;
    },
    close(this: Owned): void {
      const ex = this[EXCHANGE];
      ex.#conn.streamClosed(this);
      ex.#onClose();
    },
    /**
     * Node ends a response stream's readable side the same way for END_STREAM
     * and for an RST_STREAM(NO_ERROR) that cuts the body short: both emit
     * 'end' with rstCode 0. The difference is the order inside Node:
     * END_STREAM pushes the end of the body while the stream is still open, a
     * reset closes the stream first. Watching that one push tells them apart
     * (checked on Node 20 to 26 by the raw-frame tests, which fail if it ever
     * stops holding).
     */
    push(this: Owned, chunk: unknown, encoding?: BufferEncoding): boolean {
      if (chunk === null && !this.closed) this[EXCHANGE].#endOfStream = true;
      return (pushOf(this) as (c: unknown, e?: BufferEncoding) => boolean).call(this, chunk, encoding);
    },
  };

  run(timeoutMs: number): Promise<Http2Response | Http2StreamingResponse> {
    return new Promise((resolve, reject) => {
      this.#onHead = resolve;
      this.#onFail = reject;
      const signal = this.#req.signal;
      // Checked before anything is sent: an aborted call must never reach the peer.
      if (signal?.aborted) return this.#fail(new AbortedError(this.#target, signal.reason));
      const limit = this.#conn.session.remoteSettings?.maxHeaderListSize;
      if (limit !== undefined && this.#req.headerBytes > limit) {
        return this.#fail(
          new BadRequestError(this.#target, "headers", `header block of ${this.#req.headerBytes} bytes is over the peer's limit of ${limit}`, {
            reason: "too-large",
          }),
        );
      }
      let stream: ClientHttp2Stream;
      const req = this.#req;
      const ends = req.body.kind === "none";
      try {
        // Passing options costs Node a few µs per request; leave them out when its default is what we want.
        stream =
          ENDS_BY_DEFAULT.has(req.method) === ends
            ? this.#conn.session.request(req.headers)
            : this.#conn.session.request(req.headers, ends ? END_NOW : KEEP_OPEN);
      } catch (err) {
        return this.#fail(this.#refused(err));
      }
      this.#stream = stream;
      const owned = stream as Owned;
      owned[EXCHANGE] = this;
      pushOf(stream);
      owned.push = Exchange.#on.push;
      // The exchange itself is what drains the stream (drainUnread): no closure per request.
      this.#conn.streamOpened(stream, this);
      this.#timeoutMs = timeoutMs;
      // The channel's queue (one timer for all its requests, on its clock): no timer or closure per request.
      this.#deadline = this.#conn.deadlines.add(timeoutMs, Exchange.timedOut, this);
      if (signal) {
        this.#onAbort = () => this.#aborted();
        signal.addEventListener("abort", this.#onAbort, { once: true });
      }
      const on = Exchange.#on;
      stream.on("response", on.response);
      stream.on("data", on.data);
      stream.on("trailers", on.trailers);
      stream.on("error", on.error);
      stream.on("close", on.close);
      if (req.body.kind === "bytes") stream.end(req.body.bytes);
      else if (!ends) writeBody(req.body, stream, this.#target, this.#conn.address).catch((err: Error) => this.#cancel(err));
    });
  }

  /** The call's time is up (a shared function, so the deadline needs no closure). */
  static timedOut(this: void, ex: Exchange): void {
    ex.#deadline = undefined;
    ex.#cancel(new RequestTimeoutError(ex.#target, ex.#conn.address, ex.#timeoutMs));
  }

  /** A synchronous throw from session.request(): a refusing session is "not sent", anything else is the input's fault. */
  #refused(err: unknown): RequestError | BadRequestError {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const s = this.#conn.session;
    if (this.#conn.closed || s.destroyed || s.closed || (code !== undefined && SESSION_REFUSED.has(code))) {
      return new RequestError(
        "ERR_DIALTONE_NOT_SENT",
        this.#target,
        this.#conn.address,
        `request not sent: the session refused it (${code ?? "closed"})`,
        true,
        { cause: err },
      );
    }
    // Node's message may quote a header value; only its code is safe to repeat.
    return new BadRequestError(this.#target, "headers", `refused by Node's HTTP/2 client (${code ?? "unknown error"})`);
  }

  #aborted(): void {
    const signal = this.#req.signal as AbortSignal;
    const id = this.#stream?.id;
    this.#cancel(new AbortedError(this.#target, signal.reason, id === undefined ? "not sent" : `stream ${id} cancelled with RST_STREAM CANCEL`));
  }

  #onResponse(h: IncomingHttpHeaders): void {
    this.#status = Number(h[":status"]);
    this.#headers = h;
    if (this.#onClosed === undefined) return;
    // The head is the streaming caller's answer; from here the body has its own life.
    this.#clearDeadline();
    const stream = this.#stream as ClientHttp2Stream;
    this.#body = new Readable({
      read: () => void stream.resume(),
      destroy: (err, cb) => {
        // The reader gave up on the body: cancel the stream so the peer stops sending.
        if (!this.#settled) this.#cancel(err ?? new AbortedError(this.#target, undefined, "response body destroyed by the reader"));
        // Hand the error on: a callback of null would make Node emit 'close' without 'error', and a
        // reader listening for 'end'/'error' (an adapter's body pump) would wait for good.
        cb(err);
      },
    });
    const trailers = new Promise<IncomingHttpHeaders>((resolve, reject) => (this.#trailersDone = { resolve, reject }));
    trailers.catch(() => {}); // a caller that never asks for trailers must not see an unhandled rejection
    this.#onHead?.({ status: this.#status, headers: h, body: this.#body, trailers });
  }

  #onData(chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#onClosed === undefined) {
      if (this.#size > this.#maxBytes) {
        return this.#cancel(
          new RequestError("ERR_DIALTONE_RESPONSE_TOO_LARGE", this.#target, this.#conn.address, `response body over ${this.#maxBytes} bytes`, false),
        );
      }
      if (this.#first === undefined) this.#first = chunk;
      else (this.#chunks ??= [this.#first]).push(chunk);
    } else if (this.#body && !this.#body.push(chunk)) {
      this.#stream?.pause();
    }
  }

  /**
   * The session is going and Node will discard what this stream still holds:
   * read it out into the body now (its 'data' listener takes each chunk),
   * past back-pressure, which HTTP/2's flow-control window bounds.
   */
  drainUnread(): void {
    const stream = this.#stream;
    if (!stream || this.#settled) return;
    while (stream.read() !== null);
  }

  #clearDeadline(): void {
    if (this.#deadline) this.#conn.deadlines.cancel(this.#deadline);
    this.#deadline = undefined;
  }

  #cancel(err: Error): void {
    if (this.#settled || this.#cancelled) return;
    this.#cancelled = err;
    const stream = this.#stream;
    if (stream && !stream.closed) cancelStream(stream);
    else this.#onClose();
  }

  #onClose(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#clearDeadline();
    if (this.#onAbort) this.#req.signal?.removeEventListener("abort", this.#onAbort);
    const err = this.#cancelled ?? this.#outcome();
    const onClosed = this.#onClosed;
    if (onClosed) onClosed(err === undefined);
    if (err) return this.#fail(err);
    const trailers = this.#trailers ?? {};
    if (onClosed === undefined) {
      const status = this.#status as number;
      const headers = this.#headers as IncomingHttpHeaders;
      this.#verdict?.classify(http2Outcome(status, headers, trailers));
      // One chunk (a small body) is handed over as it came: Node never reuses a stream's data buffers.
      const body = this.#chunks ? Buffer.concat(this.#chunks, this.#size) : (this.#first ?? EMPTY);
      this.#onHead?.({ status, headers, trailers, body });
      this.#letGo();
    } else {
      this.#body?.push(null);
      this.#trailersDone?.resolve(trailers);
    }
  }

  /**
   * A complete response is the caller's now: the exchange lets go of it and
   * of its promise's resolve and reject. Something keeps the exchange
   * reachable for a while after the call (not the stream's link to it:
   * cutting that changed nothing), and while it held them the collector's
   * scavenges kept each response's pieces alive and promoted many (at full
   * speed, 64 B × 256: 4,780–4,800 bytes a request kept and 3,750 promoted;
   * the raw session 4,030–4,230 and 3,450–3,700; after this 3,860–4,010 and
   * 2,880–3,090). Counted by callgrind at 64 B × 256
   * (bench:reqpath-instructions), 66,100 of the collector's instructions a
   * request before, 40,800 after (the raw session's: 45,600), the request
   * path 276,800 → 250,500 in all.
   */
  #letGo(): void {
    this.#first = this.#chunks = undefined;
    this.#headers = this.#trailers = undefined;
    this.#onHead = this.#onFail = undefined;
  }

  #fail(err: Error): void {
    this.#settled = true;
    if (this.#body) {
      this.#body.destroy(err);
      this.#trailersDone?.reject(err);
    } else {
      this.#onFail?.(err);
    }
  }

  /** What a stream that closed on its own means: undefined for a complete response. */
  #outcome(): DialtoneError | undefined {
    const stream = this.#stream as ClientHttp2Stream;
    const address = this.#conn.address;
    if (this.#status !== undefined && this.#endOfStream) {
      const declared = (this.#headers as IncomingHttpHeaders)["content-length"];
      const bodyless = this.#req.method === "HEAD" || this.#status === 204 || this.#status === 304;
      if (declared !== undefined && !bodyless && Number(declared) !== this.#size) {
        return new RequestError(
          "ERR_DIALTONE_INCOMPLETE_RESPONSE",
          this.#target,
          address,
          `response body of ${this.#size} bytes, but content-length said ${declared}`,
          false,
        );
      }
      return undefined;
    }
    const rst = stream.rstCode;
    const cause = this.#streamError;
    if (rst === constants.NGHTTP2_REFUSED_STREAM) {
      return new RequestError("ERR_DIALTONE_REFUSED_STREAM", this.#target, address, "stream refused by peer (REFUSED_STREAM): not processed", true, { cause });
    }
    const last = this.#conn.goawayLastStreamId;
    const id = stream.id;
    if (last !== undefined && id !== undefined && id > last) {
      return new RequestError("ERR_DIALTONE_GOAWAY", this.#target, address, `stream ${id} above GOAWAY last-stream-id ${last}: not processed`, true, { cause });
    }
    if (id === undefined && this.#status === undefined) {
      return new RequestError(
        "ERR_DIALTONE_NOT_SENT",
        this.#target,
        address,
        `member lost before the request was sent${cause ? `: ${cause.message}` : ""}`,
        true,
        { cause },
      );
    }
    // The connection failed the stream on purpose (eviction, close past its grace) or lost it with its socket: that error says why.
    if (cause instanceof DialtoneError) return cause;
    if (this.#status !== undefined && (rst === undefined || rst === constants.NGHTTP2_NO_ERROR) && !cause) {
      return new RequestError(
        "ERR_DIALTONE_INCOMPLETE_RESPONSE",
        this.#target,
        address,
        `response cut short after ${this.#size} body bytes: the stream closed without END_STREAM`,
        false,
      );
    }
    if (this.#conn.closed && !cause && (rst === undefined || rst === constants.NGHTTP2_NO_ERROR)) {
      return new RequestError("ERR_DIALTONE_MEMBER_LOST", this.#target, address, "member lost before the response completed", false);
    }
    const why = cause?.message ?? (rst !== undefined && rst !== 0 ? `stream reset by peer with code ${rst}` : "stream closed before the response completed");
    return new RequestError("ERR_DIALTONE_STREAM", this.#target, address, why, false, { cause });
  }
}

/** Readable's own push, looked up once from the first stream (before an exchange overrides it on the instance). */
let originalPush: ClientHttp2Stream["push"] | undefined;
function pushOf(stream: ClientHttp2Stream): ClientHttp2Stream["push"] {
  return (originalPush ??= Object.getPrototypeOf(stream).push as ClientHttp2Stream["push"]);
}

/** Sends one request on one connection and collects the whole response. */
export function sendOnConnection(
  conn: StreamHost,
  target: string,
  req: PreparedRequest,
  timeoutMs: number,
  maxResponseBytes: number,
  verdict?: Verdict,
): Promise<Http2Response> {
  return new Exchange(conn, target, req, maxResponseBytes, undefined, verdict).run(timeoutMs) as Promise<Http2Response>;
}

/** Sends one request and resolves at the response head; `onClosed` runs once when the stream ends, however it ends. */
export function openOnConnection(
  conn: StreamHost,
  target: string,
  req: PreparedRequest,
  timeoutMs: number,
  onClosed: (completed: boolean) => void,
): Promise<Http2StreamingResponse> {
  return new Exchange(conn, target, req, Number.POSITIVE_INFINITY, onClosed).run(timeoutMs) as Promise<Http2StreamingResponse>;
}

/**
 * RST_STREAM CANCEL and nothing else. Node's stream.close(code) first ends
 * the writable side when the request body is still open, which sends
 * END_STREAM before the RST_STREAM: a cancelled upload would reach the
 * backend complete, then cancelled. With _final a no-op for this stream
 * (the Writable implementer's hook Node's end() calls to send END_STREAM)
 * only the RST_STREAM goes.
 */
function cancelStream(stream: ClientHttp2Stream): void {
  if (!stream.writableEnded) (stream as unknown as { _final: (cb: () => void) => void })._final = (cb) => cb();
  stream.close(constants.NGHTTP2_CANCEL);
}

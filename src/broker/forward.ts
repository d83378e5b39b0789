import { once } from "node:events";
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { constants, Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Stream } from "node:http2";
import type { Readable } from "node:stream";
import type { Http2StreamingResponse } from "../index.js";
import { failureOf, sendFailure, sendStreamFailure, type Failure, type IngressResponse } from "./error-response.js";
import { clientResponseHeaders, upstreamRequestHeaders } from "./headers.js";
import type { IngressRequest } from "./ingress.js";
import type { Upstreams } from "./upstreams.js";

/** Methods RFC 9110 §9.2.1 calls safe, hence idempotent: the ones the broker lets the channel retry and hedge (only without a body). */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

const noop = (): void => {};

/** Thrown inside forwarding when the client went away: nothing more to send. */
class ClientGone extends Error {}

/** One request as the ingress received it, whichever way it came in. */
export interface IngressCall {
  method: string;
  /** The request target as received: h2's :path, or HTTP/1.1's request-target. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The request body, or undefined when the client sends none. */
  body: Readable | undefined;
}

/**
 * The client's side of one exchange: a compat response (HTTP/1.1, and the
 * h2c requests the broker leaves to Node's compat layer) or a raw h2c
 * stream. Forwarding is written once, against this.
 */
export interface ClientSide {
  readonly headersSent: boolean;
  /** The whole response was handed to the transport: a client hanging up now is not cutting it short. */
  readonly finished: boolean;
  /**
   * The response head. `trailers`: the upstream's, when its whole response is already in (undefined: not yet
   * known, so the head must leave room for them). false: this response carries no body (HEAD, 204, 304), so
   * none may be written.
   */
  head(status: number, headers: OutgoingHttpHeaders, trailers: OutgoingHttpHeaders | undefined): boolean;
  /** Whether knowing the trailers before the head saves anything (h2c: an END_STREAM on the last DATA frame, not an extra frame). */
  readonly wantsEarlyTrailers: boolean;
  /** gRPC's Trailers-Only response as one HEADERS frame with END_STREAM (h2c only). */
  readonly trailersOnly: ((status: number, headers: OutgoingHttpHeaders) => void) | undefined;
  /** false: wait for drained() before writing more. */
  write(chunk: Buffer): boolean;
  drained(): Promise<void>;
  /** Ends the response, with `last` as its final bytes if given. */
  end(trailers: OutgoingHttpHeaders, last?: Buffer): void;
  fail(f: Failure): void;
  /** Cuts a response whose head already left (h2 RST_STREAM, or the HTTP/1.1 connection), so a cut body never looks complete. */
  reset(): void;
  onClose(listener: () => void): void;
  offClose(listener: () => void): void;
}

/**
 * Forwards one ingress request over an upstream's channel: the request body
 * streams up as the client sends it, the response body streams down with
 * back-pressure (a slow client slows the backend through HTTP/2 flow
 * control, nothing is buffered whole), and trailers follow the body (gRPC's
 * grpc-status). Returns the status sent, for metrics.
 *
 * A client that goes away cancels the upstream stream. A header block too
 * large for HTTP/2 is refused by the channel before any session sees it
 * (BadRequestError "too-large" → 431). A failure before the response head
 * is a status the client can act on (see failureOf); after it, the
 * client's stream is reset so a cut body never looks complete.
 */
export async function forward(upstreams: Upstreams, name: string, call: IngressCall, client: ClientSide): Promise<number> {
  const headers = upstreamRequestHeaders(call.headers);
  const path = requestPath(call.url);
  const lease = upstreams.acquire(name, "http2");
  const ac = new AbortController();
  // A client that hangs up once it has every byte the content-length promised is done, not gone: the upstream stream ends on its own.
  let written = 0;
  let expected = Number.POSITIVE_INFINITY;
  const onClose = (): void => {
    if (!client.finished && written < expected) ac.abort(new ClientGone("client closed the connection"));
  };
  client.onClose(onClose);
  let upstream: Http2StreamingResponse | undefined;
  try {
    const { method, body } = call;
    upstream = await lease.channel.requestStream({
      method,
      path,
      headers,
      body,
      signal: ac.signal,
      // GET, HEAD and OPTIONS are safe (RFC 9110 §9.2.1), so repeating one is harmless: the channel may send it again
      // on another member after a failure that is not a timeout, and hedge it when the upstream has a hedge policy.
      idempotent: body === undefined && SAFE_METHODS.has(method),
    });
    // The body is not read below in two cases; its failure is seen through `trailers` there, never as an unhandled 'error'.
    upstream.body.on("error", noop);
    if (client.trailersOnly && upstream.headers["grpc-status"] !== undefined) {
      upstream.body.resume();
      await upstream.trailers;
      client.trailersOnly(upstream.status, clientResponseHeaders(upstream.headers));
      return upstream.status;
    }
    const cl = upstream.headers["content-length"];
    if (typeof cl === "string" && /^\d+$/.test(cl)) expected = Number(cl);
    // A small response is usually complete by the next turn of the event loop: then the client's stream can end
    // with its last DATA frame. Otherwise the head goes now and the trailers (if any) follow the body.
    const known = client.wantsEarlyTrailers ? await settledSoon(upstream.trailers) : undefined;
    const trailers = known && clientResponseHeaders(known);
    if (!client.head(upstream.status, clientResponseHeaders(upstream.headers), trailers)) {
      // Nothing may follow this head: the upstream's (empty) body ends on its own.
      upstream.body.resume();
      expected = 0;
    } else if (trailers !== undefined) {
      // The whole body is already buffered: it goes out with the end of the stream, in one write.
      const chunks: Buffer[] = [];
      for (let c = upstream.body.read() as Buffer | null; c !== null; c = upstream.body.read() as Buffer | null) chunks.push(c);
      const rest = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      written += rest?.length ?? 0;
      upstream.body.resume();
      client.end(trailers, rest);
    } else {
      await copyBody(upstream.body, client, (n) => (written += n));
      client.end(clientResponseHeaders(await upstream.trailers));
    }
    return upstream.status;
  } catch (err) {
    upstream?.body.destroy();
    if (ac.signal.aborted) return 499; // nginx's "client closed request": only a metrics label, never sent
    if (!client.headersSent) {
      const f = failureOf(err);
      client.fail(f);
      return f.status;
    }
    client.reset();
    return upstream?.status ?? 502;
  } finally {
    client.offClose(onClose);
    lease.release();
  }
}

/** The trailers if the response ends within this turn of the event loop, else undefined (a failure included: copying the body reports it). */
function settledSoon(trailers: Promise<IncomingHttpHeaders>): Promise<IncomingHttpHeaders | undefined> {
  return new Promise((resolve) => {
    const timer = setImmediate(() => resolve(undefined));
    trailers.then(
      (t) => {
        clearImmediate(timer);
        resolve(t);
      },
      () => {
        clearImmediate(timer);
        resolve(undefined);
      },
    );
  });
}

/**
 * Copies the response body to the client as it arrives, with back-pressure:
 * while the client is full the upstream body is paused (and HTTP/2 flow
 * control slows the backend). Event-driven rather than an async iterator:
 * it runs per request, and most bodies are one chunk.
 */
function copyBody(body: Readable, client: ClientSide, count: (n: number) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (body.destroyed) {
      reject(body.errored ?? new ClientGone("response body closed before its end"));
      return;
    }
    const settle = (err?: Error): void => {
      body.removeListener("data", onData);
      body.removeListener("end", onEnd);
      body.removeListener("error", onError);
      body.removeListener("close", onEarlyClose);
      if (err) reject(err);
      else resolve();
    };
    const onData = (chunk: Buffer): void => {
      count(chunk.length);
      if (client.write(chunk)) return;
      body.pause();
      client.drained().then(
        () => body.resume(),
        (err: unknown) => settle(err instanceof Error ? err : new ClientGone("client closed the connection")),
      );
    };
    const onEnd = (): void => settle();
    const onError = (err: Error): void => settle(err);
    // Destroyed without an error (the client went away and forward() gave up on it): it closes without 'end'.
    const onEarlyClose = (): void => settle(new ClientGone("response body closed before its end"));
    body.on("data", onData);
    body.once("end", onEnd);
    body.once("error", onError);
    body.once("close", onEarlyClose);
  });
}

/** The client side of a compat exchange: HTTP/1.1's ServerResponse, or the compat layer's Http2ServerResponse. */
export class CompatClient implements ClientSide {
  readonly #req: IngressRequest;
  readonly #res: IngressResponse;
  readonly trailersOnly: ((status: number, headers: OutgoingHttpHeaders) => void) | undefined;
  readonly wantsEarlyTrailers = false;
  /** end() was called: the whole response is handed over (a transport's own end on a client's reset is not). */
  #ended = false;

  constructor(req: IngressRequest, res: IngressResponse) {
    this.#req = req;
    this.#res = res;
    this.trailersOnly =
      req instanceof Http2ServerRequest
        ? (status, headers) => (res as Http2ServerResponse).stream.respond({ ...headers, ":status": status }, { endStream: true })
        : undefined;
  }

  get headersSent(): boolean {
    return this.#res.headersSent;
  }

  get finished(): boolean {
    return this.#ended;
  }

  head(status: number, headers: OutgoingHttpHeaders): boolean {
    // A half-closed HTTP/1.1 client (request, then FIN) gets this one response, and the head says so.
    if (!(this.#req instanceof Http2ServerRequest) && this.#req.socket.readableEnded) headers.connection = "close";
    this.#res.writeHead(status, headers);
    return true;
  }

  write(chunk: Buffer): boolean {
    return (this.#res as ServerResponse).write(chunk);
  }

  drained(): Promise<void> {
    // Http2ServerResponse has no `destroyed`: its stream tells whether a 'drain' can still come.
    return drained(this.#req instanceof Http2ServerRequest ? (this.#res as Http2ServerResponse).stream : (this.#res as ServerResponse));
  }

  end(trailers: OutgoingHttpHeaders, last?: Buffer): void {
    this.#ended = true;
    if (Object.keys(trailers).length > 0) this.#res.addTrailers(trailers);
    if (last === undefined) this.#res.end();
    else this.#res.end(last);
  }

  fail(f: Failure): void {
    sendFailure(this.#res, f);
  }

  reset(): void {
    if (this.#req instanceof Http2ServerRequest) {
      const stream = (this.#res as Http2ServerResponse).stream;
      if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    } else {
      (this.#res as ServerResponse).destroy();
    }
  }

  onClose(listener: () => void): void {
    this.#res.once("close", listener);
    // HTTP/1.1 keeps a connection half-open after the client's FIN (a request then FIN is answered). A FIN once the
    // response has begun is a client that went away, not one that finished sending: cut the response, so the
    // upstream stream is cancelled now rather than when a write fails.
    if (!(this.#req instanceof Http2ServerRequest)) this.#req.socket.once("end", this.#onEnd);
  }

  offClose(listener: () => void): void {
    this.#res.removeListener("close", listener);
    if (!(this.#req instanceof Http2ServerRequest)) this.#req.socket.removeListener("end", this.#onEnd);
  }

  readonly #onEnd = (): void => {
    if (this.#res.headersSent && !this.#ended) (this.#res as ServerResponse).destroy();
  };
}

/** A compat request as forward() takes it. */
export function compatCall(req: IngressRequest): IngressCall {
  return { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers, body: hasBody(req) ? (req as Readable) : undefined };
}

/**
 * The client side of an h2c exchange on Node's core stream API, without the
 * compat layer's request and response objects (most of the per-request cost
 * of Node's compat layer). Trailers go as the compat layer sends them
 * (respond with waitForTrailers, then sendTrailers, empty or not), so the
 * frames on the wire are the same.
 */
export class StreamClient implements ClientSide {
  readonly #stream: ServerHttp2Stream;
  readonly #head: boolean;
  #trailers: OutgoingHttpHeaders = {};
  /** The whole response is handed over: a HEADERS frame with END_STREAM, or end(). */
  #ended = false;

  constructor(stream: ServerHttp2Stream, method: string) {
    this.#stream = stream;
    this.#head = method === "HEAD";
  }

  get headersSent(): boolean {
    return this.#stream.headersSent;
  }

  get finished(): boolean {
    // Not writableFinished: Node ends a stream's writable side itself when the client resets it.
    return this.#ended;
  }

  readonly wantsEarlyTrailers = true;

  head(status: number, headers: OutgoingHttpHeaders, trailers: OutgoingHttpHeaders | undefined): boolean {
    const stream = this.#stream;
    headers[":status"] = status;
    // A response to HEAD, and a 204, 205 or 304, has no body, so nothing (trailers neither) may follow its HEADERS frame.
    if (this.#head || status === 204 || status === 205 || status === 304) {
      this.#ended = true;
      stream.respond(headers, { endStream: true });
      return false;
    }
    if (trailers !== undefined && Object.keys(trailers).length === 0) {
      // Known to have none: the stream ends with its last DATA frame.
      stream.respond(headers);
      return true;
    }
    stream.respond(headers, { waitForTrailers: true });
    stream.once("wantTrailers", () => {
      if (!stream.destroyed) stream.sendTrailers(this.#trailers);
    });
    return true;
  }

  readonly trailersOnly = (status: number, headers: OutgoingHttpHeaders): void => {
    this.#ended = true;
    headers[":status"] = status;
    this.#stream.respond(headers, { endStream: true });
  };

  write(chunk: Buffer): boolean {
    return this.#stream.write(chunk);
  }

  drained(): Promise<void> {
    return drained(this.#stream);
  }

  end(trailers: OutgoingHttpHeaders, last?: Buffer): void {
    this.#ended = true;
    this.#trailers = trailers;
    if (last === undefined) this.#stream.end();
    else this.#stream.end(last);
  }

  fail(f: Failure): void {
    sendStreamFailure(this.#stream, f);
  }

  reset(): void {
    if (!this.#stream.destroyed) this.#stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }

  onClose(listener: () => void): void {
    this.#stream.once("close", listener);
  }

  offClose(listener: () => void): void {
    this.#stream.removeListener("close", listener);
  }
}

/** An h2c request on the core stream API as forward() takes it: a body unless the HEADERS frame ended the stream (or content-length is 0). */
export function streamCall(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): IngressCall {
  const body = stream.endAfterHeaders || headers["content-length"] === "0" ? undefined : stream;
  return { method: (headers[":method"] as string | undefined) ?? "GET", url: (headers[":path"] as string | undefined) ?? "/", headers, body };
}

/** The request target as HTTP/2 wants it: origin-form. An absolute-form HTTP/1.1 target (`GET http://host/x`) keeps its path. */
export function requestPath(url: string): string {
  if (url.startsWith("/")) return url;
  if (/^https?:\/\//i.test(url)) {
    try {
      const u = new URL(url);
      return `${u.pathname}${u.search}`;
    } catch {
      return url;
    }
  }
  return url; // "*" or garbage: the channel refuses it as a bad path (400)
}

/** The Host header, or HTTP/2's :authority, or the host of an absolute-form target. */
export function authorityOf(req: IngressRequest): string | undefined {
  if (req instanceof Http2ServerRequest) return req.authority || (req.headers.host as string | undefined);
  const url = req.url ?? "";
  if (/^https?:\/\//i.test(url)) {
    try {
      return new URL(url).host;
    } catch {
      /* fall through */
    }
  }
  return req.headers.host;
}

/** HTTP/2's :authority, else the Host header. */
export function streamAuthority(headers: IncomingHttpHeaders): string | undefined {
  return (headers[":authority"] as string | undefined) || headers.host;
}

/** Whether the client is sending a body: an h2 stream not ended with its HEADERS, or HTTP/1.1 framing that says so. */
function hasBody(req: IngressRequest): boolean {
  if (req instanceof Http2ServerRequest) return !req.stream.endAfterHeaders && req.headers["content-length"] !== "0";
  const te = req.headers["transfer-encoding"];
  const cl = req.headers["content-length"];
  return te !== undefined || (cl !== undefined && cl !== "0");
}

async function drained(res: ServerResponse | ServerHttp2Stream): Promise<void> {
  if (res.destroyed) throw new ClientGone("client closed the connection");
  const ac = new AbortController();
  try {
    await Promise.race([once(res, "drain", { signal: ac.signal }), once(res, "close", { signal: ac.signal })]);
  } finally {
    ac.abort();
  }
  if (res.destroyed) throw new ClientGone("client closed the connection");
}

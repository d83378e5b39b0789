import { once } from "node:events";
import type { ServerResponse } from "node:http";
import { constants, Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import type { Readable } from "node:stream";
import type { Http2StreamingResponse } from "../index.js";
import { failureOf, sendFailure, type IngressResponse } from "./error-response.js";
import { clientResponseHeaders, upstreamRequestHeaders } from "./headers.js";
import type { IngressRequest } from "./ingress.js";
import type { Upstreams } from "./upstreams.js";

/** Methods RFC 9110 §9.2.1 calls safe, hence idempotent: the ones the broker lets the channel retry and hedge (only without a body). */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Thrown inside forwarding when the client went away: nothing more to send. */
class ClientGone extends Error {}

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
export async function forward(upstreams: Upstreams, name: string, req: IngressRequest, res: IngressResponse): Promise<number> {
  const headers = upstreamRequestHeaders(req.headers);
  const path = requestPath(req);
  const lease = upstreams.acquire(name, "http2");
  const ac = new AbortController();
  // A client that hangs up once it has every byte the content-length promised is done, not gone: the upstream stream ends on its own.
  let written = 0;
  let expected = Number.POSITIVE_INFINITY;
  const onClose = (): void => {
    if (!res.writableFinished && written < expected) ac.abort(new ClientGone("client closed the connection"));
  };
  res.once("close", onClose);
  let upstream: Http2StreamingResponse | undefined;
  try {
    const method = req.method ?? "GET";
    const body = hasBody(req) ? (req as Readable) : undefined;
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
    if (isTrailersOnly(req, upstream.headers)) {
      upstream.body.resume();
      await upstream.trailers;
      (res as Http2ServerResponse).stream.respond({ ...clientResponseHeaders(upstream.headers), ":status": upstream.status }, { endStream: true });
      return upstream.status;
    }
    res.writeHead(upstream.status, clientResponseHeaders(upstream.headers));
    const cl = upstream.headers["content-length"];
    if (typeof cl === "string" && /^\d+$/.test(cl)) expected = Number(cl);
    for await (const chunk of upstream.body as AsyncIterable<Buffer>) {
      written += chunk.length;
      if (!(res as ServerResponse).write(chunk)) await drained(res);
    }
    const trailers = clientResponseHeaders(await upstream.trailers);
    if (Object.keys(trailers).length > 0) res.addTrailers(trailers);
    res.end();
    return upstream.status;
  } catch (err) {
    upstream?.body.destroy();
    if (ac.signal.aborted) return 499; // nginx's "client closed request": only a metrics label, never sent
    if (!res.headersSent) {
      const f = failureOf(err);
      sendFailure(res, f);
      return f.status;
    }
    reset(req, res);
    return upstream?.status ?? 502;
  } finally {
    res.removeListener("close", onClose);
    lease.release();
  }
}

/**
 * gRPC's Trailers-Only response (an error status with no messages) carries
 * grpc-status in its one HEADERS frame, with END_STREAM. Written as a head
 * and then an end, it would reach an h2c client as HEADERS + an empty DATA
 * frame with no trailers, and gRPC clients then report UNKNOWN instead of
 * the status: so it is sent back as one frame too.
 */
function isTrailersOnly(req: IngressRequest, headers: Http2StreamingResponse["headers"]): boolean {
  return req instanceof Http2ServerRequest && headers["grpc-status"] !== undefined;
}

/** The request target as HTTP/2 wants it: origin-form. An absolute-form HTTP/1.1 target (`GET http://host/x`) keeps its path. */
export function requestPath(req: IngressRequest): string {
  const url = req.url ?? "/";
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

/** Whether the client is sending a body: an h2 stream not ended with its HEADERS, or HTTP/1.1 framing that says so. */
function hasBody(req: IngressRequest): boolean {
  if (req instanceof Http2ServerRequest) return !req.stream.endAfterHeaders && req.headers["content-length"] !== "0";
  const te = req.headers["transfer-encoding"];
  const cl = req.headers["content-length"];
  return te !== undefined || (cl !== undefined && cl !== "0");
}

async function drained(res: IngressResponse): Promise<void> {
  if (res.destroyed) throw new ClientGone("client closed the connection");
  const ac = new AbortController();
  try {
    await Promise.race([once(res as ServerResponse, "drain", { signal: ac.signal }), once(res as ServerResponse, "close", { signal: ac.signal })]);
  } finally {
    ac.abort();
  }
  if (res.destroyed) throw new ClientGone("client closed the connection");
}

/** Cuts a response whose head already left: an h2 RST_STREAM, or an HTTP/1.1 connection closed mid-body. */
function reset(req: IngressRequest, res: IngressResponse): void {
  if (req instanceof Http2ServerRequest) {
    const stream = (res as Http2ServerResponse).stream;
    if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  } else {
    (res as ServerResponse).destroy();
  }
}

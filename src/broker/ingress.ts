import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import net, { type Socket } from "node:net";
import { bind, removeSocket } from "./bind.js";
import type { BrokerLimits } from "./config.js";
import type { BrokerMetrics } from "./broker-metrics.js";
import { rawFailure, type Failure } from "./error-response.js";
import type { ListenAddress } from "./listen-address.js";
import { CONNECT_REFUSED } from "./strict-request.js";

export type IngressRequest = IncomingMessage | Http2ServerRequest;
export type IngressHandler = (req: IngressRequest, res: ServerResponse | Http2ServerResponse) => void;
/** Serves one h2c stream on Node's core API and returns true, or returns false to leave it to the compat handler. */
export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

/** The client connection preface every h2c-with-prior-knowledge connection opens with (RFC 9113 §3.4). */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * HTTP/1.1 and h2c (prior knowledge) on one port, and on unix sockets. Each
 * accepted connection is sniffed: the HTTP/2 preface goes to an http2
 * server, anything else to an http server; neither server listens itself.
 * The sniff has its own deadline (headersTimeout), so a client that connects
 * and sends nothing is cut like any slowloris.
 *
 * h2c streams go to the stream handler first, on Node's core API: Node's
 * compat layer (an Http2ServerRequest and Http2ServerResponse per stream)
 * costs more than the rest of a small request's handling in the broker. A
 * stream the handler declines goes through the compat layer exactly as
 * before, by way of a second http2 server that owns no session and only
 * turns streams into compat requests.
 */
export class Ingress {
  readonly #h1: http.Server;
  readonly #h2: http2.Http2Server;
  readonly #h2compat: http2.Http2Server;
  readonly #listeners: net.Server[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<Http2Session>();
  readonly #limits: BrokerLimits;
  readonly #metrics: BrokerMetrics;
  readonly #unixPaths: string[] = [];
  #closing = false;

  constructor(handler: IngressHandler, streamHandler: StreamHandler, limits: BrokerLimits, metrics: BrokerMetrics) {
    this.#limits = limits;
    this.#metrics = metrics;
    this.#h1 = http.createServer(
      {
        // Past this Node answers 431 itself; below it the broker checks the block against what HTTP/2 upstreams take.
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeout,
        requestTimeout: limits.requestTimeout,
        keepAliveTimeout: 5_000,
        // Node enforces headersTimeout only when this periodic check runs (30 s by default): check often enough for the limit to mean something.
        connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeout / 4))),
      },
      handler,
    );
    // Node tracks an http.Server's connections (headersTimeout, requestTimeout, closeIdleConnections) from its
    // 'listening' event; this one never listens itself (sockets are handed to it), so without this a
    // slowloris head would never be cut and idle keep-alive connections would not close on shutdown.
    this.#h1.emit("listening");
    // A request followed by the client's FIN (nc -N, scripts that shut down their side) is answered, then the
    // connection ends, as HAProxy does; Node's default would abort the request on the FIN.
    (this.#h1 as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    // What Node's HTTP/1.1 parser refuses (a malformed head, a head too large or too slow) gets the status Node
    // would send, with its reason in x-dialtone-error like every other refusal.
    this.#h1.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
      const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (socket.writable && !current?.headersSent) {
        const f = parserFailure(err);
        metrics.start("none")(f.status);
        socket.end(rawFailure(f));
      }
      socket.destroy();
    });
    // CONNECT: Node hands the socket over (and would just close it without this listener); the broker is no tunnel.
    this.#h1.on("connect", (_req: IncomingMessage, socket: Socket) => {
      socket.on("error", () => {});
      metrics.start("none")(CONNECT_REFUSED.status);
      socket.end(rawFailure(CONNECT_REFUSED));
    });
    this.#h1.setTimeout(limits.idleTimeout);
    const h2options: http2.ServerOptions = {
      settings: { maxConcurrentStreams: limits.maxStreams, maxHeaderListSize: limits.maxHeaderBytes },
      maxSessionMemory: 32,
      // Bounds how many streams a client may reset per second (rapid-reset floods).
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
    };
    // No 'request' listener: Node then adds no compat layer to this server, and its streams reach the 'stream' event bare.
    this.#h2 = http2.createServer(h2options);
    // Never given a connection: emitting 'stream' on it runs Node's compat layer (CONNECT, Expect, then 'request').
    this.#h2compat = http2.createServer(h2options, handler);
    this.#h2.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
      if (!streamHandler(stream, headers)) this.#h2compat.emit("stream", stream, headers, flags, rawHeaders);
    });
    this.#h2.setTimeout(limits.idleTimeout);
    this.#h2.on("session", (s: Http2Session) => {
      this.#sessions.add(s);
      s.once("close", () => this.#sessions.delete(s));
      if (this.#closing) s.close();
    });
  }

  /** Binds one ingress listener (see bind: stale unix sockets only are replaced, mode 0660); `option` names it in errors. */
  async listen(addr: ListenAddress, option: string): Promise<string> {
    // noDelay: the http and http2 servers would set it on connections they accept themselves, but these are handed
    // to them; with Nagle on, small responses wait for the client's delayed ACK (40 ms on Linux).
    // allowHalfOpen: a client that sends its request and then shuts down its side (nc -N, many scripts) still
    // reads the response; the http server ends the connection once it has answered.
    const server = net.createServer({ pauseOnConnect: false, noDelay: true, allowHalfOpen: true }, (socket) => this.#accept(socket));
    server.maxConnections = this.#limits.maxConnections;
    const shown = await bind(server, addr, option);
    server.on("error", () => {});
    this.#listeners.push(server);
    if (addr.kind === "unix") this.#unixPaths.push(addr.path);
    return shown;
  }

  #accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    socket.on("error", () => {});
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), this.#limits.headersTimeout);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const n = Math.min(buf.length, PREFACE.length);
      const h2 = buf.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (h2 && buf.length < PREFACE.length) return;
      clearTimeout(timer);
      socket.removeListener("data", onData);
      socket.pause();
      const protocol = h2 ? "h2c" : "http1";
      this.#metrics.connectionsTotal.inc({ protocol });
      this.#metrics.connections.inc({ protocol });
      socket.once("close", () => this.#metrics.connections.dec({ protocol }));
      if (h2) {
        // The http2 session reads what is already buffered on the socket before its handle.
        socket.unshift(buf);
        // Half-open is for HTTP/1.1's request-then-FIN; an h2c client's FIN ends its session, as with Node's own http2 server.
        socket.allowHalfOpen = false;
        this.#h2.emit("connection", socket);
      } else {
        // The http parser consumes the socket's handle directly and would miss unshifted bytes: hand them over as data.
        this.#h1.emit("connection", socket);
        socket.emit("data", buf);
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.once("close", () => clearTimeout(timer));
  }

  /** Stops accepting; idle HTTP/1.1 connections close, h2c sessions get a GOAWAY and finish their streams. */
  stopAccepting(): void {
    this.#closing = true;
    for (const l of this.#listeners) l.close();
    this.#h1.closeIdleConnections();
    for (const s of this.#sessions) s.close();
    // Keep-alive connections that carry a request now close once it is answered.
    this.#h1.on("request", (_req: IncomingMessage, res: ServerResponse) => {
      if (!res.headersSent) res.setHeader("connection", "close");
    });
  }

  /** The end of the grace period: whatever is still open is cut. */
  destroyAll(): void {
    for (const s of this.#sessions) s.destroy();
    for (const s of this.#sockets) s.destroy();
    this.#h1.closeAllConnections();
    // Stops the connection-checking timer started by the 'listening' event above (the server itself listens nowhere).
    this.#h1.close(() => {});
    for (const p of this.#unixPaths) removeSocket(p);
  }
}

/** The refusal for an error of Node's HTTP/1.1 parser, with the status Node itself would send. */
function parserFailure(err: NodeJS.ErrnoException): Failure {
  switch (err.code) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return {
        status: 408,
        code: "ERR_DIALTONE_BROKER_TIMEOUT",
        reason: "the request head (or body) did not arrive within limits.headersTimeout / limits.requestTimeout",
      };
    case "HPE_HEADER_OVERFLOW":
      return { status: 431, code: "ERR_DIALTONE_BAD_REQUEST", reason: "request header block over limits.maxHeaderBytes" };
    default:
      return {
        status: 400,
        code: "ERR_DIALTONE_BAD_REQUEST",
        reason: `malformed HTTP/1.1 request (${(err.code ?? "parse error").replace(/[^A-Z0-9_]/g, "")})`,
      };
  }
}

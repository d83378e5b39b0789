/**
 * Standalone HTTP/2 test backend (one server per process).
 *
 * Started by test/helpers/backends.ts via child_process.fork with a single
 * JSON argument:
 *
 *   { host, port, delayMs?, tls?: { cert, key }, maxConcurrentStreams? }
 *
 * Loopback only: `host` must be an IPv4 address in 127.0.0.0/8 or the IPv6
 * address ::1; anything else is refused before binding.
 *
 * stdout protocol: exactly one JSON line, either
 *   {"listening":{"host":"127.0.0.2","port":12345}}
 * or
 *   {"error":{"code":"EADDRINUSE","message":"..."}}   (then exit code 1)
 *
 * IPC control (process.on("message")):
 *   {cmd:"delay", ms}      set the per-request delay
 *   {cmd:"goaway"}         GOAWAY(NO_ERROR) on every open session + server.close()
 *   {cmd:"refuse-next", n} reset the next n streams with REFUSED_STREAM
 *   {cmd:"status", status} answer every request but /healthz with this status (0: back to normal)
 *   {cmd:"stall", percent, ms} answer `percent` % of requests (evenly spread) `ms` late
 *   {cmd:"stats"}          reply includes stats: {requests, sessions, refused, pings, stalled, cancelled}
 *                          (cancelled: streams the client reset before the answer)
 * Every command is answered with {ack: cmd, ...} after it has been applied; an
 * `id` field on the command is echoed back so the parent can correlate.
 *
 * gRPC unary echo (for the benchmarks' gRPC peers): a POST with
 * `content-type: application/grpc*` on GRPC_ECHO_PATH gets its
 * length-prefixed request message(s) back verbatim, with status 200,
 * `content-type: application/grpc`, `x-backend`, and trailers
 * `grpc-status: 0`. The delay setting applies as to any other request.
 *
 * This file deliberately imports nothing from the rest of src/.
 */
import http2 from "node:http2";
import net from "node:net";

interface BackendConfig {
  host: string;
  port: number;
  delayMs?: number;
  /** clientCa: require a client certificate signed by it (mTLS). */
  tls?: { cert: string; key: string; clientCa?: string };
  maxConcurrentStreams?: number;
}

interface ControlMessage {
  cmd?: unknown;
  id?: unknown;
  ms?: unknown;
  n?: unknown;
}

function writeLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function fail(code: string, message: string): never {
  writeLine({ error: { code, message } });
  process.exit(1);
}

function isLoopback(host: string): boolean {
  const family = net.isIP(host);
  if (family === 4) return host.split(".")[0] === "127";
  if (family === 6) {
    try {
      // The WHATWG URL parser canonicalises IPv6 literals (0:0:...:1 -> ::1).
      return new URL(`http://[${host}]/`).hostname === "[::1]";
    } catch {
      return false;
    }
  }
  return false;
}

function parseConfig(raw: string | undefined): BackendConfig {
  if (raw === undefined) fail("EINVAL", "missing JSON config argument");
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    fail("EINVAL", `config is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null) fail("EINVAL", "config must be a JSON object");
  const c = parsed as Record<string, unknown>;
  if (typeof c.host !== "string") fail("EINVAL", "config.host must be a string");
  if (!isLoopback(c.host)) fail("EINVAL", `refusing non-loopback host ${c.host}`);
  const port = c.port ?? 0;
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
    fail("EINVAL", "config.port must be an integer in 0..65535");
  }
  const config: BackendConfig = { host: c.host, port };
  if (c.delayMs !== undefined) {
    if (typeof c.delayMs !== "number" || !(c.delayMs >= 0)) fail("EINVAL", "config.delayMs must be >= 0");
    config.delayMs = c.delayMs;
  }
  if (c.maxConcurrentStreams !== undefined) {
    if (typeof c.maxConcurrentStreams !== "number" || !Number.isInteger(c.maxConcurrentStreams) || c.maxConcurrentStreams < 0) {
      fail("EINVAL", "config.maxConcurrentStreams must be a non-negative integer");
    }
    config.maxConcurrentStreams = c.maxConcurrentStreams;
  }
  if (c.tls !== undefined) {
    const t = c.tls as Record<string, unknown> | null;
    if (typeof t !== "object" || t === null || typeof t.cert !== "string" || typeof t.key !== "string") {
      fail("EINVAL", "config.tls must be { cert: string, key: string }");
    }
    config.tls = { cert: t.cert, key: t.key };
    if (t.clientCa !== undefined) {
      if (typeof t.clientCa !== "string") fail("EINVAL", "config.tls.clientCa must be a PEM string");
      config.tls.clientCa = t.clientCa;
    }
  }
  return config;
}

const config = parseConfig(process.argv[2]);

let delayMs = config.delayMs ?? 0;
let refuseRemaining = 0;
/** What /healthz answers; set with {cmd:"health", status}. */
let healthStatus = 200;
const stats = { requests: 0, sessions: 0, refused: 0, pings: 0, stalled: 0, cancelled: 0 };
/** {cmd:"stall"}: this share of requests (0..100) waits stallMs more. */
/** {cmd:"status"}: every request but /healthz gets this status; 0 = normal. */
let forcedStatus = 0;
let stallPercent = 0;
let stallMs = 0;

/** Whether the n-th request (from 1) is one of the stalled `percent` %: evenly spread, deterministic. */
function stalls(n: number): boolean {
  return Math.floor((n * stallPercent) / 100) > Math.floor(((n - 1) * stallPercent) / 100);
}
const sessions = new Set<http2.ServerHttp2Session>();
let backendKey = "";
let shuttingDown = false;

const settings: http2.Settings = {};
if (config.maxConcurrentStreams !== undefined) settings.maxConcurrentStreams = config.maxConcurrentStreams;

const server: http2.Http2Server | http2.Http2SecureServer = config.tls
  ? http2.createSecureServer({
      cert: config.tls.cert,
      key: config.tls.key,
      allowHTTP1: false,
      settings,
      ...(config.tls.clientCa ? { ca: config.tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    })
  : http2.createServer({ settings });

const noop = (): void => {};

function streamGone(stream: http2.ServerHttp2Stream): boolean {
  return stream.destroyed || stream.closed;
}

const authorities = new WeakMap<http2.ServerHttp2Stream, string>();

function authorityOf(stream: http2.ServerHttp2Stream): string {
  return authorities.get(stream) ?? "";
}

function safeRespond(
  stream: http2.ServerHttp2Stream,
  status: number,
  body: Buffer | string,
): void {
  if (streamGone(stream) || stream.headersSent) return;
  try {
    stream.respond({
      ":status": status,
      "content-type": "text/plain; charset=utf-8",
      "x-backend": backendKey,
      // Echoed so clients can check which :authority they sent (DESIGN: the target's host name).
      "x-authority": authorityOf(stream),
    });
    stream.end(body);
  } catch {
    // The client reset/closed the stream or the session went away between the
    // check above and the write; nothing useful left to do.
    if (!stream.destroyed) stream.destroy();
  }
}

const GRPC_ECHO_PATH = "/dialtone.bench.Echo/Echo";

function isGrpcEcho(method: string, pathname: string, headers: http2.IncomingHttpHeaders): boolean {
  const type = String(headers["content-type"] ?? "");
  return method === "POST" && pathname === GRPC_ECHO_PATH && type.startsWith("application/grpc");
}

/** gRPC unary echo: the request's length-prefixed message back, then trailers grpc-status 0. */
function grpcRespond(stream: http2.ServerHttp2Stream, body: Buffer): void {
  if (streamGone(stream) || stream.headersSent) return;
  try {
    stream.once("wantTrailers", () => {
      try {
        stream.sendTrailers({ "grpc-status": "0" });
      } catch {
        if (!stream.destroyed) stream.destroy();
      }
    });
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", "x-backend": backendKey },
      { waitForTrailers: true },
    );
    stream.end(body);
  } catch {
    if (!stream.destroyed) stream.destroy();
  }
}

/** `/trailers`: a body, then trailers (x-checksum, grpc-status), as gRPC servers end every call. */
function trailersRespond(stream: http2.ServerHttp2Stream): void {
  if (streamGone(stream) || stream.headersSent) return;
  try {
    stream.once("wantTrailers", () => {
      try {
        stream.sendTrailers({ "x-checksum": "c0ffee", "grpc-status": "0" });
      } catch {
        if (!stream.destroyed) stream.destroy();
      }
    });
    stream.respond({ ":status": 200, "x-backend": backendKey }, { waitForTrailers: true });
    stream.end(`ok ${backendKey}`);
  } catch {
    if (!stream.destroyed) stream.destroy();
  }
}

/** `/headers`: the request's headers as JSON, so tests can see what arrived. */
function plainHeaders(h: http2.IncomingHttpHeaders): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) out[k] = v;
  return out;
}

/**
 * `/stream?chunks=N&size=S&every=MS`: N chunks of S bytes, one every MS ms,
 * written with back-pressure (a slow reader slows the writer down), so tests
 * can watch a streamed body flow. Bounded: at most 10,000 chunks of 1 MiB.
 */
function streamRespond(stream: http2.ServerHttp2Stream, q: URLSearchParams): void {
  if (streamGone(stream) || stream.headersSent) return;
  const chunks = Math.min(10_000, Math.max(0, Number(q.get("chunks") ?? "4") || 0));
  const size = Math.min(1 << 20, Math.max(1, Number(q.get("size") ?? "1024") || 1));
  const every = Math.min(10_000, Math.max(0, Number(q.get("every") ?? "0") || 0));
  stream.respond({ ":status": 200, "x-backend": backendKey, "content-length": String(chunks * size) });
  let sent = 0;
  const next = (): void => {
    if (streamGone(stream)) return;
    if (sent === chunks) return void stream.end();
    sent++;
    const more = stream.write(Buffer.alloc(size, 0x61 + (sent % 26)));
    const go = (): void => void (every > 0 ? setTimeout(next, every) : setImmediate(next));
    if (more) go();
    else stream.once("drain", go);
  };
  next();
}

function handleStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  stream.on("error", noop);
  authorities.set(stream, String(headers[":authority"] ?? ""));

  if (refuseRemaining > 0) {
    refuseRemaining -= 1;
    stats.refused += 1;
    try {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    } catch {
      /* already gone */
    }
    return;
  }
  stats.requests += 1;

  const method = String(headers[":method"] ?? "GET").toUpperCase();
  const rawPath = String(headers[":path"] ?? "/");
  let pathname = "/";
  let extraDelay = 0;
  try {
    const url = new URL(rawPath, "http://backend.invalid");
    pathname = url.pathname;
    const d = Number(url.searchParams.get("delay") ?? "0");
    if (Number.isFinite(d) && d > 0) extraDelay = d;
  } catch {
    /* malformed path: treat as "/" */
  }

  let status = pathname === "/healthz" ? healthStatus : forcedStatus || 200;
  const statusMatch = /^\/status\/(\d{3})$/.exec(pathname);
  if (statusMatch) {
    const code = Number(statusMatch[1]);
    // 1xx cannot be a final status in HTTP/2 (node throws); answer 400 instead.
    status = code >= 200 && code <= 599 ? code : 400;
  }

  const grpc = isGrpcEcho(method, pathname, headers);
  const chunks: Buffer[] = [];
  let bodyDone = method !== "POST";
  let delayDone = false;

  const maybeRespond = (): void => {
    if (!bodyDone || !delayDone) return;
    if (grpc) return grpcRespond(stream, Buffer.concat(chunks));
    if (pathname === "/trailers") return trailersRespond(stream);
    if (pathname === "/headers") return safeRespond(stream, 200, JSON.stringify(plainHeaders(headers)));
    if (pathname === "/stream") return streamRespond(stream, new URL(rawPath, "http://backend.invalid").searchParams);
    const body = method === "POST" ? Buffer.concat(chunks) : `ok ${backendKey}`;
    safeRespond(stream, status, body);
  };

  if (method === "POST") {
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      bodyDone = true;
      maybeRespond();
    });
  } else {
    // Drain (and ignore) any request body so flow control never stalls.
    stream.resume();
  }

  let stall = 0;
  if (stallPercent > 0 && stalls(stats.requests)) {
    stall = stallMs;
    stats.stalled += 1;
  }
  stream.once("close", () => {
    if (!stream.headersSent && stream.rstCode === http2.constants.NGHTTP2_CANCEL) stats.cancelled += 1;
  });
  const totalDelay = delayMs + extraDelay + stall;
  if (totalDelay > 0) {
    const timer = setTimeout(() => {
      delayDone = true;
      maybeRespond();
    }, totalDelay);
    stream.once("close", () => clearTimeout(timer));
  } else {
    delayDone = true;
    maybeRespond();
  }
}

server.on("session", (session: http2.ServerHttp2Session) => {
  stats.sessions += 1;
  sessions.add(session);
  session.on("error", noop);
  // Counted so tests can see a client's PING rate from the peer's side (e.g. no PING storm).
  session.on("ping", () => (stats.pings += 1));
  session.once("close", () => sessions.delete(session));
});
server.on("sessionError", noop);
server.on("stream", handleStream);
if (config.tls) {
  // Handshake failures (e.g. a client rejecting our cert) must not crash us.
  server.on("tlsClientError", noop);
}

function onListenError(err: NodeJS.ErrnoException): void {
  fail(err.code ?? "ERROR", err.message);
}
server.once("error", onListenError);

server.listen({ host: config.host, port: config.port, exclusive: true }, () => {
  server.removeListener("error", onListenError);
  server.on("error", noop);
  const addr = server.address();
  if (addr === null || typeof addr === "string") fail("EINVAL", "unexpected server address");
  backendKey = addr.family === "IPv6" ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
  writeLine({ listening: { host: addr.address, port: addr.port } });
});

function reply(message: Record<string, unknown>, id: unknown): void {
  if (!process.send || !process.connected) return;
  const out = id === undefined ? message : { ...message, id };
  try {
    process.send(out, undefined, undefined, noop);
  } catch {
    /* parent gone */
  }
}

process.on("message", (raw: unknown) => {
  if (typeof raw !== "object" || raw === null) return;
  const msg = raw as ControlMessage;
  const cmd = typeof msg.cmd === "string" ? msg.cmd : String(msg.cmd);
  switch (cmd) {
    case "delay": {
      const ms = Number(msg.ms);
      if (!Number.isFinite(ms) || ms < 0) {
        reply({ ack: cmd, error: "ms must be a finite number >= 0" }, msg.id);
        return;
      }
      delayMs = ms;
      reply({ ack: cmd }, msg.id);
      return;
    }
    case "goaway": {
      for (const session of sessions) {
        if (session.destroyed || session.closed) continue;
        try {
          session.goaway(http2.constants.NGHTTP2_NO_ERROR);
        } catch {
          /* session went away concurrently */
        }
      }
      // Stop accepting new connections; in-flight streams on existing sessions
      // keep running until they complete.
      if (server.listening) server.close();
      reply({ ack: cmd }, msg.id);
      return;
    }
    case "refuse-next": {
      const n = Number(msg.n ?? 1);
      if (!Number.isInteger(n) || n < 0) {
        reply({ ack: cmd, error: "n must be a non-negative integer" }, msg.id);
        return;
      }
      refuseRemaining = n;
      reply({ ack: cmd }, msg.id);
      return;
    }
    case "status": {
      const n = Number((msg as { status?: unknown }).status);
      if (!(n === 0 || (Number.isInteger(n) && n >= 200 && n <= 599))) {
        reply({ ack: cmd, error: "status must be 0 or an HTTP status from 200 to 599" }, msg.id);
        return;
      }
      forcedStatus = n;
      reply({ ack: cmd }, msg.id);
      return;
    }
    case "stall": {
      const percent = Number((msg as { percent?: unknown }).percent);
      const ms = Number(msg.ms);
      if (!(percent >= 0 && percent <= 100) || !Number.isFinite(ms) || ms < 0) {
        reply({ ack: cmd, error: "percent must be 0..100 and ms a finite number >= 0" }, msg.id);
        return;
      }
      stallPercent = percent;
      stallMs = ms;
      reply({ ack: cmd }, msg.id);
      return;
    }
    case "stats":
      reply({ ack: cmd, stats: { ...stats } }, msg.id);
      return;
    case "health": {
      const n = Number((msg as { status?: unknown }).status);
      if (!Number.isInteger(n) || n < 200 || n > 599) {
        reply({ ack: cmd, error: "status must be an HTTP status from 200 to 599" }, msg.id);
        return;
      }
      healthStatus = n;
      reply({ ack: cmd }, msg.id);
      return;
    }
    default:
      reply({ ack: cmd, error: `unknown command ${cmd}` }, msg.id);
  }
});

function shutdown(code: number): void {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const session of sessions) {
    try {
      session.destroy();
    } catch {
      /* ignore */
    }
  }
  try {
    server.close();
  } catch {
    /* not listening */
  }
  process.exit(code);
}

process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
// Parent died or closed the IPC channel: never outlive it.
process.on("disconnect", () => shutdown(0));

import http2 from "node:http2";
import net from "node:net";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { startBackend, startBackends, stopAllBackends, type Backend } from "../helpers/backends.js";
import { mulberry32 } from "../helpers/random.js";
import { makeTestPki } from "../helpers/tls.js";

// ---------------------------------------------------------------------------
// Small bounded helpers (every wait in this file has a deadline).

function withTimeout<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const openSessions = new Set<http2.ClientHttp2Session>();

function track(session: http2.ClientHttp2Session): http2.ClientHttp2Session {
  openSessions.add(session);
  session.once("close", () => openSessions.delete(session));
  return session;
}

/** Connect and wait for the HTTP/2 session to be established (or fail). */
function connect(authority: string, options: http2.SecureClientSessionOptions = {}): Promise<http2.ClientHttp2Session> {
  const session = track(http2.connect(authority, options));
  return withTimeout(
    new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      session.once("connect", () => {
        session.removeListener("error", reject);
        // Keep a listener so late session errors never become uncaught.
        session.on("error", () => {});
        resolve(session);
      });
      session.once("error", reject);
    }),
    3_000,
    `connect ${authority}`,
  ).catch((err: unknown) => {
    session.destroy();
    throw err;
  });
}

function url(b: Backend): string {
  return `${b.tls ? "https" : "http"}://${b.key}`;
}

interface Result {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders | undefined;
  body: string;
  rstCode: number | undefined;
  error: (Error & { code?: string }) | undefined;
}

/** One request; resolves when the stream closes (successfully or not). */
function request(session: http2.ClientHttp2Session, path = "/", init: { method?: string; body?: string } = {}): Promise<Result> {
  return withTimeout(
    new Promise<Result>((resolve) => {
      const result: Result = { status: undefined, headers: undefined, body: "", rstCode: undefined, error: undefined };
      const stream = session.request({ ":path": path, ":method": init.method ?? "GET" });
      stream.setEncoding("utf8");
      stream.on("response", (headers) => {
        result.headers = headers;
        result.status = Number(headers[":status"]);
      });
      stream.on("data", (chunk: string) => {
        result.body += chunk;
      });
      stream.on("error", (err: Error & { code?: string }) => {
        result.error = err;
      });
      stream.on("close", () => {
        result.rstCode = stream.rstCode;
        resolve(result);
      });
      stream.end(init.body);
    }),
    5_000,
    `request ${path}`,
  );
}

function ping(session: http2.ClientHttp2Session): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    session.ping((err, duration) => (err ? reject(err) : resolve(duration)));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

afterEach(() => {
  for (const s of openSessions) s.destroy();
  openSessions.clear();
});

afterAll(async () => {
  await stopAllBackends();
});

// ---------------------------------------------------------------------------

describe("test backends (real processes)", () => {
  describe("three backends on one shared port", () => {
    let trio: Backend[] = [];

    it("start on 127.0.0.2/.3/.4 with the same port and answer with their own identity", async () => {
      trio = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
      expect(trio.map((b) => b.host)).toEqual(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
      expect(new Set(trio.map((b) => b.port)).size).toBe(1);
      expect(new Set(trio.map((b) => b.pid)).size).toBe(3);

      for (const b of trio) {
        expect(b.key).toBe(`${b.host}:${b.port}`);
        const session = await connect(url(b));
        const res = await request(session);
        expect(res.status).toBe(200);
        expect(res.headers?.["x-backend"]).toBe(b.key);
        expect(res.body).toBe(`ok ${b.key}`);

        const echo = await request(session, "/echo", { method: "POST", body: "hello" });
        expect(echo.status).toBe(200);
        expect(echo.body).toBe("hello");

        const st = await request(session, "/status/503");
        expect(st.status).toBe(503);
        expect(st.headers?.["x-backend"]).toBe(b.key);
      }
    });

    it("delay command slows every response down", async () => {
      const b = trio[0]!;
      expect(await b.command({ cmd: "delay", ms: 50 })).toEqual({ ack: "delay" });
      const session = await connect(url(b));
      const t0 = performance.now();
      const res = await request(session);
      const elapsed = performance.now() - t0;
      expect(res.status).toBe(200);
      expect(elapsed).toBeGreaterThanOrEqual(40);
      await b.command({ cmd: "delay", ms: 0 });

      // Per-request ?delay=N works too.
      const t1 = performance.now();
      expect((await request(session, "/?delay=60")).status).toBe(200);
      expect(performance.now() - t1).toBeGreaterThanOrEqual(50);
    });

    it("stall with a seed: each request stalls at random with that probability, the same draws for the same seed", async () => {
      const b = trio[2]!;
      expect(await b.command({ cmd: "stall", percent: 20, ms: 1, seed: 42 })).toEqual({ ack: "stall" });
      const session = await connect(url(b));
      const before = (await b.stats()).stalled;
      for (let i = 0; i < 200; i++) expect((await request(session)).status).toBe(200);
      const stalled = (await b.stats()).stalled - before;
      // The backend draws from mulberry32(42), one draw per request: the same count as drawing here.
      const rnd = mulberry32(42);
      let expected = 0;
      for (let i = 0; i < 200; i++) if (rnd() * 100 < 20) expected++;
      expect(stalled).toBe(expected);
      // Evenly spread (no seed) would be exactly 40: this seed draws another count, so the draws are random.
      expect(expected).not.toBe(40);
      expect(await b.command({ cmd: "stall", percent: 20, ms: 1, seed: 1.5 })).toMatchObject({ ack: "stall", error: expect.stringContaining("seed") });
      await b.command({ cmd: "stall", percent: 0, ms: 0 });
    });

    it("refuse-next resets the next stream with REFUSED_STREAM (7)", async () => {
      const b = trio[1]!;
      const before = await b.stats();
      expect(await b.command({ cmd: "refuse-next", n: 1 })).toEqual({ ack: "refuse-next" });
      const session = await connect(url(b));

      const refused = await request(session);
      expect(refused.rstCode).toBe(http2.constants.NGHTTP2_REFUSED_STREAM);
      expect(refused.rstCode).toBe(7);
      expect(refused.status).toBeUndefined();
      expect(refused.error?.code).toBe("ERR_HTTP2_STREAM_ERROR");
      // The session itself survives a refused stream.
      expect(session.closed || session.destroyed).toBe(false);

      const ok = await request(session);
      expect(ok.status).toBe(200);
      expect(ok.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);

      const after = await b.stats();
      expect(after.refused - before.refused).toBe(1);
      expect(after.requests - before.requests).toBe(1);
      expect(after.sessions - before.sessions).toBe(1);
    });
  });

  it("goaway: client sees a 'goaway' event, in-flight streams complete, new streams are rejected", async () => {
    const b = await startBackend({ host: "127.0.0.5" });
    const session = await connect(url(b));
    const goaway = withTimeout(
      new Promise<{ code: number; lastStreamID: number }>((resolve) => {
        // NB: node may emit 'goaway' more than once per session (see report).
        session.once("goaway", (code, lastStreamID) => resolve({ code, lastStreamID }));
      }),
      3_000,
      "goaway event",
    );
    const closed = withTimeout(new Promise<void>((resolve) => session.once("close", () => resolve())), 5_000, "session close after goaway");

    const inFlight = request(session, "/?delay=300");
    await sleep(50); // let the HEADERS frame reach the server
    expect(await b.command({ cmd: "goaway" })).toEqual({ ack: "goaway" });

    const ev = await goaway;
    expect(ev.code).toBe(http2.constants.NGHTTP2_NO_ERROR);
    expect(ev.lastStreamID).toBeGreaterThanOrEqual(1);

    // Node closes the client session on a NO_ERROR GOAWAY. Node 20 makes request() throw
    // ERR_HTTP2_GOAWAY_SESSION; Node 24 returns a stream that is cancelled before it gets an
    // id. Either way nothing reaches the server (dialtone classifies both as unprocessed).
    let refused: { code?: string; id?: number } | undefined;
    try {
      const late = session.request({ ":path": "/" });
      refused = await new Promise((resolve) => late.once("error", (e: NodeJS.ErrnoException) => resolve({ code: e.code, id: late.id })));
    } catch (e) {
      refused = { code: (e as NodeJS.ErrnoException).code };
    }
    expect(["ERR_HTTP2_GOAWAY_SESSION", "ERR_HTTP2_STREAM_CANCEL"]).toContain(refused?.code);
    expect(refused?.id).toBeUndefined();

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.headers?.["x-backend"]).toBe(b.key);
    await closed;

    // server.close() stopped accepting: a fresh connection is refused.
    await expect(connect(url(b))).rejects.toMatchObject({ code: "ECONNREFUSED" });

    // The process is still alive and controllable.
    expect((await b.stats()).requests).toBe(1);
    await b.stop();
    expect(await b.exited).toBe(0);
  });

  it("SIGSTOP leaves PINGs unanswered; SIGCONT brings them back", async () => {
    const b = await startBackend({ host: "127.0.0.6" });
    const session = await connect(url(b));
    await withTimeout(ping(session), 2_000, "ping before freeze");

    b.freeze();
    const frozenPing = ping(session);
    frozenPing.catch(() => {}); // may be cancelled on teardown
    const outcome = await Promise.race([frozenPing.then(() => "answered"), sleep(500).then(() => "silent")]);
    expect(outcome).toBe("silent");

    b.thaw();
    await withTimeout(ping(session), 2_000, "ping after thaw");
    await withTimeout(frozenPing, 2_000, "ping sent while frozen");

    // A frozen process is still stoppable (stop() sends SIGCONT first).
    b.freeze();
    await withTimeout(b.stop(), 4_000, "stop frozen backend");
  });

  it("TLS: accepts the right servername with the test CA and rejects a wrong one", async () => {
    const pki = makeTestPki(["dialtone.test"]);
    const b = await startBackend({ host: "127.0.0.7", tls: { cert: pki.cert, key: pki.key } });
    expect(b.tls).toBe(true);

    const good = await connect(url(b), { ca: pki.ca, servername: "dialtone.test" });
    const res = await request(good);
    expect(res.status).toBe(200);
    expect(res.headers?.["x-backend"]).toBe(b.key);
    expect(good.alpnProtocol).toBe("h2");

    await expect(connect(url(b), { ca: pki.ca, servername: "wrong.test" })).rejects.toMatchObject({
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
    });
    // Without the CA the chain is untrusted.
    await expect(connect(url(b), { servername: "dialtone.test" })).rejects.toMatchObject({
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    });

    // The backend survived the rejected handshakes.
    expect((await request(good)).status).toBe(200);
  });

  it("IPv6 loopback works and uses the bracketed key", async () => {
    let b: Backend;
    try {
      b = await startBackend({ host: "::1" });
    } catch (err) {
      // Some sandboxes have no ::1; that is not what this file is testing.
      if ((err as { code?: string }).code === "EADDRNOTAVAIL") return;
      throw err;
    }
    expect(b.key).toBe(`[::1]:${b.port}`);
    const session = await connect(url(b));
    expect((await request(session)).headers?.["x-backend"]).toBe(b.key);
  });

  it("startBackends retries on another port when the shared port is taken", async () => {
    const blocker = net.createServer();
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        blocker.once("error", reject);
        blocker.listen({ host: "127.0.0.10", port: 0 }, () => resolve());
      }),
      2_000,
      "blocker listen",
    );
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(startBackend({ host: "127.0.0.10", port: taken })).rejects.toMatchObject({ code: "EADDRINUSE" });
      const pair = await startBackends(["127.0.0.9", "127.0.0.10"], { port: taken });
      expect(pair[0]!.port).toBe(pair[1]!.port);
      expect(pair[0]!.port).not.toBe(taken);
      await Promise.all(pair.map((b) => b.stop()));
    } finally {
      blocker.close();
    }
  });

  it("refuses non-loopback hosts", async () => {
    await expect(startBackend({ host: "0.0.0.0" })).rejects.toMatchObject({ code: "EINVAL" });
  });

  it("kill() closes the client session", async () => {
    const b = await startBackend({ host: "127.0.0.8" });
    const session = await connect(url(b));
    await request(session);
    const closed = withTimeout(new Promise<void>((resolve) => session.once("close", () => resolve())), 3_000, "session close after kill");
    await withTimeout(b.kill(), 3_000, "kill");
    expect(b.running).toBe(false);
    expect(await b.exited).toBeNull();
    await closed;
  });
});

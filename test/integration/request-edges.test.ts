import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { AbortedError, BadRequestError, ConnectError, DialtoneError, NoMemberError, RequestError, type ChannelEvent } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";
import { makeTestPki } from "../helpers/tls.js";

const { open } = channelFixture();

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe("bad input fails its own call, never a member (real HTTP/2 backends)", () => {
  it("bad headers, methods and paths are BadRequestErrors; 26 unrelated requests in flight all succeed and no member is lost", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"], { delayMs: 300 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 2 });
    await ch.ready(AbortSignal.timeout(10_000));
    const lost: ChannelEvent[] = [];
    ch.on((e) => {
      if (e.type === "evicted" || e.type === "member-removed" || e.type === "draining") lost.push(e);
    });
    const inFlight = Array.from({ length: 26 }, () => ch.request({ path: "/" }));
    await new Promise((r) => setTimeout(r, 50));
    const bad: Array<Parameters<typeof ch.request>[0]> = [
      { path: "/", headers: { "bad header": "x" } },
      { path: "/", headers: { "x-a": "one\ntwo" } },
      { path: "/", headers: { "x-a": "one\r\nx-b: two" } },
      { path: "/", headers: { connection: "keep-alive" } },
      { path: "/", headers: { "Transfer-Encoding": "chunked" } },
      { path: "/", headers: { te: "gzip" } },
      { path: "/", headers: { ":authority": "evil.test" } },
      { path: "/", headers: { "x-a": "\u0100" } },
      { path: "/", headers: { "x-a": " padded " } },
      { path: "/", headers: { "x-a": { nested: 1 } as unknown as string } },
      { path: "/", headers: { "x-big": "x".repeat(70_000) } },
      { path: "/", headers: { "content-length": "abc" }, method: "POST", body: "x" },
      { path: "/", headers: { "content-length": "5" }, method: "POST", body: "abc" },
      { path: "/", method: "CONNECT" },
      { path: "/", method: "G ET" },
      { path: "/", method: "" },
      { path: "no-slash" },
      { path: "/a b" },
      { path: "/\u00e9" },
      { path: "/", unknown: 1 } as unknown as Parameters<typeof ch.request>[0],
    ];
    for (const init of bad) {
      const err = await errorOf(ch.request({ ...init, idempotent: true }));
      expect(err, JSON.stringify(Object.keys(init.headers ?? {}))).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).code).toBe("ERR_DIALTONE_BAD_REQUEST");
    }
    const big = await errorOf(ch.request({ path: "/", headers: { "x-big": "x".repeat(70_000) } }));
    expect((big as BadRequestError).reason).toBe("too-large");
    expect(((await errorOf(ch.request({ path: "/", headers: { "bad header": "x" } }))) as BadRequestError).reason).toBe("invalid");
    // Values are never echoed (they may be credentials): only names are.
    const secret = await errorOf(ch.request({ path: "/", headers: { authorization: "Bearer s3cret\n" } }));
    expect((secret as Error).message).toContain("authorization");
    expect((secret as Error).message).not.toContain("s3cret");
    const results = await Promise.allSettled(inFlight);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    expect(lost).toEqual([]);
    const stats = await Promise.all(backends.map((b) => b.stats()));
    expect(stats.map((s) => s.sessions)).toEqual([1, 1]);
    expect(ch.stats().members.map((m) => m.state)).toEqual(["ready", "ready"]);
    // Bad input is the caller's, never the channel's last error.
    expect(ch.stats().lastError).toBeUndefined();
  });

  it('per-call options are checked: timeout NaN, -1, "5s", Infinity or past 2^31-1 ms is a BadRequestError, not a timeout', async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    for (const timeout of [Number.NaN, -1, "5s", Number.POSITIVE_INFINITY, 3e9, 0]) {
      const err = await errorOf(ch.request({ path: "/", timeout: timeout as number }));
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).field).toBe("timeout");
    }
    expect((await errorOf(ch.request({ path: "/", signal: {} as AbortSignal }))) as BadRequestError).toBeInstanceOf(BadRequestError);
    expect((await ch.request({ path: "/", timeout: 2_147_483_647 })).status).toBe(200);
    expect((await backends[0]!.stats()).requests).toBe(1);
  });
});

describe("deadlines (real HTTP/2 backend that answers 400 ms late)", () => {
  it("each request times out at its own deadline, a short one sent behind long ones first; the cancelled streams free the member", async () => {
    const backends = await startBackends(["127.0.0.2"], { delayMs: 400 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const started = performance.now();
    const settled = (p: Promise<unknown>): Promise<{ err: unknown; ms: number }> =>
      p.then(
        () => ({ err: undefined, ms: performance.now() - started }),
        (err: unknown) => ({ err, ms: performance.now() - started }),
      );
    // Long deadlines first, then a short one: it must not wait behind them.
    const long = Array.from({ length: 5 }, () => settled(ch.request({ path: "/", timeout: 5_000 })));
    const short = settled(ch.request({ path: "/", timeout: 120 }));
    const s = await short;
    expect(s.err).toBeInstanceOf(RequestError);
    expect((s.err as RequestError).code).toBe("ERR_DIALTONE_REQUEST_TIMEOUT");
    // Not before its deadline; and it failed, so it did not wait for the backend's answer at 400 ms.
    expect(s.ms).toBeGreaterThanOrEqual(115);
    for (const l of await Promise.all(long)) expect(l.err).toBeUndefined();
    expect(ch.stats().members[0]!.inFlight).toBe(0);
  });
});

describe("aborts (real HTTP/2 backend)", () => {
  it("a pre-aborted signal, or one aborted in the same tick, never reaches the backend", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const reason = new Error("caller went away");
    const pre = await Promise.all(
      Array.from({ length: 50 }, () => errorOf(ch.request({ method: "POST", path: "/", body: "x", signal: AbortSignal.abort(reason) }))),
    );
    const sameTick = await Promise.all(
      Array.from({ length: 50 }, () => {
        const ac = new AbortController();
        const p = errorOf(ch.request({ method: "POST", path: "/", body: "x", signal: ac.signal }));
        ac.abort(reason);
        return p;
      }),
    );
    for (const err of [...pre, ...sameTick]) {
      expect(err).toBeInstanceOf(AbortedError);
      expect((err as AbortedError).code).toBe("ERR_DIALTONE_ABORTED");
      expect((err as AbortedError).cause).toBe(reason);
    }
    expect((await backends[0]!.stats()).requests).toBe(0);
    expect(ch.stats().members[0]!.inFlight).toBe(0);
  });

  it("an abort after the HEADERS left cancels the stream with RST_STREAM CANCEL and says so; the member stays", async () => {
    const backends = await startBackends(["127.0.0.2"], { delayMs: 1000 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const ac = new AbortController();
    const p = errorOf(ch.request({ path: "/", signal: ac.signal }));
    await new Promise((r) => setTimeout(r, 100));
    ac.abort(); // a DOMException reason
    const err = await p;
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as Error).message).toContain("RST_STREAM CANCEL");
    expect((err as Error).message).not.toMatch(/reset by peer/);
    expect(((err as AbortedError).cause as Error).name).toBe("AbortError");
    expect(ch.stats().members[0]!.inFlight).toBe(0);
    expect(ch.stats().members[0]!.state).toBe("ready");
  });

  it("an abort while waiting for a member is an AbortedError carrying the signal's reason", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    await backends[0]!.kill();
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1, acquireTimeout: 5000 });
    const reason = new Error("shutting down");
    const err = await errorOf(ch.request({ path: "/", signal: AbortSignal.timeout(100) }));
    expect(err).toBeInstanceOf(AbortedError);
    expect(((err as AbortedError).cause as Error).name).toBe("TimeoutError");
    const ac = new AbortController();
    setTimeout(() => ac.abort(reason), 50);
    const err2 = await errorOf(ch.request({ path: "/", signal: ac.signal }));
    expect((err2 as AbortedError).cause).toBe(reason);
    expect((err2 as Error).message).toContain("shutting down");
  });
});

describe("bodies (real HTTP/2 backend echoing POST bodies)", () => {
  const blobOf = (s: string): Blob => new Blob([s]);
  async function* chunks(): AsyncGenerator<Uint8Array | string> {
    yield "he";
    yield new Uint8Array([108, 108]);
    yield Buffer.from("o");
  }

  it("accepts string, Buffer, Uint8Array, ArrayBuffer, DataView, typed arrays, Blob, Readable, AsyncIterable and ReadableStream", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const hello = Buffer.from("hello");
    const ab = new Uint8Array(hello).buffer;
    const cases: Array<[string, Parameters<typeof ch.request>[0]["body"]]> = [
      ["string", "hello"],
      ["Buffer", hello],
      ["Uint8Array", new Uint8Array(hello)],
      ["ArrayBuffer", ab],
      ["DataView", new DataView(ab)],
      ["Uint8Array view", new Uint8Array(Buffer.from("xxhelloxx")).subarray(2, 7)],
      ["DataView with offset", new DataView(new Uint8Array(Buffer.from("xxhelloxx")).buffer, 2, 5)],
      ["Blob", blobOf("hello")],
      ["Readable", Readable.from([Buffer.from("hel"), Buffer.from("lo")])],
      ["AsyncIterable", chunks()],
      ["ReadableStream", new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(new TextEncoder().encode("hello")), c.close()) })],
    ];
    for (const [name, body] of cases) {
      const r = await ch.request({ method: "POST", path: "/", body });
      expect(r.body.toString(), name).toBe("hello");
    }
    const f32 = new Float32Array([1.5, -2]);
    expect(Buffer.compare((await ch.request({ method: "POST", path: "/", body: f32 })).body, Buffer.from(f32.buffer))).toBe(0);
  });

  it("refuses numbers, plain objects, URLSearchParams, booleans and arrays with a BadRequestError naming the type", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    for (const body of [42, { a: 1 }, new URLSearchParams("a=1"), true, ["a"], Symbol("s")]) {
      const err = await errorOf(ch.request({ method: "POST", path: "/", body: body as unknown as string }));
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).field).toBe("body");
    }
    expect((await backends[0]!.stats()).requests).toBe(0);
  });

  it("a streamed body is pulled as HTTP/2 flow control allows, not buffered: a frozen backend stops the pull", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1, health: { suspectAfter: 0 } });
    await ch.ready(AbortSignal.timeout(10_000));
    let pulled = 0;
    const total = 32 * 1024 * 1024;
    async function* big(): AsyncGenerator<Uint8Array> {
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      while (pulled < total) {
        pulled += chunk.length;
        yield chunk;
      }
    }
    backends[0]!.freeze();
    const p = errorOf(ch.request({ method: "POST", path: "/", body: big(), timeout: 1500 }));
    await new Promise((r) => setTimeout(r, 1000));
    const atFreeze = pulled;
    backends[0]!.thaw();
    await p;
    expect(atFreeze).toBeLessThan(8 * 1024 * 1024);
  });

  it("a body stream that fails mid-way fails that call with ERR_DIALTONE_REQUEST_BODY, is not retried, and costs no member", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 2 });
    await ch.ready(AbortSignal.timeout(10_000));
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield Buffer.from("partial");
      throw new Error("disk read failed");
    }
    const err = await errorOf(ch.request({ method: "POST", path: "/", body: broken(), idempotent: true }));
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).code).toBe("ERR_DIALTONE_REQUEST_BODY");
    expect((err as Error).message).toContain("disk read failed");
    async function* wrongType(): AsyncGenerator<unknown> {
      yield 42;
    }
    const err2 = await errorOf(ch.request({ method: "POST", path: "/", body: wrongType() as AsyncIterable<Uint8Array> }));
    expect((err2 as RequestError).code).toBe("ERR_DIALTONE_REQUEST_BODY");
    expect(ch.stats().members.map((m) => m.state)).toEqual(["ready", "ready"]);
  });
});

describe("responses: trailers, streaming, limits (real HTTP/2 backend)", () => {
  it("request() returns trailers (gRPC's grpc-status can be read)", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const r = await ch.request({ path: "/trailers" });
    expect(r.body.toString()).toBe(`ok ${backends[0]!.key}`);
    expect(r.trailers["grpc-status"]).toBe("0");
    expect(r.trailers["x-checksum"]).toBe("c0ffee");
    expect((await ch.request({ path: "/" })).trailers).toEqual({});
  });

  it("requestStream(): the body streams with back-pressure, counts in flight until it ends, and ends with trailers", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const res = await ch.requestStream({ path: "/stream?chunks=400&size=16384" });
    expect(res.status).toBe(200);
    // Nobody reads for a while: the body buffers a bounded amount, the rest waits in the peer (flow control).
    await new Promise((r) => setTimeout(r, 300));
    expect(res.body.readableLength).toBeLessThanOrEqual(256 * 1024);
    expect(ch.stats().members[0]!.inFlight).toBe(1);
    let size = 0;
    for await (const chunk of res.body) size += (chunk as Buffer).length;
    expect(size).toBe(400 * 16384);
    expect(await res.trailers).toEqual(expect.any(Object));
    expect(ch.stats().members[0]!.inFlight).toBe(0);
    const t = await ch.requestStream({ path: "/trailers" });
    for await (const _ of t.body) void _;
    expect((await t.trailers)["grpc-status"]).toBe("0");
  });

  it("destroying a streamed body cancels the stream and frees the member", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const res = await ch.requestStream({ path: "/stream?chunks=1000&size=16384&every=5" });
    await new Promise((r) => setTimeout(r, 50));
    res.body.destroy();
    await expect(res.trailers).rejects.toBeInstanceOf(DialtoneError);
    await new Promise((r) => setTimeout(r, 50));
    expect(ch.stats().members[0]!.inFlight).toBe(0);
    expect(ch.stats().members[0]!.state).toBe("ready");
    expect((await ch.request({ path: "/" })).status).toBe(200);
  });

  it("request() stops collecting past maxResponseBytes with ERR_DIALTONE_RESPONSE_TOO_LARGE", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1, maxResponseBytes: 4096 });
    await ch.ready(AbortSignal.timeout(10_000));
    const err = await errorOf(ch.request({ path: "/stream?chunks=10&size=1024" }));
    expect((err as RequestError).code).toBe("ERR_DIALTONE_RESPONSE_TOO_LARGE");
    expect((await ch.request({ path: "/stream?chunks=4&size=1024" })).body.length).toBe(4096);
  });
});

describe("TLS to an IP-literal target (real HTTP/2 TLS backend)", () => {
  it("https://<IP> connects and verifies the certificate against the IP (IP SAN); without one it is refused; rejectUnauthorized:false connects", async () => {
    const withIp = makeTestPki(["127.0.0.2"]);
    const [b] = await startBackends(["127.0.0.2"], { tls: { cert: withIp.cert, key: withIp.key } });
    const ch = open({ target: `https://127.0.0.2:${b!.port}`, members: 1, tls: { ca: withIp.ca } });
    await ch.ready(AbortSignal.timeout(10_000));
    expect((await ch.request({ path: "/" })).status).toBe(200);
  });

  it("an IP target whose certificate only names a host is refused with the reason; rejectUnauthorized:false connects", async () => {
    const byName = makeTestPki(["only-a-name.test"]);
    const [b] = await startBackends(["127.0.0.2"], { tls: { cert: byName.cert, key: byName.key } });
    const strict = open({ target: `https://127.0.0.2:${b!.port}`, members: 1, tls: { ca: byName.ca }, acquireTimeout: 800 });
    const err = await errorOf(strict.request({ path: "/" }));
    expect(err).toBeInstanceOf(NoMemberError);
    expect((err as NoMemberError).lastError as Error).toBeInstanceOf(ConnectError);
    expect((err as Error).message).toMatch(/IP: 127\.0\.0\.2 is not in the cert's list|ERR_TLS_CERT_ALTNAME_INVALID/);
    const lax = open({ target: `https://127.0.0.2:${b!.port}`, members: 1, tls: { rejectUnauthorized: false } });
    await lax.ready(AbortSignal.timeout(10_000));
    expect((await lax.request({ path: "/" })).status).toBe(200);
  });
});

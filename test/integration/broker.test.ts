import * as grpc from "@grpc/grpc-js";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { Readable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startBackends, stopAllBackends, type Backend } from "../helpers/backends.js";
import { startBroker, stopAllBrokers, type BrokerProcess } from "../helpers/broker.js";

/**
 * The broker as a child process in front of real HTTP/2 backends, driven by
 * real clients: node:http (HTTP/1.1), node:http2 (h2c prior knowledge) and
 * @grpc/grpc-js.
 */

let api: Backend[];
let other: Backend[];
let broker: BrokerProcess;
let base: string;

beforeAll(async () => {
  api = await startBackends(["127.0.0.2", "127.0.0.3"]);
  other = await startBackends(["127.0.0.4"]);
  broker = await startBroker(`
listen: ["http://127.0.0.1:0"]
admin: "http://127.0.0.1:0"
upstreams:
  api:
    target: "http://api.internal:${api[0]!.port}"
    discovery: "static:///${api.map((b) => b.key).join(",")}"
    members: 2
    hosts: ["api.internal", "*.api.internal"]
  other:
    target: "http://other.internal:${other[0]!.port}"
    discovery: "static:///${other[0]!.key}"
    members: 1
    hosts: ["other.internal"]
    default: true
`);
  base = broker.listen[0]!;
});
afterAll(async () => {
  await stopAllBrokers();
  await stopAllBackends();
});

interface H1Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  trailers: NodeJS.Dict<string>;
  body: Buffer;
}

function h1(opts: { path: string; method?: string; host?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | Readable }): Promise<H1Response> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: Number(url.port),
        path: opts.path,
        method: opts.method ?? "GET",
        agent: false,
        headers: { ...(opts.host ? { host: opts.host } : {}), ...opts.headers },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("client timeout")));
    if (opts.body instanceof Readable) opts.body.pipe(req);
    else req.end(opts.body);
  });
}

async function h2(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer; chunks: Array<{ at: number; n: number }> }> {
  return await new Promise((resolve, reject) => {
    const s = session.request(headers, { endStream: body === undefined });
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Array<{ at: number; n: number }> = [];
    const data: Buffer[] = [];
    s.on("response", (h) => (head = h));
    s.on("trailers", (t) => (trailers = t));
    s.on("data", (c: Buffer) => {
      chunks.push({ at: performance.now(), n: c.length });
      data.push(c);
    });
    s.on("end", () => resolve({ headers: head, trailers, body: Buffer.concat(data), chunks }));
    s.on("error", reject);
    s.setTimeout(10_000, () => s.close(http2.constants.NGHTTP2_CANCEL));
    if (body !== undefined) s.end(body);
  });
}

describe("broker ingress: HTTP/1.1", () => {
  afterEach(() => {});

  it("routes by Host to the upstream whose hosts match, and to the default otherwise", async () => {
    const a = await h1({ path: "/headers", host: "api.internal:7000" });
    expect(a.status).toBe(200);
    expect(api.map((b) => b.key)).toContain(a.headers["x-backend"]);
    const w = await h1({ path: "/headers", host: "eu.API.internal" });
    expect(api.map((b) => b.key)).toContain(w.headers["x-backend"]);
    const d = await h1({ path: "/headers", host: "unknown.example" });
    expect(d.headers["x-backend"]).toBe(other[0]!.key);
  });

  it("streams a chunked request body up and echoes it back, byte for byte", async () => {
    const payload = Buffer.alloc(300_000, 7);
    for (let i = 0; i < payload.length; i += 997) payload[i] = i % 251;
    // A Readable of many small chunks: HTTP/1.1 chunked transfer, no content-length.
    const parts = Array.from({ length: 300 }, (_, i) => payload.subarray(i * 1000, (i + 1) * 1000));
    const r = await h1({ path: "/echo", method: "POST", host: "api.internal", body: Readable.from(parts) });
    expect(r.status).toBe(200);
    expect(r.body.equals(payload)).toBe(true);
  });

  it("strips hop-by-hop headers and forwards end-to-end ones", async () => {
    const r = await h1({
      path: "/headers",
      host: "api.internal",
      headers: {
        "x-keep": "yes",
        connection: "keep-alive, x-drop-me",
        "x-drop-me": "1",
        "keep-alive": "timeout=5",
        "proxy-authorization": "Basic c2VjcmV0",
        te: "trailers, deflate",
        authorization: "Bearer t",
      },
    });
    const seen = JSON.parse(r.body.toString()) as Record<string, string>;
    expect(seen["x-keep"]).toBe("yes");
    expect(seen.authorization).toBe("Bearer t");
    expect(seen.te).toBe("trailers");
    for (const h of ["connection", "x-drop-me", "keep-alive", "proxy-authorization", "host"]) expect(seen[h], h).toBeUndefined();
    // The backend sees the upstream's own authority, not the client's Host.
    expect(seen[":authority"]).toBe(`api.internal:${api[0]!.port}`);
  });

  it("answers an unknown host with 404 and a plain reason when there is no default", async () => {
    const b2 = await startBroker(`
listen: ["http://127.0.0.1:0"]
admin: off
upstreams:
  api: { target: "http://api.internal:${api[0]!.port}", discovery: "static:///${api[0]!.key}", members: 1, hosts: ["api.internal"] }
`);
    const url = new URL(b2.listen[0]!);
    const r = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: Number(url.port), path: "/", headers: { host: "nope.example" }, agent: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on("error", reject);
      req.end();
    });
    expect(r.status).toBe(404);
    expect(r.headers["x-dialtone-error"]).toBe("ERR_DIALTONE_BROKER_NO_ROUTE");
    expect(r.headers["content-type"]).toMatch(/^text\/plain/);
    expect(r.body).toContain('no upstream for host "nope.example"');
    expect(await b2.stop()).toBe(0);
  });

  it("maps a header the channel refuses to 400, and an oversized header block to 431, without harming the pool", async () => {
    const before = (await Promise.all(api.map((b) => b.stats()))).reduce((n, s) => n + s.sessions, 0);
    // Node's HTTP/1.1 parser accepts the asterisk form; an HTTP/2 :path cannot be "*": the channel refuses it.
    const raw = await rawH1(`OPTIONS * HTTP/1.1\r\nHost: api.internal\r\nConnection: close\r\n\r\n`);
    expect(raw).toMatch(/^HTTP\/1.1 400/);
    expect(raw.toLowerCase()).toContain("x-dialtone-error: err_dialtone_bad_request");
    // h2c CONNECT: the broker is no tunnel (501 with its reason, as over HTTP/1.1); never a lost member.
    const session = http2.connect(base);
    session.on("error", () => {});
    const connect = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      const st = session.request({ ":method": "CONNECT", ":authority": "api.internal:443" }, { endStream: false });
      st.on("response", (h) => resolve(h));
      st.on("error", reject);
      st.setTimeout(5_000, () => st.close());
    });
    session.destroy();
    expect(connect[":status"]).toBe(501);
    expect(connect["x-dialtone-error"]).toBe("ERR_DIALTONE_BROKER_UNSUPPORTED");
    const big = await h1({ path: "/headers", host: "api.internal", headers: { "x-big": "a".repeat(62 * 1024) } });
    expect(big.status).toBe(431);
    expect(big.headers["x-dialtone-error"]).toBe("ERR_DIALTONE_BAD_REQUEST");
    // The same members still serve: no session was lost or re-dialed.
    for (let i = 0; i < 6; i++) expect((await h1({ path: "/headers", host: "api.internal" })).status).toBe(200);
    const after = (await Promise.all(api.map((b) => b.stats()))).reduce((n, s) => n + s.sessions, 0);
    expect(after).toBe(before);
  });

  it("passes the backend's status and headers through (a 503 from the backend is not a broker error)", async () => {
    const r = await h1({ path: "/status/503", host: "api.internal" });
    expect(r.status).toBe(503);
    expect(r.headers["x-dialtone-error"]).toBeUndefined();
  });
});

describe("broker ingress: h2c prior knowledge", () => {
  it("forwards with trailers and streams the response as it arrives", async () => {
    const session = http2.connect(base);
    session.on("error", () => {});
    try {
      const t = await h2(session, { ":path": "/trailers", ":authority": "api.internal" });
      expect(t.headers[":status"]).toBe(200);
      expect(t.trailers["grpc-status"]).toBe("0");
      expect(t.trailers["x-checksum"]).toBe("c0ffee");

      const echoed = await h2(session, { ":path": "/echo", ":method": "POST", ":authority": "api.internal" }, Buffer.from("h2c body"));
      expect(echoed.body.toString()).toBe("h2c body");

      // 10 chunks, one every 150 ms: a buffering proxy would deliver them at the end in one burst.
      const s = await h2(session, { ":path": "/stream?chunks=10&size=100&every=150", ":authority": "api.internal" });
      expect(s.body.length).toBe(1000);
      expect(s.chunks.length).toBeGreaterThanOrEqual(8);
      const spread = s.chunks[s.chunks.length - 1]!.at - s.chunks[0]!.at;
      expect(spread).toBeGreaterThan(600);
    } finally {
      session.close();
    }
  });

  it("ends bodyless answers (HEAD, 204), maps an oversized header block to 431 with x-dialtone-error, and lets a client cancel mid-body", async () => {
    const session = http2.connect(base);
    session.on("error", () => {});
    try {
      const head = await h2(session, { ":path": "/", ":method": "HEAD", ":authority": "api.internal" });
      expect(head.headers[":status"]).toBe(200);
      expect(head.body.length).toBe(0);
      const empty = await h2(session, { ":path": "/status/204", ":authority": "api.internal" });
      expect(empty.headers[":status"]).toBe(204);
      expect(empty.body.length).toBe(0);
      // Under the ingress limit (64 KiB) but over what the channel sends (60 KiB): refused before any member sees it.
      const big = await h2(session, { ":path": "/headers", ":authority": "api.internal", "x-big": "a".repeat(62 * 1024) });
      expect(big.headers[":status"]).toBe(431);
      expect(big.headers["x-dialtone-error"]).toBe("ERR_DIALTONE_BAD_REQUEST");
      expect(big.body.toString()).toMatch(/header/);
      // Cancelled after its first chunk: the broker cancels the upstream stream and the request is over (nothing left in flight).
      await new Promise<void>((resolve, reject) => {
        const st = session.request({ ":path": "/stream?chunks=20&size=100&every=100", ":authority": "api.internal" });
        st.once("data", () => st.close(http2.constants.NGHTTP2_CANCEL));
        st.once("close", () => resolve());
        st.once("error", reject);
      });
      const stats = async (): Promise<number> => ((await (await fetch(`${broker.admin}/stats`)).json()) as { broker: { in_flight: number } }).broker.in_flight;
      const until = Date.now() + 3_000;
      while ((await stats()) !== 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await stats()).toBe(0);
      // The session is still good for the next request.
      expect((await h2(session, { ":path": "/headers", ":authority": "api.internal" })).headers[":status"]).toBe(200);
    } finally {
      session.close();
    }
  });

  it("carries a gRPC unary call from @grpc/grpc-js through to the backend and back", async () => {
    const url = new URL(base);
    const Client = grpc.makeGenericClientConstructor(
      {
        Echo: {
          path: "/dialtone.bench.Echo/Echo",
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      "Echo",
    );
    // grpc-js speaks h2c with prior knowledge over insecure credentials; :authority picks the upstream.
    const client = new Client(`${url.hostname}:${url.port}`, grpc.credentials.createInsecure(), { "grpc.default_authority": "api.internal" });
    try {
      const msg = Buffer.from("ping through the broker");
      const reply = await new Promise<Buffer>((resolve, reject) => {
        (client as unknown as { Echo(m: Buffer, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void }).Echo(
          msg,
          new grpc.Metadata(),
          { deadline: Date.now() + 5_000 },
          (err, r) => (err ? reject(err) : resolve(r as Buffer)),
        );
      });
      expect(reply.equals(msg)).toBe(true);
    } finally {
      client.close();
    }
  });
});

/** One raw HTTP/1.1 exchange, for bytes a well-behaved client library would not send. */
function rawH1(request: string): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(url.port), url.hostname);
    let out = "";
    sock.setTimeout(5_000, () => sock.destroy(new Error("raw client timeout")));
    sock.on("data", (d: Buffer) => (out += d.toString("latin1")));
    sock.on("end", () => resolve(out));
    sock.on("close", () => resolve(out));
    sock.on("error", reject);
    sock.write(Buffer.from(request, "latin1"));
  });
}

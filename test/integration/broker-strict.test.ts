import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startBroker, stopAllBrokers, type BrokerProcess } from "../helpers/broker.js";
import { startRecordingBackend, type RecordingBackend } from "../helpers/recording-backend.js";

/**
 * The broker as a strict HTTP intermediary, tried with clients no one here
 * wrote and a backend that records what reached it: Python's h2 library
 * (raw frames: RST_STREAM at each point of an exchange, a host field beside
 * :authority), raw TCP (a request then FIN, two Host lines, CONNECT), curl
 * (HTTP/1.1, --http2, --http2-prior-knowledge) and nghttp — and HAProxy
 * placed in front of the broker, as a real front proxy. Every refusal names
 * its reason in x-dialtone-error; after each case /stats shows no slot in
 * flight and the member still ready.
 */

const H2_CLIENT = fileURLToPath(new URL("../helpers/h2_client.py", import.meta.url));
const PYTHON = "/usr/bin/python3"; // Debian's, with python3-h2
const CANCEL = 8;

let backend: RecordingBackend;
let broker: BrokerProcess;
let port: number;
let dir: string;
let sock: string;
let haproxy: ChildProcess | undefined;
let haproxyPort: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dialtone-strict-"));
  sock = join(dir, "broker.sock");
  backend = await startRecordingBackend();
  broker = await startBroker(`
listen: ["http://127.0.0.1:0", "unix://${sock}"]
admin: "http://127.0.0.1:0"
allowOrigins: ["https://app.example"]
upstreams:
  rec:
    target: "http://rec.internal:${backend.port}"
    discovery: "static:///127.0.0.1:${backend.port}"
    members: 1
    default: true
    warm: true
  bus:
    kind: nats
    # Nothing listens there: a request the Origin check lets through waits acquireTimeout, then 503.
    target: "nats://127.0.0.1:9"
    members: 1
    acquireTimeout: 300ms
`);
  port = Number(new URL(broker.listen[0]!).port);
  expect(await eventually(async () => (await stats()).upstreams.rec.channel?.ready === 1, 10_000)).toBe(true);
  haproxyPort = await freePort();
  const cfg = join(dir, "haproxy.cfg");
  // HAProxy's HTTP mode takes HTTP/1.1 and h2c (it detects the preface) and speaks h2c to the broker;
  // abortonclose: a client that closes its connection aborts its request (HAProxy's default waits for the server).
  writeFileSync(
    cfg,
    `global\n  nbthread 1\n\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  option abortonclose\n\nfrontend fe\n  bind 127.0.0.1:${haproxyPort}\n  default_backend be\n\nbackend be\n  server broker 127.0.0.1:${port} proto h2\n`,
  );
  haproxy = spawn("haproxy", ["-f", cfg, "-db"], { stdio: ["ignore", "ignore", "pipe"] });
  expect(await eventually(() => connects(haproxyPort), 10_000)).toBe(true);
});

afterAll(async () => {
  if (haproxy && haproxy.exitCode === null) {
    const exited = new Promise((r) => haproxy?.once("exit", r));
    haproxy.kill("SIGKILL");
    await exited;
  }
  await stopAllBrokers();
  await backend.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface UpstreamStats {
  in_flight: number;
  open: boolean;
  channel: { ready: number; members: number } | null;
}
interface Stats {
  upstreams: { rec: UpstreamStats; bus: UpstreamStats };
}

async function stats(): Promise<Stats> {
  return (await (await fetch(`${broker.admin}/stats`)).json()) as Stats;
}

/** No slot left in flight, and the one member still ready: a client's cancel or a refusal costs nothing. */
async function expectNothingLeft(): Promise<void> {
  expect(await eventually(async () => (await stats()).upstreams.rec.in_flight === 0, 10_000)).toBe(true);
  const s = await stats();
  expect(s.upstreams.rec.channel?.ready).toBe(1);
  expect(s.upstreams.bus.in_flight).toBe(0);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function connects(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

interface H2Result {
  status: number | null;
  headers: Array<[string, string]>;
  body: string;
  reset: boolean;
  stream_reset: number | null;
}

/** One request from Python's h2. `signal` (reset "on-signal"): resolves when the client is to send RST_STREAM. */
function pyH2(spec: Record<string, unknown>, signal?: Promise<unknown>): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [H2_CLIENT, JSON.stringify(spec)], { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`h2 client failed: ${err.message} ${stderr}`));
      else resolve(JSON.parse(stdout) as H2Result);
    });
    void signal?.then(() => child.stdin?.write("reset\n"));
  });
}

function header(r: H2Result, name: string): string | undefined {
  return r.headers.find(([k]) => k === name)?.[1];
}

/** Raw bytes over TCP (or a unix socket): `fin` shuts down the client's side after them (as `nc -N` does). */
function raw(text: string, opts: { fin?: boolean; path?: string; port?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = opts.path ? net.connect(opts.path) : net.connect(opts.port ?? port, "127.0.0.1");
    let out = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no end of the response within 10 s; got ${JSON.stringify(out.slice(0, 200))}`));
    }, 10_000);
    s.on("connect", () => {
      s.write(text);
      if (opts.fin) s.end();
    });
    s.on("data", (d: Buffer) => {
      out += d.toString("latin1");
      // Without a FIN of its own the client reads until the response says it is complete.
      if (!opts.fin && /\r\n\r\n/.test(out) && out.endsWith("\n") && /content-length: (\d+)/i.test(out)) {
        const len = Number(/content-length: (\d+)/i.exec(out)?.[1]);
        if (out.length - out.indexOf("\r\n\r\n") - 4 >= len) s.end();
      }
    });
    s.on("error", reject);
    s.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe("a client's cancel reaches the backend as RST_STREAM CANCEL, and frees its slot", () => {
  const base = [
    [":method", "POST"],
    [":scheme", "http"],
  ];

  it("h2c: RST_STREAM while the request body is still open (no response head yet): the upload never looks complete", async () => {
    const path = "/hold-upload";
    const r = await pyH2(
      { port, headers: [...base, [":path", path], [":authority", "rec.internal"]], body: "a".repeat(100), end: false, reset: "on-signal" },
      eventually(() => backend.saw(path), 10_000),
    );
    expect(r.reset).toBe(true);
    const seen = await backend.closed(path);
    expect(seen).toMatchObject({ endStream: false, rstCode: CANCEL });
    await expectNothingLeft();
  });

  it("h2c: RST_STREAM after the whole request, before the response head", async () => {
    const path = "/hold-get";
    const r = await pyH2(
      {
        port,
        headers: [
          [":method", "GET"],
          [":scheme", "http"],
          [":path", path],
          [":authority", "rec.internal"],
        ],
        body: null,
        reset: "on-signal",
      },
      eventually(() => backend.saw(path), 10_000),
    );
    expect(r.status).toBeNull();
    expect(await backend.closed(path)).toMatchObject({ endStream: true, rstCode: CANCEL });
    await expectNothingLeft();
  });

  it("h2c: RST_STREAM after the response head, mid-body, upload still open", async () => {
    const path = "/head-upload";
    const r = await pyH2({ port, headers: [...base, [":path", path], [":authority", "rec.internal"]], body: "b".repeat(50), end: false, reset: "after-head" });
    expect(r.status).toBe(200);
    expect(await backend.closed(path)).toMatchObject({ endStream: false, rstCode: CANCEL, bytes: 50 });
    await expectNothingLeft();
  });

  it("HTTP/1.1: the connection closed mid-request body", async () => {
    const path = "/hold-h1-upload";
    const s = net.connect(port, "127.0.0.1");
    s.on("error", () => {});
    s.write(`POST ${path} HTTP/1.1\r\nhost: rec.internal\r\ncontent-length: 1000\r\n\r\n${"c".repeat(100)}`);
    expect(await eventually(() => backend.saw(path), 10_000)).toBe(true);
    s.destroy();
    expect(await backend.closed(path)).toMatchObject({ endStream: false, rstCode: CANCEL });
    await expectNothingLeft();
  });

  it("HTTP/1.1: the connection closed mid-response", async () => {
    const path = "/head-h1";
    const s = net.connect(port, "127.0.0.1");
    s.on("error", () => {});
    const head = new Promise<void>((resolve) => s.on("data", (d: Buffer) => d.toString().includes("200 OK") && resolve()));
    s.write(`GET ${path} HTTP/1.1\r\nhost: rec.internal\r\n\r\n`);
    await head;
    s.destroy();
    expect(await backend.closed(path)).toMatchObject({ rstCode: CANCEL });
    await expectNothingLeft();
  });

  it("through HAProxy in front of the broker: an h2c client's RST_STREAM before the head reaches the backend as CANCEL", async () => {
    const path = "/hold-via-haproxy";
    await pyH2(
      { port: haproxyPort, headers: [...base, [":path", path], [":authority", "rec.internal"]], body: "d".repeat(100), end: false, reset: "on-signal" },
      eventually(() => backend.saw(path), 10_000),
    );
    // Not endStream: HAProxy 2.6 itself ends the upload it forwards before it resets the stream; what the broker owes is the CANCEL.
    expect(await backend.closed(path)).toMatchObject({ rstCode: CANCEL });
    await expectNothingLeft();
  });

  it("through HAProxy: an HTTP/1.1 client gone mid-response reaches the backend as CANCEL", async () => {
    const path = "/head-via-haproxy";
    const s = net.connect(haproxyPort, "127.0.0.1");
    s.on("error", () => {});
    const head = new Promise<void>((resolve) => s.on("data", (d: Buffer) => d.toString().includes("200") && resolve()));
    s.write(`GET ${path} HTTP/1.1\r\nhost: rec.internal\r\n\r\n`);
    await head;
    s.destroy();
    expect(await backend.closed(path)).toMatchObject({ rstCode: CANCEL });
    await expectNothingLeft();
  });
});

describe("HTTP/1.1 half-close: a request followed by FIN is answered", () => {
  it("over TCP, a GET and a POST with a body", async () => {
    const get = await raw("GET /now-fin HTTP/1.1\r\nhost: rec.internal\r\n\r\n", { fin: true });
    expect(get).toMatch(/^HTTP\/1\.1 200 /);
    expect(get).toContain("ok");
    // raw() resolves only once the broker has ended the connection after answering. (Whether the head also says
    // `connection: close` depends on whether Node had read the FIN when the head was written: not asserted.)
    expect(get).toMatch(/\r\n0\r\n\r\n$|content-length/i);
    const post = await raw("POST /now-fin-post HTTP/1.1\r\nhost: rec.internal\r\ncontent-length: 5\r\n\r\nhello", { fin: true });
    expect(post).toMatch(/^HTTP\/1\.1 200 /);
    expect(await backend.closed("/now-fin-post")).toMatchObject({ endStream: true, bytes: 5, rstCode: 0 });
    await expectNothingLeft();
  });

  it("over the unix socket", async () => {
    const out = await raw("GET /now-fin-unix HTTP/1.1\r\nhost: rec.internal\r\n\r\n", { fin: true, path: sock });
    expect(out).toMatch(/^HTTP\/1\.1 200 /);
    expect(out).toContain("ok");
  });
});

describe("ambiguous Host is refused with 400", () => {
  it("HTTP/1.1 with two Host lines (RFC 9112 §3.2), also when both agree; the backend never sees it", async () => {
    for (const hosts of [
      ["rec.internal", "other.internal"],
      ["rec.internal", "rec.internal"],
    ]) {
      const out = await raw(`GET /now-two-hosts HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join("")}\r\n`);
      expect(out).toMatch(/^HTTP\/1\.1 400 /);
      expect(out).toContain("x-dialtone-error: ERR_DIALTONE_BAD_REQUEST");
      expect(out).toContain("more than one Host");
    }
    expect(backend.saw("/now-two-hosts")).toBe(false);
    await expectNothingLeft();
  });

  it("h2c with a host field naming another authority than :authority (RFC 9113 §8.3.1); an agreeing one is served", async () => {
    const bad = await pyH2({
      port,
      headers: [
        [":method", "GET"],
        [":scheme", "http"],
        [":path", "/now-authority"],
        [":authority", "rec.internal"],
        ["host", "other.internal"],
      ],
      body: null,
    });
    expect(bad.status).toBe(400);
    expect(header(bad, "x-dialtone-error")).toBe("ERR_DIALTONE_BAD_REQUEST");
    expect(bad.body).toContain(":authority");
    expect(backend.saw("/now-authority")).toBe(false);
    const same = await pyH2({
      port,
      headers: [
        [":method", "GET"],
        [":scheme", "http"],
        [":path", "/now-same-host"],
        [":authority", "rec.internal"],
        ["host", "REC.internal"],
      ],
      body: null,
    });
    expect(same.status).toBe(200);
    await expectNothingLeft();
  });

  it("through HAProxy: two Host lines never reach the backend, and a plain request is routed (no false alarm on what HAProxy sends)", async () => {
    const out = await raw("GET /now-two-hosts-haproxy HTTP/1.1\r\nHost: rec.internal\r\nHost: other.internal\r\n\r\n", { port: haproxyPort });
    expect(out).toMatch(/^HTTP\/1\.1 400 /);
    expect(backend.saw("/now-two-hosts-haproxy")).toBe(false);
    const ok = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "host: rec.internal", `http://127.0.0.1:${haproxyPort}/now-haproxy-h1`]);
    expect(ok.stdout).toBe("200");
    const h2 = await run("curl", ["-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_code}", `http://127.0.0.1:${haproxyPort}/now-haproxy-h2`]);
    expect(h2.stdout).toBe("200");
    await expectNothingLeft();
  });
});

describe("what Node's HTTP/1.1 parser refuses names its reason too", () => {
  // (A head over maxHeaderBytes gets 431 the same way; not tested here: the client's unread bytes make the close a
  // TCP reset, which may discard the response before a client reads it.)
  it("a malformed head gets 400 with x-dialtone-error", async () => {
    const bad = await raw("GET /now-bad HTTP/1.1\r\nHost: rec.internal\r\nBad Header\r\n\r\n");
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    expect(bad).toContain("x-dialtone-error: ERR_DIALTONE_BAD_REQUEST");
    expect(backend.saw("/now-bad")).toBe(false);
    await expectNothingLeft();
  });
});

describe("CONNECT and Upgrade are refused with 501 and a reason", () => {
  it("HTTP/1.1 CONNECT", async () => {
    const out = await raw("CONNECT rec.internal:443 HTTP/1.1\r\nHost: rec.internal:443\r\n\r\n");
    expect(out).toMatch(/^HTTP\/1\.1 501 /);
    expect(out).toContain("x-dialtone-error: ERR_DIALTONE_BROKER_UNSUPPORTED");
  });

  it("h2c CONNECT", async () => {
    const r = await pyH2({
      port,
      headers: [
        [":method", "CONNECT"],
        [":authority", "rec.internal:443"],
      ],
      body: null,
    });
    expect(r.status).toBe(501);
    expect(header(r, "x-dialtone-error")).toBe("ERR_DIALTONE_BROKER_UNSUPPORTED");
  });

  it("a WebSocket Upgrade (curl) is refused, never forwarded as a plain GET; curl --http2's Upgrade: h2c is served over HTTP/1.1", async () => {
    const ws = await run("curl", [
      "-s",
      "-D",
      "-",
      "-H",
      "Connection: Upgrade",
      "-H",
      "Upgrade: websocket",
      "-H",
      "Sec-WebSocket-Version: 13",
      "-H",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      `http://127.0.0.1:${port}/now-websocket`,
    ]);
    expect(ws.stdout).toMatch(/^HTTP\/1\.1 501 /);
    expect(ws.stdout.toLowerCase()).toContain("x-dialtone-error: err_dialtone_broker_unsupported");
    expect(backend.saw("/now-websocket")).toBe(false);
    const h2c = await run("curl", ["-s", "--http2", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", `http://127.0.0.1:${port}/now-h2c-upgrade`]);
    expect(h2c.stdout).toBe("200 1.1");
    await expectNothingLeft();
  });

  it("nghttp and curl --http2-prior-knowledge are served as before", async () => {
    const n = await run("nghttp", ["-s", `http://127.0.0.1:${port}/now-nghttp`]);
    expect(n.code).toBe(0);
    expect(backend.saw("/now-nghttp")).toBe(true);
    const c = await run("curl", ["-s", "--http2-prior-knowledge", `http://127.0.0.1:${port}/now-curl-h2`]);
    expect(c.stdout).toBe("ok");
  });
});

describe("cross-site requests: an Origin not in allowOrigins gets 403", () => {
  it("on the NATS bridge, before any NATS work (the channel is not even opened)", async () => {
    const r = await run("curl", [
      "-s",
      "-D",
      "-",
      "-X",
      "POST",
      "-H",
      "Origin: http://evil.example",
      "--data",
      "x",
      `http://127.0.0.1:${port}/nats/bus/publish/orders`,
    ]);
    expect(r.stdout).toMatch(/^HTTP\/1\.1 403 /);
    expect(r.stdout.toLowerCase()).toContain("x-dialtone-error: err_dialtone_broker_origin");
    const h2 = await pyH2({
      port,
      headers: [
        [":method", "POST"],
        [":scheme", "http"],
        [":path", "/nats/bus/publish/orders"],
        [":authority", "x"],
        ["origin", "null"],
      ],
      body: "x",
      end: true,
    });
    expect(h2.status).toBe(403);
    expect((await stats()).upstreams.bus.open).toBe(false);
    // A listed origin passes the check and reaches the channel (nothing listens there: 503 after acquireTimeout).
    const ok = await run("curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-X",
      "POST",
      "-H",
      "Origin: https://app.example",
      "--data",
      "x",
      `http://127.0.0.1:${port}/nats/bus/publish/orders`,
    ]);
    expect(ok.stdout).toBe("503");
    await expectNothingLeft();
  });

  it("on the admin listener; requests without an Origin and from a listed one are served", async () => {
    const r = await fetch(`${broker.admin}/stats`, { headers: { origin: "http://evil.example" } });
    expect(r.status).toBe(403);
    expect(r.headers.get("x-dialtone-error")).toBe("ERR_DIALTONE_BROKER_ORIGIN");
    expect((await fetch(`${broker.admin}/stats`, { headers: { origin: "https://app.example" } })).status).toBe(200);
    expect((await fetch(`${broker.admin}/metrics`)).status).toBe(200);
  });

  it("counts every refusal under upstream none with its status", async () => {
    await raw("GET /now-counted HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    await raw("CONNECT rec.internal:443 HTTP/1.1\r\nHost: rec.internal:443\r\n\r\n");
    await raw("POST /nats/bus/publish/x HTTP/1.1\r\nHost: a\r\nOrigin: http://evil.example\r\ncontent-length: 0\r\n\r\n");
    const text = await (await fetch(`${broker.admin}/metrics`)).text();
    for (const status of ["400", "403", "501"])
      expect(text).toMatch(new RegExp(`dialtone_broker_requests_total\\{upstream="none",status="${status}"\\} [1-9]`));
  });
});

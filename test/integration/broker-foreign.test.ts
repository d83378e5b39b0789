import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBroker, stopAllBrokers, type BrokerProcess } from "../helpers/broker.js";
import { makeDocroot, startNghttpd, startPythonGrpc, stopRealServers, type RealServer } from "../helpers/real-servers.js";

/**
 * The broker between clients and servers no one here wrote: curl (HTTP/1.1)
 * and nghttp (h2c) in front of nghttpd, a Python grpcio client in front of
 * Python grpcio servers — all from Debian's packages, as child processes.
 * (The NATS bridge against a real nats-server is broker-nats.test.ts.)
 */

const GRPC_CLIENT = fileURLToPath(new URL("../fixtures/grpc_client.py", import.meta.url));

let web: RealServer[];
let grpcs: RealServer[];
let broker: BrokerProcess;
let base: URL;
let dir: string;
let sock: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dialtone-foreign-"));
  sock = join(dir, "broker.sock");
  const docroot = makeDocroot();
  web = [
    await startNghttpd("127.0.0.2", docroot, { trailers: ["x-checksum: c0ffee"] }),
    await startNghttpd("127.0.0.3", docroot, { trailers: ["x-checksum: c0ffee"] }),
  ];
  grpcs = [await startPythonGrpc("127.0.0.4"), await startPythonGrpc("127.0.0.5")];
  broker = await startBroker(`
listen: ["http://127.0.0.1:0", "unix://${sock}"]
admin: off
upstreams:
  web:
    target: "http://web.internal:${web[0]!.port}"
    discovery: "static:///${web.map((s) => s.key).join(",")}"
    members: 2
    hosts: ["web.internal"]
    warm: true
  grpc:
    target: "http://grpc.internal:${grpcs[0]!.port}"
    discovery: "static:///${grpcs.map((s) => s.key).join(",")}"
    members: 2
    # One call at a time from the client: in-flight spreads them evenly (the test checks both servers serve).
    balancer: in-flight
    hosts: ["grpc.internal"]
    warm: true
`);
  base = new URL(broker.listen[0]!);
});
afterAll(async () => {
  await stopAllBrokers();
  await stopRealServers();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a client binary to completion (10 s at most); stdout as bytes. */
function run(cmd: string, args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000, encoding: "buffer", maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr: stderr.toString() });
    });
  });
}

/** curl's `-D -` output (status line and headers, then the body), split. */
function parseCurl(out: Buffer): { status: number; headers: Record<string, string>; body: Buffer } {
  const end = out.indexOf("\r\n\r\n");
  const head = out.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(":");
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(head[0]!.split(" ")[1]), headers, body: out.subarray(end + 4) };
}

describe("curl (HTTP/1.1) through the broker to nghttpd", () => {
  it("GETs a file, by Host, over TCP and over the unix socket", async () => {
    const tcp = await run("curl", ["-sS", "--http1.1", "-D", "-", "-H", "Host: web.internal", `${base.origin}/index.html`]);
    expect(tcp.stderr).toBe("");
    const r = parseCurl(tcp.stdout);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe("hello from a real server\n");
    const unix = await run("curl", ["-sS", "--http1.1", "--unix-socket", sock, "http://web.internal/index.html"]);
    expect(unix.code).toBe(0);
    expect(unix.stdout.toString()).toBe("hello from a real server\n");
  });

  it("uploads 256 KiB (nghttpd echoes it) and downloads 1 MiB whole", async () => {
    const payload = randomBytes(256 * 1024);
    const file = join(dir, "upload.bin");
    writeFileSync(file, payload);
    const up = await run("curl", [
      "-sS",
      "--http1.1",
      "-H",
      "Host: web.internal",
      "-H",
      "content-type: application/octet-stream",
      "--data-binary",
      `@${file}`,
      `${base.origin}/echo`,
    ]);
    expect(up.code).toBe(0);
    expect(up.stdout.equals(payload)).toBe(true);
    const out = join(dir, "big.bin");
    const big = await run("curl", ["-sS", "--http1.1", "-H", "Host: web.internal", "-o", out, "-w", "%{http_code} %{size_download}", `${base.origin}/big.bin`]);
    expect(big.stdout.toString()).toBe(`200 ${1024 * 1024}`);
    expect(readFileSync(out).equals(Buffer.alloc(1024 * 1024, 0x62))).toBe(true);
  });

  it("gets a 404 with x-dialtone-error and a plain reason for a host nothing serves", async () => {
    const r = parseCurl((await run("curl", ["-sS", "--http1.1", "-D", "-", "-H", "Host: nowhere.example", `${base.origin}/`])).stdout);
    expect(r.status).toBe(404);
    expect(r.headers["x-dialtone-error"]).toBe("ERR_DIALTONE_BROKER_NO_ROUTE");
    expect(r.body.toString()).toContain("no upstream for host");
  });
});

describe("nghttp (h2c prior knowledge) through the broker to nghttpd", () => {
  it("GETs with the backend's trailers passed through, and 20 concurrent streams on one connection all succeed", async () => {
    const one = await run("nghttp", ["-v", "-H", ":authority: web.internal", `${base.origin}/index.html`]);
    expect(one.code).toBe(0);
    const log = one.stdout.toString();
    expect(log).toContain(":status: 200");
    expect(log).toContain("hello from a real server");
    // nghttpd's trailer arrives as a HEADERS frame after the body, through the broker.
    expect(log).toMatch(/recv HEADERS frame[^\n]*\n[^]*x-checksum: c0ffee/);
    const many = await run("nghttp", ["-v", "-n", "-m", "20", "-H", ":authority: web.internal", `${base.origin}/index.html`]);
    expect(many.code).toBe(0);
    expect(many.stdout.toString().match(/:status: 200/g)?.length).toBe(20);
  });

  it("uploads a body (echoed) and downloads 1 MiB whole", async () => {
    const payload = randomBytes(100 * 1024);
    const file = join(dir, "h2-upload.bin");
    writeFileSync(file, payload);
    const up = await run("nghttp", ["-d", file, "-H", ":authority: web.internal", `${base.origin}/echo`]);
    expect(up.code).toBe(0);
    expect(up.stdout.equals(payload)).toBe(true);
    const big = await run("nghttp", ["-H", ":authority: web.internal", `${base.origin}/big.bin`]);
    expect(big.code).toBe(0);
    expect(big.stdout.length).toBe(1024 * 1024);
  });
});

interface GrpcClientResult {
  unary: Array<{ reply: string; backend: string | null; code: string }>;
  stream: { replies: string[]; backend: string | null; code: string };
  missing: string;
}

describe("Python grpcio client through the broker to Python grpcio servers", () => {
  it("unary calls spread over both servers, a server-streaming call gets every message, and UNIMPLEMENTED comes back as a status", async () => {
    const r = await run("/usr/bin/python3", [GRPC_CLIENT, `${base.hostname}:${base.port}`, "grpc.internal", "hello grpc", "12"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.toString()) as GrpcClientResult;
    expect(out.unary).toHaveLength(12);
    for (const u of out.unary) expect(u).toMatchObject({ reply: "hello grpc", code: "OK" });
    // The client holds one h2c connection to the broker; the broker spreads its calls over its members.
    expect(new Set(out.unary.map((u) => u.backend))).toEqual(new Set(grpcs.map((g) => g.key)));
    expect(out.stream).toMatchObject({ replies: ["hello grpc", "hello grpc", "hello grpc"], code: "OK" });
    expect(grpcs.map((g) => g.key)).toContain(out.stream.backend);
    // A trailers-only response (grpc-status 12 in the HEADERS frame) passes through as the status.
    expect(out.missing).toBe("UNIMPLEMENTED");
  });
});

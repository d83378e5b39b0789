/**
 * HTTP/2 servers no one here wrote, as child processes: nghttpd (nghttp2's
 * server), h2o and nghttpx (nghttp2's reverse proxy), from Debian's
 * packages, serving h2c (prior knowledge) on one loopback address. They can be killed (SIGKILL) and
 * frozen (SIGSTOP/SIGCONT); every one started here is reaped by
 * `stopRealServers()` and, failing that, when the test process exits.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RealServer {
  readonly kind: "nghttpd" | "h2o" | "nghttpx" | "python-grpc" | "connect-node" | "grpc-js";
  readonly host: string;
  readonly port: number;
  readonly key: string;
  /** The directory it serves files from. */
  readonly docroot: string;
  kill(): Promise<void>;
  freeze(): void;
  thaw(): void;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** A docroot with an index and a 1 MiB file, shared by the servers of one test. */
export function makeDocroot(): string {
  const dir = mkdtempSync(join(tmpdir(), "dialtone-docroot-"));
  writeFileSync(join(dir, "index.html"), "hello from a real server\n");
  writeFileSync(join(dir, "big.bin"), Buffer.alloc(1024 * 1024, 0x62));
  return dir;
}

export async function freePort(host: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Waits until the port accepts TCP (bounded). */
async function waitListening(host: string, port: number, child: ChildProcess, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`server exited with code ${child.exitCode} before listening on ${host}:${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, host);
      c.once("connect", () => (c.destroy(), resolve(true)));
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not listen on ${host}:${port} within ${ms} ms`);
}

function handle(kind: RealServer["kind"], child: ChildProcess, host: string, port: number, docroot: string): RealServer {
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => (live.delete(child), resolve())));
  return {
    kind,
    host,
    port,
    key: `${host}:${port}`,
    docroot,
    kill: async () => {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
      await exited;
    },
    freeze: () => void child.kill("SIGSTOP"),
    thaw: () => void child.kill("SIGCONT"),
  };
}

/**
 * nghttpd on `host`: serves `docroot`, echoes POST/PUT bodies (--echo-upload),
 * and adds `trailers` (e.g. "x-checksum: c0ffee") to every response.
 */
export async function startNghttpd(host: string, docroot: string, opts: { port?: number; trailers?: string[] } = {}): Promise<RealServer> {
  const port = opts.port ?? (await freePort(host));
  const args = ["--no-tls", `--address=${host}`, "-d", docroot, "--echo-upload", ...(opts.trailers ?? []).map((t) => `--trailer=${t}`), String(port)];
  const child = spawn("nghttpd", args, { stdio: "ignore" });
  await waitListening(host, port, child);
  return handle("nghttpd", child, host, port, docroot);
}

/** h2o on `host`, serving `docroot` over h2c (prior knowledge). */
export async function startH2o(host: string, docroot: string, opts: { port?: number } = {}): Promise<RealServer> {
  const port = opts.port ?? (await freePort(host));
  const dir = mkdtempSync(join(tmpdir(), "dialtone-h2o-"));
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, "h2o.conf");
  // Run as ourselves: h2o started as root otherwise switches to "nobody", who cannot write here.
  const user = process.getuid?.() === 0 ? "user: root\n" : "";
  writeFileSync(
    conf,
    `${user}listen:\n  host: ${host}\n  port: ${port}\nerror-log: ${join(dir, "error.log")}\nhosts:\n  default:\n    paths:\n      /:\n        file.dir: ${docroot}\n`,
  );
  const child = spawn("h2o", ["-c", conf], { stdio: "ignore" });
  await waitListening(host, port, child);
  return handle("h2o", child, host, port, docroot);
}

/**
 * nghttpx on `host`: an HTTP/2 reverse proxy (h2c frontend, prior knowledge)
 * in front of the HTTP/1.1 server at `backend`. One process
 * (--single-process: no worker left behind by a SIGKILL, and SIGSTOP
 * freezes all of it); no configuration file but these flags. It forwards
 * request headers it does not own unchanged (traceparent, tracestate) and
 * adds `via` and `x-forwarded-proto`, as it does by default.
 */
export async function startNghttpx(host: string, backend: { host: string; port: number }, opts: { port?: number } = {}): Promise<RealServer> {
  const port = opts.port ?? (await freePort(host));
  const args = [
    "--conf=/dev/null",
    "--single-process",
    `--frontend=${host},${port};no-tls`,
    `--backend=${backend.host},${backend.port};;proto=http/1.1`,
    "--errorlog-file=/dev/null",
  ];
  const child = spawn("nghttpx", args, { stdio: "ignore" });
  await waitListening(host, port, child);
  return handle("nghttpx", child, host, port, "");
}

/** Reaps every server started here. */
export async function stopRealServers(): Promise<void> {
  await Promise.all(
    [...live].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once("exit", () => resolve());
          c.kill("SIGCONT");
          c.kill("SIGKILL");
        }),
    ),
  );
}

export interface GrpcServer extends RealServer {
  /** Health/Check answers NOT_SERVING from now on (Python server only). */
  notServing(): void;
  /** Health/Check answers SERVING again. */
  serving(): void;
}

/** Spawns a fixture that prints "listening host:port" when ready; bounded wait. */
async function spawnFixture(kind: RealServer["kind"], cmd: string, args: string[], host: string, port: number): Promise<GrpcServer> {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} did not listen on ${host}:${port} within 10 s`)), 10_000);
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("listening")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code} before listening`));
    });
  });
  const h = handle(kind, child, host, port, "");
  return { ...h, notServing: () => void child.kill("SIGUSR1"), serving: () => void child.kill("SIGUSR2") };
}

/** A Python gRPC server (Debian's python3-grpcio, run by Debian's own python3). */
export async function startPythonGrpc(host: string, opts: { port?: number } = {}): Promise<GrpcServer> {
  const port = opts.port ?? (await freePort(host));
  const script = new URL("../fixtures/grpc_server.py", import.meta.url).pathname;
  return await spawnFixture("python-grpc", "/usr/bin/python3", [script, host, String(port)], host, port);
}

/** A connect-node server serving the same Echo service over h2c. */
export async function startConnectServer(host: string, opts: { port?: number } = {}): Promise<GrpcServer> {
  const port = opts.port ?? (await freePort(host));
  const script = new URL("../fixtures/connect-server.ts", import.meta.url).pathname;
  return await spawnFixture("connect-node", process.execPath, ["--import", "tsx", script, host, String(port)], host, port);
}

/** grpc's interop TestService in Python (test/fixtures/grpc_interop_server.py, Debian's python3-grpcio). */
export async function startPythonInterop(host: string, opts: { port?: number } = {}): Promise<GrpcServer> {
  const port = opts.port ?? (await freePort(host));
  const script = new URL("../fixtures/grpc_interop_server.py", import.meta.url).pathname;
  return await spawnFixture("python-grpc", "/usr/bin/python3", [script, host, String(port)], host, port);
}

/** grpc's interop TestService served by @grpc/grpc-js (test/fixtures/grpc_js_interop_server.ts), killable and freezable; over TLS with `tls`. */
export async function startGrpcJsInterop(host: string, opts: { port?: number; tls?: { cert: string; key: string } } = {}): Promise<GrpcServer> {
  const port = opts.port ?? (await freePort(host));
  const script = new URL("../fixtures/grpc_js_interop_server.ts", import.meta.url).pathname;
  const args = ["--import", "tsx", script, host, String(port)];
  if (opts.tls) {
    const file = join(mkdtempSync(join(tmpdir(), "dialtone-grpcjs-tls-")), "tls.json");
    writeFileSync(file, JSON.stringify({ cert: opts.tls.cert, key: opts.tls.key }));
    args.push(file);
  }
  return await spawnFixture("grpc-js", process.execPath, args, host, port);
}

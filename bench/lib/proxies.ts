/**
 * The broker benchmark's processes: nghttpd backends, and the proxies in
 * front of them — dialtone broker, HAProxy and nghttpx (Debian's packages),
 * and a raw Node HTTP/2 proxy — each h2c in and h2c out, on loopback only. Every child is
 * tracked and reaped: stopAllProcs(), and an exit hook that SIGKILLs (after
 * SIGCONT) whatever is left.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));

export interface Proc {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** The process's pid (its CPU time is read from /proc, with its children's: nghttpx's worker). */
  readonly pid: number;
  freeze(): void;
  thaw(): void;
}

/** Health checks and timeouts every proxy gets alike (dialtone's defaults: PING every 1 s, 750 ms timeout, 2 misses). */
export const HEALTH = { intervalMs: 1000, timeoutMs: 750, fall: 2, requestTimeoutMs: 2000 };

const live = new Set<ChildProcess>();
const dirs: string[] = [];
process.on("exit", () => {
  for (const c of live) {
    c.kill("SIGCONT");
    c.kill("SIGKILL");
  }
});

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "dialtone-bench-broker-"));
  dirs.push(d);
  return d;
}

/** Bounded wait until host:port accepts TCP, failing early if the process died. */
async function waitListening(name: string, child: ChildProcess, host: string, port: number, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before listening on ${host}:${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, host);
      c.once("connect", () => (c.destroy(), resolve(true)));
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not listen on ${host}:${port} within ${ms} ms`);
}

async function launch(name: string, cmd: string, args: string[], host: string, port: number): Promise<Proc> {
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "ignore"] });
  live.add(child);
  child.once("exit", () => live.delete(child));
  await waitListening(name, child, host, port);
  return { name, host, port, pid: child.pid as number, freeze: () => void child.kill("SIGSTOP"), thaw: () => void child.kill("SIGCONT") };
}

/** nghttpd serving `docroot` over h2c on host:port (all backends share one port, on 127.0.0.2, .3, …). */
export async function startNghttpd(host: string, port: number, docroot: string): Promise<Proc> {
  return await launch(`nghttpd ${host}`, "nghttpd", ["--no-tls", `--address=${host}`, "-d", docroot, String(port)], host, port);
}

export function docroot(): string {
  const d = tempDir();
  writeFileSync(join(d, "index.html"), "hello from nghttpd\n");
  return d;
}

export async function startDialtone(backends: Proc[]): Promise<Proc> {
  const port = await freePort();
  const conf = join(tempDir(), "broker.yaml");
  const h = HEALTH;
  writeFileSync(
    conf,
    `listen: ["http://127.0.0.1:${port}"]\nadmin: off\nlimits: { maxConnections: 4096, maxStreams: 1024 }\nupstreams:\n  web:\n    target: "http://web.internal:${backends[0]!.port}"\n    discovery: "static:///${backends.map((b) => `${b.host}:${b.port}`).join(",")}"\n    members: ${backends.length}\n    default: true\n    warm: true\n    requestTimeout: ${h.requestTimeoutMs}ms\n    health: { interval: ${h.intervalMs}ms, timeout: ${h.timeoutMs}ms, unhealthyAfter: ${h.fall} }\n`,
  );
  return await launch("dialtone broker", process.execPath, [CLI, "broker", "--config", conf], "127.0.0.1", port);
}

/**
 * The floor for any proxy built on Node's http2: a raw one, in the script
 * below. One h2c session per backend, streams dealt round-robin, each
 * forwarded with session.request() and piped both ways; a client's reset
 * cancels the upstream stream. No pool upkeep, health checks, retries,
 * timeouts, metrics or routing: what the broker adds over this is what it
 * costs for those.
 */
const RAW_PROXY = `
import http2 from "node:http2";
const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;
const [port, ...backends] = process.argv.slice(1);
const sessions = backends.map((b) => http2.connect("http://" + b).on("error", () => {}));
let next = 0;
const server = http2.createServer({ settings: { maxConcurrentStreams: 1024 } });
server.on("stream", (stream, headers) => {
  const session = sessions[next++ % sessions.length];
  const ends = stream.endAfterHeaders;
  const up = session.request({ ":method": headers[":method"], ":path": headers[":path"], ":authority": headers[":authority"] }, { endStream: ends });
  up.on("response", (h) => {
    if (!stream.destroyed) stream.respond(h);
  });
  up.pipe(stream);
  if (!ends) stream.pipe(up);
  up.on("error", () => !stream.destroyed && stream.close(NGHTTP2_INTERNAL_ERROR));
  stream.on("error", () => {});
  stream.on("close", () => !up.closed && up.close(NGHTTP2_CANCEL));
});
server.listen(Number(port), "127.0.0.1");
`;

export async function startNodeRaw(backends: Proc[]): Promise<Proc> {
  const port = await freePort();
  return await launch(
    "raw node proxy",
    process.execPath,
    ["--input-type=module", "-e", RAW_PROXY, String(port), ...backends.map((b) => `${b.host}:${b.port}`)],
    "127.0.0.1",
    port,
  );
}

/**
 * HAProxy 2.6, one thread (the broker is one Node thread), h2c in and out,
 * with its documented active HTTP health check over HTTP/2 (`option httpchk`,
 * `check-proto h2`) at the same interval, timeout and fall count.
 */
export async function startHaproxy(backends: Proc[]): Promise<Proc> {
  const port = await freePort();
  const conf = join(tempDir(), "haproxy.cfg");
  const h = HEALTH;
  const servers = backends
    .map((b, i) => `  server s${i} ${b.host}:${b.port} proto h2 check check-proto h2 inter ${h.intervalMs} fall ${h.fall} rise 2`)
    .join("\n");
  writeFileSync(
    conf,
    `global\n  nbthread 1\n  maxconn 8192\n\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server ${h.requestTimeoutMs}ms\n  timeout check ${h.timeoutMs}ms\n  retries 2\n  option redispatch\n\nfrontend fe\n  bind 127.0.0.1:${port} proto h2\n  default_backend be\n\nbackend be\n  balance leastconn\n  option httpchk\n  http-check send meth GET uri /index.html ver HTTP/2 hdr host web.internal\n  http-check expect status 200\n${servers}\n`,
  );
  return await launch("haproxy", "haproxy", ["-f", conf, "-db"], "127.0.0.1", port);
}

/**
 * nghttpx (nghttp2's proxy), one worker, h2c in and out. nghttpx has no
 * active health check for backends: it marks a backend failed when a
 * connection to it fails and probes it with its backoff; a frozen backend is
 * found only by --backend-read-timeout. That is its documented behaviour,
 * configured here with the same request timeout.
 */
export async function startNghttpx(backends: Proc[]): Promise<Proc> {
  const port = await freePort();
  const dir = tempDir();
  const conf = join(dir, "nghttpx.conf");
  writeFileSync(conf, "");
  const args = [
    `--conf=${conf}`,
    `--frontend=127.0.0.1,${port};no-tls`,
    ...backends.map((b) => `--backend=${b.host},${b.port};;proto=h2`),
    "--workers=1",
    `--backend-read-timeout=${HEALTH.requestTimeoutMs / 1000}s`,
    "--backend-connect-timeout=1s",
    `--errorlog-file=${join(dir, "error.log")}`,
    "--no-ocsp",
    "--frontend-http2-max-concurrent-streams=1024",
  ];
  return await launch("nghttpx", "nghttpx", args, "127.0.0.1", port);
}

/**
 * SIGCONT + SIGTERM every child started here (nghttpx's master stops its
 * worker process on SIGTERM; a SIGKILLed master would orphan it), SIGKILL
 * after 2 s, then remove their temp dirs.
 */
export async function stopAllProcs(): Promise<void> {
  await Promise.all(
    [...live].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const t = setTimeout(() => c.kill("SIGKILL"), 2000);
          c.once("exit", () => {
            clearTimeout(t);
            resolve();
          });
          c.kill("SIGCONT");
          c.kill("SIGTERM");
        }),
    ),
  );
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

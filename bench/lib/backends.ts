/**
 * Starts .build/test/fixtures/backend.js (test/fixtures/backend.ts, built) in child processes (one per loopback address,
 * all on one port) and controls them over IPC and signals. Every child is
 * tracked; an exit hook SIGCONTs and SIGKILLs survivors, and a backend also
 * exits by itself when its IPC channel to us closes.
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../../.build/test/fixtures/backend.js", import.meta.url));
const LISTEN_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = 2_000;
const PORT_ATTEMPTS = 10;

export type BackendCommand =
  | { cmd: "delay"; ms: number }
  | { cmd: "goaway" }
  | { cmd: "refuse-next"; n: number }
  | { cmd: "stats" }
  /** Answer `percent` % of requests (evenly spread) `ms` late. */
  | { cmd: "stall"; percent: number; ms: number }
  /** Answer every request but /healthz (and gRPC echo) with `status`; 0: normal. */
  | { cmd: "status"; status: number };

export interface BackendStats {
  requests: number;
  sessions: number;
  refused: number;
  stalled: number;
  /** Streams the client cancelled before the answer (hedges that lost). */
  cancelled: number;
}

export interface Backend {
  readonly host: string;
  readonly port: number;
  /** "127.0.0.2:PORT": the backend's x-backend response header. */
  readonly key: string;
  kill(): Promise<void>;
  freeze(): void;
  thaw(): void;
  command(msg: BackendCommand): Promise<{ ack: string; stats?: BackendStats; error?: string }>;
  stats(): Promise<BackendStats>;
  /** SIGCONT + SIGTERM, SIGKILL after 2 s; resolves once exited. */
  stop(): Promise<void>;
}

class StartError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const live = new Set<ChildProcess>();
let hooked = false;

function reapOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGCONT");
        child.kill("SIGKILL");
      } catch {
        /* already gone */
      }
    }
  });
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));
}

function waitListening(child: ChildProcess, label: string): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    let buffer = "";
    const done = (err: Error | undefined, value?: { host: string; port: number }): void => {
      clearTimeout(timer);
      child.stdout?.removeListener("data", onData);
      child.removeListener("exit", onExit);
      child.stdout?.resume();
      if (err) reject(err);
      else if (value) resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString("utf8");
      const nl = buffer.indexOf("\n");
      if (nl < 0) return;
      let line: { listening?: { host: string; port: number }; error?: { code: string; message: string } };
      try {
        line = JSON.parse(buffer.slice(0, nl)) as typeof line;
      } catch {
        return done(new Error(`backend ${label} wrote ${buffer.slice(0, nl)}`));
      }
      if (line.listening) done(undefined, line.listening);
      else done(new StartError(line.error?.code ?? "EUNKNOWN", `backend ${label}: ${line.error?.message ?? "failed"}`));
    };
    const onExit = (): void => done(new Error(`backend ${label} exited before listening`));
    const timer = setTimeout(() => done(new Error(`backend ${label} not listening after ${LISTEN_TIMEOUT_MS} ms`)), LISTEN_TIMEOUT_MS);
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
  });
}

export async function startBackend(host: string, port: number): Promise<Backend> {
  if (!existsSync(SCRIPT)) throw new Error(`${SCRIPT} not found: run npm run build first`);
  reapOnExit();
  const child = fork(SCRIPT, [JSON.stringify({ host, port })], { stdio: ["ignore", "pipe", "inherit", "ipc"], execArgv: [] });
  live.add(child);
  let running = true;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      running = false;
      live.delete(child);
      resolve();
    }),
  );
  child.on("error", () => {});
  let listening: { host: string; port: number };
  try {
    listening = await waitListening(child, `${host}:${port}`);
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    throw err;
  }
  const pending = new Map<number, (reply: { ack: string; stats?: BackendStats; error?: string }) => void>();
  let nextId = 1;
  child.on("message", (raw: unknown) => {
    const msg = raw as { id?: number; ack: string; stats?: BackendStats; error?: string };
    const resolve = typeof msg.id === "number" ? pending.get(msg.id) : undefined;
    if (resolve && msg.id !== undefined) {
      pending.delete(msg.id);
      resolve(msg);
    }
  });
  const signal = (sig: NodeJS.Signals): void => {
    if (running) child.kill(sig);
  };
  let stopping: Promise<void> | undefined;
  const backend: Backend = {
    host: listening.host,
    port: listening.port,
    key: `${listening.host}:${listening.port}`,
    async kill() {
      signal("SIGCONT");
      signal("SIGKILL");
      await exited;
    },
    freeze: () => signal("SIGSTOP"),
    thaw: () => signal("SIGCONT"),
    command(msg) {
      return new Promise((resolve, reject) => {
        if (!running || !child.connected) return reject(new Error(`backend ${backend.key} is not running`));
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`backend ${backend.key}: no reply to ${msg.cmd}`));
        }, COMMAND_TIMEOUT_MS);
        pending.set(id, (reply) => {
          clearTimeout(timer);
          resolve(reply);
        });
        child.send({ ...msg, id });
      });
    },
    async stats() {
      const reply = await backend.command({ cmd: "stats" });
      if (!reply.stats) throw new Error(`backend ${backend.key}: no stats`);
      return reply.stats;
    },
    stop() {
      stopping ??= (async () => {
        if (!running) return;
        signal("SIGCONT");
        signal("SIGTERM");
        const timer = setTimeout(() => signal("SIGKILL"), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
  return backend;
}

/** One backend per host on one shared port (ephemeral, then random ports on EADDRINUSE). */
export async function startBackends(hosts: string[]): Promise<Backend[]> {
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const started: Backend[] = [];
    try {
      const port = attempt === 0 ? 0 : 20_000 + Math.floor(Math.random() * 25_000);
      const first = await startBackend(hosts[0] as string, port);
      started.push(first);
      const rest = await Promise.allSettled(hosts.slice(1).map((h) => startBackend(h, first.port)));
      for (const r of rest) if (r.status === "fulfilled") started.push(r.value);
      const failed = rest.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
      return started;
    } catch (err) {
      lastError = err;
      await stopAll(started);
      if (!(err instanceof StartError && err.code === "EADDRINUSE")) throw err;
    }
  }
  throw new Error(`no shared port for ${hosts.join(",")}`, { cause: lastError });
}

export async function stopAll(backends: Backend[]): Promise<void> {
  await Promise.all(backends.map((b) => b.stop()));
}

/** 127.0.0.2, 127.0.0.3, … */
export function loopbackHosts(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${i + 2}`);
}

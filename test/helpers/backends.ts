/**
 * Real-process HTTP/2 backends for integration tests.
 *
 * Each backend is a forked `.build/test/fixtures/backend.js` (built by `npm run build`) serving h2c or
 * h2 (TLS) on one loopback address. Tests get a handle to control it over IPC
 * (delay / goaway / refuse-next / stats) and via signals (kill / freeze /
 * thaw / stop).
 *
 * Every backend started here is tracked; call `stopAllBackends()` in
 * `afterAll`. A process 'exit' hook SIGKILLs any survivors synchronously, and
 * the backend itself exits when its IPC channel to us disconnects.
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const BACKEND_SCRIPT = fileURLToPath(new URL("../../.build/test/fixtures/backend.js", import.meta.url));

const LISTEN_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 5_000;
const STOP_GRACE_MS = 2_000;
const SAME_PORT_ATTEMPTS = 10;

export interface BackendTlsOptions {
  cert: string;
  key: string;
  /** Require a client certificate signed by this CA (mTLS). */
  clientCa?: string;
}

export interface BackendOptions {
  /** Loopback address: 127.0.0.0/8 or ::1. */
  host: string;
  /** 0 / omitted = ephemeral. */
  port?: number;
  delayMs?: number;
  tls?: BackendTlsOptions;
  maxConcurrentStreams?: number;
}

export type BackendCommand =
  | { cmd: "delay"; ms: number }
  | { cmd: "goaway" }
  | { cmd: "refuse-next"; n: number }
  /** Answer every request but /healthz with `status` (0: back to normal). */
  | { cmd: "status"; status: number }
  /** Answer `percent` % of requests (evenly spread) `ms` late. */
  | { cmd: "stall"; percent: number; ms: number }
  | { cmd: "stats" }
  | { cmd: "health"; status: number };

export interface BackendStats {
  /** Streams that were processed (refused ones excluded). */
  requests: number;
  /** Sessions (connections) accepted since start. */
  sessions: number;
  /** Streams reset with REFUSED_STREAM because of refuse-next. */
  refused: number;
  /** PING frames received (acks excluded), over all sessions. */
  pings: number;
  /** Requests the stall command delayed. */
  stalled: number;
  /** Streams the client reset with CANCEL before they were answered (e.g. a hedge that lost). */
  cancelled: number;
}

export interface BackendReply {
  /** The `cmd` being acknowledged. */
  ack: string;
  /** Present for {cmd:"stats"}. */
  stats?: BackendStats;
  /** Present when the backend rejected the command's arguments. */
  error?: string;
}

export interface Backend {
  readonly host: string;
  readonly port: number;
  /** "127.0.0.2:PORT" or "[::1]:PORT" — same as the x-backend response header. */
  readonly key: string;
  readonly pid: number;
  readonly tls: boolean;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** True until the process has exited. */
  readonly running: boolean;
  /** SIGKILL; resolves once the process has exited. */
  kill(): Promise<void>;
  /** SIGSTOP: the process stops answering anything (TCP still accepts via the kernel backlog). */
  freeze(): void;
  /** SIGCONT. */
  thaw(): void;
  /** IPC command; resolves with the backend's reply (bounded: 5 s). */
  command(msg: BackendCommand): Promise<BackendReply>;
  /** Shorthand for command({cmd:"stats"}). */
  stats(): Promise<BackendStats>;
  /** SIGCONT + SIGTERM, SIGKILL after 2 s; resolves once exited. */
  stop(): Promise<void>;
}

export class BackendStartError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "BackendStartError";
    this.code = code;
  }
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) {
      try {
        child.kill("SIGKILL");
      } catch {
        /* already gone */
      }
    }
  });
}

const handles = new Set<Backend>();

function formatKey(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

interface ListeningLine {
  listening?: { host: string; port: number };
  error?: { code?: string; message?: string };
}

export async function startBackend(opts: BackendOptions): Promise<Backend> {
  if (!existsSync(BACKEND_SCRIPT)) {
    throw new Error(`backend script ${BACKEND_SCRIPT} not found: run npm run build first`);
  }
  installExitHook();

  const config = {
    host: opts.host,
    port: opts.port ?? 0,
    ...(opts.delayMs !== undefined ? { delayMs: opts.delayMs } : {}),
    ...(opts.tls !== undefined ? { tls: { ...opts.tls } } : {}),
    ...(opts.maxConcurrentStreams !== undefined ? { maxConcurrentStreams: opts.maxConcurrentStreams } : {}),
  };

  const child = fork(BACKEND_SCRIPT, [JSON.stringify(config)], {
    stdio: ["ignore", "pipe", "inherit", "ipc"],
    // Don't inherit vitest's worker flags (loaders, inspector, ...).
    execArgv: [],
  });
  live.add(child);

  let running = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      running = false;
      live.delete(child);
      resolve(code);
    });
  });
  // A failed spawn emits 'error' (and maybe no 'exit'); treat it as an exit.
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });
  child.on("error", () => {
    /* e.g. send() after exit; surfaced through command() timeouts/rejections */
  });

  // Pending IPC commands, correlated by id.
  let nextId = 1;
  const pending = new Map<number, (reply: BackendReply) => void>();
  child.on("message", (raw: unknown) => {
    if (typeof raw !== "object" || raw === null) return;
    const msg = raw as { id?: unknown } & BackendReply;
    if (typeof msg.id !== "number") return;
    const resolve = pending.get(msg.id);
    if (!resolve) return;
    pending.delete(msg.id);
    const { id: _id, ...rest } = msg;
    resolve(rest);
  });

  const listening = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    const stdout = child.stdout;
    if (!stdout) {
      reject(new Error("backend stdout is not a pipe"));
      return;
    }
    let buffer = "";
    let settled = false;
    const finish = (err: Error | undefined, value?: { host: string; port: number }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stdout.removeListener("data", onData);
      child.removeListener("exit", onExit);
      // Keep draining stdout so the child can never block on a full pipe.
      stdout.resume();
      if (err) {
        child.kill("SIGKILL");
        reject(err);
      } else {
        resolve(value!);
      }
    };
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString("utf8");
      const nl = buffer.indexOf("\n");
      if (nl < 0) return;
      const line = buffer.slice(0, nl).trim();
      let parsed: ListeningLine;
      try {
        parsed = JSON.parse(line) as ListeningLine;
      } catch {
        finish(new Error(`backend wrote an unexpected line: ${line}`));
        return;
      }
      if (parsed.listening) {
        finish(undefined, parsed.listening);
      } else {
        const code = parsed.error?.code ?? "EUNKNOWN";
        finish(new BackendStartError(code, `backend ${formatKey(opts.host, config.port)} failed: ${code}: ${parsed.error?.message ?? line}`));
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      finish(
        spawnError ??
          new Error(`backend ${formatKey(opts.host, config.port)} exited (code ${code}, signal ${signal}) before listening`),
      );
    };
    const timer = setTimeout(() => {
      finish(new Error(`backend ${formatKey(opts.host, config.port)} did not report listening within ${LISTEN_TIMEOUT_MS} ms`));
    }, LISTEN_TIMEOUT_MS);
    stdout.on("data", onData);
    child.once("exit", onExit);
  }).catch(async (err: unknown) => {
    // Make sure the child is gone before reporting the failure.
    child.kill("SIGKILL");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2_000))]);
    throw err;
  });

  const signal = (sig: NodeJS.Signals): void => {
    if (!running) return;
    try {
      child.kill(sig);
    } catch {
      /* raced with exit */
    }
  };

  let stopping: Promise<void> | undefined;

  const backend: Backend = {
    host: listening.host,
    port: listening.port,
    key: formatKey(listening.host, listening.port),
    pid: child.pid ?? -1,
    tls: opts.tls !== undefined,
    exited,
    get running() {
      return running;
    },
    async kill() {
      signal("SIGKILL");
      await exited;
    },
    freeze() {
      signal("SIGSTOP");
    },
    thaw() {
      signal("SIGCONT");
    },
    command(msg) {
      return new Promise<BackendReply>((resolve, reject) => {
        if (!running || !child.connected) {
          reject(new Error(`backend ${backend.key} is not running`));
          return;
        }
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`backend ${backend.key}: no reply to ${msg.cmd} within ${COMMAND_TIMEOUT_MS} ms`));
        }, COMMAND_TIMEOUT_MS);
        const onExit = (): void => {
          pending.delete(id);
          clearTimeout(timer);
          reject(new Error(`backend ${backend.key} exited before replying to ${msg.cmd}`));
        };
        child.once("exit", onExit);
        pending.set(id, (reply) => {
          clearTimeout(timer);
          child.removeListener("exit", onExit);
          resolve(reply);
        });
        child.send({ ...msg, id }, (err) => {
          if (!err) return;
          pending.delete(id);
          clearTimeout(timer);
          child.removeListener("exit", onExit);
          reject(err);
        });
      });
    },
    async stats() {
      const reply = await backend.command({ cmd: "stats" });
      if (!reply.stats) throw new Error(`backend ${backend.key}: stats reply without stats`);
      return reply.stats;
    },
    stop() {
      stopping ??= (async () => {
        if (!running) return;
        signal("SIGCONT"); // a frozen process would never handle SIGTERM
        signal("SIGTERM");
        const timer = setTimeout(() => signal("SIGKILL"), STOP_GRACE_MS);
        try {
          await exited;
        } finally {
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };

  handles.add(backend);
  void exited.then(() => handles.delete(backend));
  return backend;
}

function randomPort(): number {
  return 20_000 + Math.floor(Math.random() * 25_001);
}

/**
 * Start one backend per host, all on the same port. The first binds `opts.port`
 * (default: ephemeral) and the rest bind the port it got; on EADDRINUSE
 * everything started in that attempt is stopped and the whole set is retried on
 * a random port in 20000–45000 (at most 10 attempts).
 */
export async function startBackends(
  hosts: string[],
  opts: Omit<BackendOptions, "host"> = {},
): Promise<Backend[]> {
  if (hosts.length === 0) return [];
  let lastError: unknown;
  for (let attempt = 0; attempt < SAME_PORT_ATTEMPTS; attempt++) {
    const port = attempt === 0 ? (opts.port ?? 0) : randomPort();
    const started: Backend[] = [];
    try {
      const first = await startBackend({ ...opts, host: hosts[0]!, port });
      started.push(first);
      const results = await Promise.allSettled(
        hosts.slice(1).map((host) => startBackend({ ...opts, host, port: first.port })),
      );
      let failure: unknown;
      for (const r of results) {
        if (r.status === "fulfilled") started.push(r.value);
        else failure ??= r.reason;
      }
      if (failure !== undefined) throw failure;
      return started;
    } catch (err) {
      lastError = err;
      await Promise.all(started.map((b) => b.stop()));
      if (!(err instanceof BackendStartError && err.code === "EADDRINUSE")) throw err;
    }
  }
  throw new Error(`could not start ${hosts.length} backends on one shared port after ${SAME_PORT_ATTEMPTS} attempts`, {
    cause: lastError,
  });
}

/** Stop every backend started by this module that is still running. */
export async function stopAllBackends(): Promise<void> {
  await Promise.all([...handles].map((b) => b.stop()));
}

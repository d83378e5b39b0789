/**
 * `dialtone broker` as a real child process (dist/cli.js: npm run build
 * first). The config is written to a temp file; the broker's first stdout
 * line says where it listens. Every broker started here is reaped: stop()
 * after each test, and a process 'exit' hook SIGKILLs survivors.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

export interface BrokerProcess {
  /** "http://127.0.0.1:PORT" of each ingress listener (unix listeners as unix:///path). */
  listen: string[];
  admin: string | undefined;
  child: ChildProcess;
  configPath: string;
  /** Everything written to stderr so far (JSON log lines). */
  stderr(): string;
  exited: Promise<number | null>;
  /** SIGTERM, SIGKILL after 5 s; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Rewrites the config file (for a SIGHUP reload). */
  writeConfig(text: string): void;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});
const started = new Set<BrokerProcess>();

/** `umask`: start the broker under this umask (through /bin/sh, which execs node: the pid is the broker's). */
export async function startBroker(
  config: string,
  args: string[] = [],
  env: Record<string, string> = {},
  opts: { umask?: string } = {},
): Promise<BrokerProcess> {
  const dir = mkdtempSync(join(tmpdir(), "dialtone-broker-"));
  const configPath = join(dir, "broker.yaml");
  writeFileSync(configPath, config);
  const argv = [CLI, "broker", "--config", configPath, ...args];
  const [cmd, cmdArgs] =
    opts.umask === undefined ? [process.execPath, argv] : ["/bin/sh", ["-c", `umask ${opts.umask} && exec "$0" "$@"`, process.execPath, ...argv]];
  const child = spawn(cmd, cmdArgs, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  live.add(child);
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    // Bounded: a chatty broker must not grow the test's memory without limit.
    if (err.length < 1_000_000) err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      live.delete(child);
      rmSync(dir, { recursive: true, force: true });
      resolve(code);
    }),
  );
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`broker did not report listening within ${START_TIMEOUT_MS} ms: ${err}`)), START_TIMEOUT_MS);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited (${code}) before listening: ${err}`));
    });
  }).catch(async (e: unknown) => {
    child.kill("SIGKILL");
    await exited;
    throw e;
  });
  const info = JSON.parse(line) as { listening: string[]; admin: string | null };
  let stopping: Promise<number | null> | undefined;
  const b: BrokerProcess = {
    listen: info.listening,
    admin: info.admin ?? undefined,
    child,
    configPath,
    stderr: () => err,
    exited,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
        try {
          return await exited;
        } finally {
          clearTimeout(t);
        }
      })();
      return stopping;
    },
    writeConfig(text) {
      writeFileSync(configPath, text);
    },
  };
  started.add(b);
  void exited.then(() => started.delete(b));
  return b;
}

export async function stopAllBrokers(): Promise<void> {
  await Promise.all([...started].map((b) => b.stop()));
}

/** Polls `check` every 50 ms until it returns true, at most `ms`; false if it never did. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 5_000): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

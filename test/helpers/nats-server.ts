import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** One configured nats-server (TLS, nkeys, operator mode…): what a test needs to reach it and end it. */
export interface NatsServer {
  host: string;
  port: number;
  /** "127.0.0.5:4222" */
  key: string;
  /** Its config folder: files written there (certs, creds) are removed with it. */
  dir: string;
  /** Rewrites the config and signals a reload (SIGHUP), as an operator rotating credentials would. */
  reload(config: (dir: string) => string): void;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

function natsServerPath(): string {
  const r = spawnSync("sh", ["-c", 'PATH="$PATH:/usr/sbin:/sbin" command -v nats-server'], { encoding: "utf8" });
  const p = r.stdout.trim();
  if (!p) throw new Error("nats-server not found: install Debian's nats-server (npm test does this when root)");
  return p;
}

/**
 * Starts one nats-server on `host` with the config `config(dir)` returns
 * (files it names are written into `dir` by `files`), waits (bounded) for
 * "Server is ready", and retries on a taken port. Reaped by stop().
 */
export async function startNatsServer(opts: { host?: string; files?: Record<string, string>; config: (dir: string) => string }): Promise<NatsServer> {
  const host = opts.host ?? "127.0.0.5";
  const bin = natsServerPath();
  for (let attempt = 0; attempt < 8; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const dir = mkdtempSync(join(tmpdir(), "dialtone-nats1-"));
    for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), text);
    const conf = join(dir, "nats.conf");
    writeFileSync(conf, opts.config(dir));
    const c = spawn(bin, ["-c", conf, "-a", host, "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
    live.add(c);
    const stop = async (): Promise<void> => {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill("SIGKILL");
        await new Promise((r) => c.once("exit", r));
      }
      live.delete(c);
      rmSync(dir, { recursive: true, force: true });
    };
    let stderr = "";
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      c.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes("Server is ready")) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      c.once("exit", () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    const reload = (next: (dir: string) => string): void => {
      writeFileSync(conf, next(dir));
      c.kill("SIGHUP");
    };
    if (ready) return { host, port, key: `${host}:${port}`, dir, reload, stop };
    await stop();
    if (/address already in use/i.test(stderr)) continue;
    throw new Error(`nats-server did not start: ${stderr.slice(0, 2000)}`);
  }
  throw new Error("could not find a free port for nats-server");
}

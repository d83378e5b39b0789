import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./prometheus.js";
import { frozenOf } from "./frozen.js";

/**
 * A real DNS server (unbound, BIND's named) in a child process of the test:
 * in the foreground, on 127.0.0.1 and a free port, with a config and zone
 * files of its own in a temp dir (nothing under /etc is read or written).
 * The test can freeze it (SIGSTOP), thaw it, reload it (SIGHUP) and must
 * stop it; a process exit kills any left over.
 */
export interface DnsChild {
  port: number;
  /** "127.0.0.1:port", for the resolver's nameservers option and Node's Resolver. */
  server: string;
  dir: string;
  /** Rewrites a zone file (origin → text) and makes the server re-read it (SIGHUP). */
  setZone(origin: string, text: string): void;
  freeze(): Promise<void>;
  thaw(): void;
  stop(): Promise<void>;
}

/** Zones: origin ("a.test") → zone file text; forwards: zone → "ip:port" of the server it is forwarded to. */
export interface DnsChildConfig {
  zones: Record<string, string>;
  forwards?: Record<string, string>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** The path of a system binary (Debian puts servers in /usr/sbin), or a clear error naming the package. */
export function systemBinary(name: string, debianPackage: string): string {
  const r = spawnSync("sh", ["-c", `PATH="$PATH:/usr/sbin:/sbin" command -v ${name}`], { encoding: "utf8" });
  const p = r.stdout.trim();
  if (!p) throw new Error(`${name} not found: install Debian's ${debianPackage} (scripts/system-deps.mjs does this)`);
  return p;
}

export function zoneFileName(origin: string): string {
  return `${origin}.zone`;
}

/**
 * Starts `bin` with the args `setup` returns after writing its files into a
 * fresh temp dir. Ready when it answers `probe` (a name it serves) over UDP,
 * within 10 s. A port taken between freePort() and the server's bind is
 * retried on a new port, bounded.
 */
export async function startDnsChild(
  kind: string,
  bin: string,
  config: DnsChildConfig,
  setup: (dir: string, port: number, config: DnsChildConfig) => string[],
  probe: string,
): Promise<DnsChild> {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await startOnce(kind, bin, config, setup, probe);
    } catch (err) {
      last = err;
      if (!/in use/i.test(String(err))) throw err;
    }
  }
  throw last;
}

async function startOnce(
  kind: string,
  bin: string,
  config: DnsChildConfig,
  setup: (dir: string, port: number, config: DnsChildConfig) => string[],
  probe: string,
): Promise<DnsChild> {
  const dir = mkdtempSync(join(tmpdir(), `dialtone-${kind}-`));
  chmodSync(dir, 0o755);
  const writeZone = (origin: string, text: string): void => {
    const file = join(dir, zoneFileName(origin));
    writeFileSync(file, text);
    chmodSync(file, 0o644);
  };
  for (const [origin, text] of Object.entries(config.zones)) writeZone(origin, text);
  const port = await freePort();
  const args = setup(dir, port, config);
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-8000)));
  child.stderr?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-8000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const { askServer } = await import("../../src/resolve/dns-transport.js");
  const deadline = performance.now() + 10_000;
  while (true) {
    if (child.exitCode !== null || child.signalCode !== null) {
      live.delete(child);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${kind} exited: ${output}`);
    }
    const ok = await askServer({ host: "127.0.0.1", port }, probe, "A", 200, kind).then(
      () => true,
      () => false,
    );
    if (ok) break;
    if (performance.now() > deadline) {
      child.kill("SIGKILL");
      await exited;
      live.delete(child);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${kind} not answering within 10 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    server: `127.0.0.1:${port}`,
    dir,
    setZone(origin, text) {
      writeZone(origin, text);
      child.kill("SIGHUP");
    },
    ...childControls(child, exited, live, dir),
  };
}

/** SIGSTOP/SIGCONT and a stop that reaps the child (SIGTERM, then SIGKILL after 3 s) and removes its folder. */
export function childControls(
  child: ChildProcess,
  exited: Promise<void>,
  live: Set<ChildProcess>,
  dir: string,
): { freeze(): Promise<void>; thaw(): void; stop(): Promise<void> } {
  return {
    /** SIGSTOP; resolves once every thread of the server is stopped (a signal is not a stop: see frozenOf). */
    async freeze() {
      child.kill("SIGSTOP");
      if (child.pid !== undefined) await frozenOf(child.pid, "DNS server");
    },
    thaw() {
      child.kill("SIGCONT");
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGCONT");
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 3000);
        await exited;
        clearTimeout(t);
      }
      live.delete(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

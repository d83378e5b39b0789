import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childControls } from "./dns-child.js";
import { freePort } from "./prometheus.js";

export interface Dnsmasq {
  port: number;
  /** "127.0.0.1:port", for the resolver's nameservers option. */
  server: string;
  /** Rewrites the hosts file dnsmasq serves and makes it re-read it (SIGHUP). */
  setHosts(lines: string[]): Promise<void>;
  /** SIGSTOP / SIGCONT: a server that stops answering, and comes back. */
  freeze(): Promise<void>;
  thaw(): void;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

function dnsmasqPath(): string {
  const r = spawnSync("sh", ["-c", 'PATH="$PATH:/usr/sbin:/sbin" command -v dnsmasq'], { encoding: "utf8" });
  const p = r.stdout.trim();
  if (!p) throw new Error("dnsmasq not found: install Debian's dnsmasq-base (npm test does this when root)");
  return p;
}

/**
 * A real dnsmasq on 127.0.0.1 serving only `hosts` (no upstream), with TTL
 * `ttlSeconds`. The port is found free and then bound by dnsmasq, so another
 * socket can take it in between: that is retried on a new port, bounded.
 * `extraArgs` add records and behaviour (`--local=/zone/`, `--cname=…`,
 * `--srv-host=…`).
 */
export async function startDnsmasq(hosts: string[], ttlSeconds = 1, extraArgs: string[] = []): Promise<Dnsmasq> {
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await startOnce(hosts, ttlSeconds, extraArgs);
    } catch (err) {
      last = err;
      if (!/in use/i.test(String(err))) throw err;
    }
  }
  throw last;
}

async function startOnce(hosts: string[], ttlSeconds: number, extraArgs: string[]): Promise<Dnsmasq> {
  const dir = mkdtempSync(join(tmpdir(), "dialtone-dns-"));
  chmodSync(dir, 0o755);
  const file = join(dir, "hosts");
  const write = (lines: string[]): void => {
    writeFileSync(file, lines.join("\n") + "\n");
    chmodSync(file, 0o644);
  };
  write(hosts);
  const port = await freePort();
  const child = spawn(
    dnsmasqPath(),
    [
      "--keep-in-foreground",
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      `--addn-hosts=${file}`,
      `--local-ttl=${ttlSeconds}`,
      "--conf-file=/dev/null",
      `--pid-file=${join(dir, "pid")}`,
      "--user=root",
      `--log-facility=${join(dir, "log")}`,
      ...extraArgs,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  live.add(child);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  // Ready when it answers on UDP: bounded.
  const { askServer } = await import("../../src/resolve/dns-transport.js");
  const deadline = performance.now() + 5000;
  while (true) {
    if (child.exitCode !== null) {
      live.delete(child);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`dnsmasq exited: ${stderr}`);
    }
    const ok = await askServer({ host: "127.0.0.1", port }, "ready.check", "A", 200, "dnsmasq").then(
      () => true,
      () => false,
    );
    if (ok) break;
    if (performance.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`dnsmasq not answering within 5 s: ${stderr}`);
    }
  }
  return {
    port,
    server: `127.0.0.1:${port}`,
    async setHosts(lines) {
      write(lines);
      child.kill("SIGHUP");
      // dnsmasq re-reads on SIGHUP asynchronously; a short pause lets it finish.
      await new Promise((r) => setTimeout(r, 50));
    },
    ...childControls(child, exited, live, dir),
  };
}

/**
 * Runs h2load (Debian's nghttp2-client) against one h2c URL and reads what
 * it measured: its summary (requests started, 2xx, failures) and, from its
 * per-request log, latency quantiles. Every run is bounded: h2load's own
 * duration plus a kill timer, and the child is always reaped.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ascending, quantile } from "./stats.js";

export interface H2loadOptions {
  url: string;
  /** h2load -c: connections. */
  clients: number;
  /** h2load -m: concurrent streams per connection. */
  streams: number;
  /** Measured seconds (h2load -D), after `warmUp` seconds not measured. */
  seconds: number;
  warmUp: number;
  authority?: string;
  /** Called this many ms after the measurement starts (the fault), if given. */
  at?: { ms: number; run: () => void };
}

export interface H2loadResult {
  started: number;
  ok2xx: number;
  /** Requests started that did not end with a 2xx (5xx from the proxy, resets, timeouts, cut by the end). */
  failed: number;
  reqPerSec: number;
  p50Us: number;
  p99Us: number;
}

export async function h2load(o: H2loadOptions): Promise<H2loadResult> {
  const dir = mkdtempSync(join(tmpdir(), "dialtone-h2load-"));
  const log = join(dir, "requests.tsv");
  const args = ["-c", String(o.clients), "-m", String(o.streams), "-t", "1", "-D", String(o.seconds), `--warm-up-time=${o.warmUp}`, `--log-file=${log}`];
  if (o.authority) args.push("-H", `:authority: ${o.authority}`);
  args.push(o.url);
  // h2load logs warm-up requests too: only those started after it count for latency.
  const measureFromUs = (Date.now() + o.warmUp * 1000) * 1000;
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
      let text = "";
      child.stdout.on("data", (d: Buffer) => (text += d.toString()));
      child.stderr.on("data", (d: Buffer) => (text += d.toString()));
      const limit = setTimeout(() => child.kill("SIGKILL"), (o.seconds + o.warmUp + 15) * 1000);
      const fault = o.at ? setTimeout(o.at.run, o.warmUp * 1000 + o.at.ms) : undefined;
      child.once("error", reject);
      child.once("exit", (code) => {
        clearTimeout(limit);
        if (fault) clearTimeout(fault);
        if (code === 0) resolve(text);
        else reject(new Error(`h2load exited with ${code}: ${text.slice(-500)}`));
      });
    });
    return parse(out, readFileSync(log, "utf8"), measureFromUs);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parse(summary: string, log: string, fromUs: number): H2loadResult {
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(summary);
  const codes = /status codes: (\d+) 2xx/.exec(summary);
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(summary);
  if (!req || !codes || !rps) throw new Error(`cannot read h2load's summary: ${summary.slice(-800)}`);
  const started = Number(req[2]);
  const ok2xx = Number(codes[1]);
  const latencies = ascending(
    log
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split("\t"))
      .filter((f) => Number(f[0]) >= fromUs && f[1] !== undefined && f[1].startsWith("2"))
      .map((f) => Number(f[2])),
  );
  return { started, ok2xx, failed: started - ok2xx, reqPerSec: Number(rps[1]), p50Us: quantile(latencies, 0.5), p99Us: quantile(latencies, 0.99) };
}

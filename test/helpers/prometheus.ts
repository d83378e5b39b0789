import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A free TCP port on 127.0.0.1 (bound and released; fine for tests on loopback). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface PrometheusServer {
  url: string;
  /** Runs an instant query; returns the first sample's value, or undefined. */
  query(promql: string): Promise<number | undefined>;
  stop(): Promise<void>;
}

/**
 * Starts a real Prometheus (Debian's package) on 127.0.0.1 that scrapes
 * `target` (host:port, path /metrics) every second, with its own data dir.
 */
export async function startPrometheus(target: string): Promise<PrometheusServer> {
  // The port is found free and then bound by Prometheus; if something took it meanwhile, retry.
  let last: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await startOnce(target);
    } catch (err) {
      last = err;
      if (!/in use/i.test(String(err))) throw err;
    }
  }
  throw last;
}

async function startOnce(target: string): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), "dialtone-prom-"));
  const port = await freePort();
  const config = join(dir, "prometheus.yml");
  writeFileSync(
    config,
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      "  - job_name: dialtone-test",
      "    static_configs:",
      `      - targets: ["${target}"]`,
      "",
    ].join("\n"),
  );
  const child: ChildProcess = spawn(
    "prometheus",
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=error"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Bounded wait for readiness.
  const deadline = performance.now() + 20_000;
  while (true) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited at start: ${stderr}`);
    }
    const ok = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`prometheus not ready within 20 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async query(promql) {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await r.json()) as { status: string; data?: { result?: Array<{ value: [number, string] }> } };
      const v = body.data?.result?.[0]?.value?.[1];
      return v === undefined ? undefined : Number(v);
    },
    stop,
  };
}

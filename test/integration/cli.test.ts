import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startBackends, stopAllBackends } from "../helpers/backends.js";
import { startNatsCluster } from "../helpers/nats-cluster.js";

afterEach(stopAllBackends);
const CLI = fileURLToPath(new URL("../../dist/cli.js", import.meta.url));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 15_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("dialtone CLI (built dist/cli.js) against real backends", () => {
  it("probe warms a channel and prints its stats; exit 0 when every member is ready", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const port = backends[0]!.port;
    const r = await run([
      "probe",
      `http://svc.test:${port}`,
      "--discovery",
      `static:///${backends.map((b) => b.key).join(",")}`,
      "--members",
      "2",
      "--wait",
      "5s",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const stats = JSON.parse(r.stdout) as { ready: number; members: Array<{ address: string; state: string }> };
    expect(stats.ready).toBe(2);
    expect(new Set(stats.members.map((m) => m.address))).toEqual(new Set(backends.map((b) => b.key)));
  });

  it("probe keeps the process alive through backoff and exits 1 with the last error when nothing answers", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    await backends[0]!.kill();
    const r = await run(["probe", `http://127.0.0.2:${backends[0]!.port}`, "--members", "1", "--wait", "700ms"]);
    expect(r.code).toBe(1);
    const stats = JSON.parse(r.stdout) as { ready: number; lastError: string };
    expect(stats.ready).toBe(0);
    expect(stats.lastError).toContain("ECONNREFUSED");
  });

  it("bad input exits 2 with a message naming what was wrong", async () => {
    const r = await run(["probe", "ftp://x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown scheme "ftp:"');
    const d = await run(["probe", "http://127.0.0.2:1", "--wait", "5 parsecs"]);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain("--wait");
  });

  it("probe nats:// warms a NATS channel against a real nats-server; a missing --ca file is a clear error, not a raw ENOENT", async () => {
    const cluster = await startNatsCluster({ hosts: ["127.0.0.6"] });
    try {
      const r = await run(["probe", `nats://${cluster.nodes[0]!.key}`, "--members", "1", "--wait", "5s"]);
      expect(r.code).toBe(0);
      const stats = JSON.parse(r.stdout) as { ready: number; members: Array<{ state: string }> };
      expect(stats.ready).toBe(1);
    } finally {
      await cluster.stop();
    }
    const missing = await run(["probe", "https://127.0.0.2:1", "--ca", "/nonexistent/ca.pem"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read the CA file "/nonexistent/ca.pem": no such file');
    expect(missing.stderr).not.toMatch(/at |ENOENT/);
  });
});

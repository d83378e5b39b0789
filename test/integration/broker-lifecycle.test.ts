import { execFile } from "node:child_process";
import http from "node:http";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startBackends, stopAllBackends, type Backend } from "../helpers/backends.js";
import { CLI, eventually, startBroker, stopAllBrokers } from "../helpers/broker.js";
import { promtoolCheck, sample } from "../helpers/prom.js";

/** The broker's lifecycle as an operator sees it: admin endpoints, idle reaping, reload, shutdown, CLI. */

afterEach(async () => {
  await stopAllBrokers();
  await stopAllBackends();
});

function get(
  url: string,
  opts: { host?: string; socketPath?: string; method?: string; body?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: Number(u.port),
        socketPath: opts.socketPath,
        path: `${u.pathname}${u.search}`,
        method: opts.method ?? "GET",
        agent: false,
        headers: opts.host ? { host: opts.host } : {},
        timeout: 10_000,
      },
      (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("client timeout")));
    req.end(opts.body);
  });
}

function upstreamYaml(name: string, backends: Backend[], extra = ""): string {
  return `  ${name}: { target: "http://${name}.internal:${backends[0]!.port}", discovery: "static:///${backends.map((b) => b.key).join(",")}", members: ${backends.length}, hosts: ["${name}.internal"]${extra} }\n`;
}

interface StatsBody {
  upstreams: Record<
    string,
    {
      open: boolean;
      is_connected: boolean;
      is_healthy: boolean;
      last_activity: string | null;
      idle_timeout: number;
      time_remaining: number | null;
      channel: { members: Array<{ address: string; connectedSince: string }> } | null;
    }
  >;
}

describe("broker lifecycle", () => {
  it("closes an idle channel after idle.timeout and re-warms it on the next request", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const b = await startBroker(
      `listen: ["http://127.0.0.1:0"]\nadmin: "http://127.0.0.1:0"\nidle: { timeout: 400ms, checkInterval: 100ms }\nupstreams:\n${upstreamYaml("api", backends)}`,
    );
    const stats = async (): Promise<StatsBody> => JSON.parse((await get(`${b.admin}/stats`)).body) as StatsBody;
    // Lazy: nothing is open before the first request.
    expect((await stats()).upstreams.api!.open).toBe(false);
    expect((await get(`${b.listen[0]}/headers`, { host: "api.internal" })).status).toBe(200);
    const s1 = (await stats()).upstreams.api!;
    expect(s1.open).toBe(true);
    expect(s1.is_connected).toBe(true);
    expect(s1.idle_timeout).toBe(400);
    expect(s1.time_remaining).toBeGreaterThan(0);
    expect(s1.last_activity).not.toBeNull();
    expect(await eventually(async () => !(await stats()).upstreams.api!.open, 5_000)).toBe(true);
    const sessionsBefore = (await backends[0]!.stats()).sessions;
    // Re-warm is transparent: the next request just works, on a new connection.
    expect((await get(`${b.listen[0]}/headers`, { host: "api.internal" })).status).toBe(200);
    expect((await stats()).upstreams.api!.open).toBe(true);
    expect((await backends[0]!.stats()).sessions).toBe(sessionsBefore + 1);
    const page = await get(`${b.admin}/`);
    expect(page.body).toContain("channel closed (idle)");
  });

  it("serves /healthz, /readyz for warm upstreams, promtool-clean /metrics, /stats and a diagnostics page without secrets", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const b = await startBroker(
      `listen: ["http://127.0.0.1:0"]\nadmin: "http://127.0.0.1:0"\nupstreams:\n${upstreamYaml("api", backends, ", warm: true")}` +
        // A NATS upstream nobody answers on, with credentials in its target: they must show nowhere.
        `  prices: { kind: nats, target: "nats://app:s3cretpw@127.0.0.9:1", members: 1, acquireTimeout: 500ms }\n`,
    );
    expect((await get(`${b.admin}/healthz`)).status).toBe(200);
    expect(await eventually(async () => (await get(`${b.admin}/readyz`)).status === 200, 5_000)).toBe(true);
    expect((await get(`${b.listen[0]}/echo`, { host: "api.internal", method: "POST", body: "x" })).status).toBe(200);
    // The nats upstream is lazy: a bridge request opens it (and fails: nothing listens there).
    const nats = await get(`${b.listen[0]}/nats/prices/request/price.quote`, { method: "POST", body: "sku" });
    expect(nats.status).toBe(503);
    expect(nats.headers["retry-after"]).toBe("1");
    expect(nats.body).not.toContain("s3cretpw");

    const metrics = await get(`${b.admin}/metrics`);
    expect(sample(metrics.body, "dialtone_broker_requests_total", { upstream: "api", status: "200" })).toBe(1);
    expect(sample(metrics.body, "dialtone_members_healthy", { channel: "api" })).toBe(2);
    expect(sample(metrics.body, "dialtone_broker_ingress_connections_total", { protocol: "http1" })).toBeGreaterThanOrEqual(2);
    const check = await promtoolCheck(metrics.body);
    expect(check.output).toBe("");
    expect(check.code).toBe(0);

    const stats = JSON.parse((await get(`${b.admin}/stats`)).body) as StatsBody;
    expect(stats.upstreams.api!.is_healthy).toBe(true);
    expect(stats.upstreams.api!.time_remaining).toBeNull(); // warm upstreams are never reaped
    expect(new Set(stats.upstreams.api!.channel!.members.map((m) => m.address))).toEqual(new Set(backends.map((x) => x.key)));

    // A sparkline needs two RTT samples: the first PING and one health PING (1 s apart by default).
    expect(await eventually(async () => (await get(`${b.admin}/`)).body.includes('<svg class="spark"'), 5_000)).toBe(true);
    const page = await get(`${b.admin}/`);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    for (const x of backends) expect(page.body).toContain(x.key);
    expect(page.body).toContain('data-upstream="prices"');
    for (const body of [page.body, metrics.body, JSON.stringify(stats), (await get(`${b.admin}/diagnostics/fragment`)).body, b.stderr()]) {
      expect(body).not.toContain("s3cretpw");
    }
    // A killed backend shows on the page (the fragment the page polls) as a lost member.
    await backends[1]!.kill();
    expect(await eventually(async () => /connect-failed|evicted|ECONNREFUSED/.test((await get(`${b.admin}/diagnostics/fragment`)).body), 5_000)).toBe(true);
  });

  it("SIGTERM lets in-flight requests finish, then exits 0", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    await backends[0]!.command({ cmd: "delay", ms: 600 });
    const b = await startBroker(`listen: ["http://127.0.0.1:0"]\nadmin: off\nshutdownGrace: 5s\nupstreams:\n${upstreamYaml("api", backends, ", warm: true")}`);
    await new Promise((r) => setTimeout(r, 300));
    const inFlight = Array.from({ length: 5 }, (_, i) => get(`${b.listen[0]}/echo`, { host: "api.internal", method: "POST", body: `req ${i}` }));
    await new Promise((r) => setTimeout(r, 150));
    const code = b.stop();
    const results = await Promise.all(inFlight);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(results.map((r) => r.body)).toEqual(["req 0", "req 1", "req 2", "req 3", "req 4"]);
    expect(await code).toBe(0);
  });

  it("SIGHUP adds an upstream and keeps the unchanged one's warm connections", async () => {
    const a = await startBackends(["127.0.0.2"]);
    const c = await startBackends(["127.0.0.3"]);
    const head = `listen: ["http://127.0.0.1:0"]\nadmin: "http://127.0.0.1:0"\nupstreams:\n`;
    const b = await startBroker(head + upstreamYaml("api", a, ", warm: true"));
    expect(await eventually(async () => (await get(`${b.admin}/readyz`)).status === 200, 5_000)).toBe(true);
    expect((await get(`${b.listen[0]}/headers`, { host: "catalog.internal" })).status).toBe(404);
    const sessions = (await a[0]!.stats()).sessions;
    b.writeConfig(head + upstreamYaml("api", a, ", warm: true") + upstreamYaml("catalog", c));
    b.child.kill("SIGHUP");
    expect(await eventually(() => b.stderr().includes('"msg":"reloaded"'), 5_000)).toBe(true);
    const r = await get(`${b.listen[0]}/headers`, { host: "catalog.internal" });
    expect(r.status).toBe(200);
    expect(r.headers["x-backend"]).toBe(c[0]!.key);
    expect((await get(`${b.listen[0]}/headers`, { host: "api.internal" })).status).toBe(200);
    expect((await a[0]!.stats()).sessions).toBe(sessions);
    // A broken config on SIGHUP is refused and the running one stays.
    b.writeConfig(head + "  api: { target: 5 }\n");
    b.child.kill("SIGHUP");
    expect(await eventually(() => b.stderr().includes("reload refused"), 5_000)).toBe(true);
    expect((await get(`${b.listen[0]}/headers`, { host: "catalog.internal" })).status).toBe(200);
  });

  it("SIGHUP changes one upstream (re-made on its new backend) and removes another (404, connections closed), keeping the unchanged one's", async () => {
    const [a, c1, c2, gone] = await Promise.all([
      startBackends(["127.0.0.2"]),
      startBackends(["127.0.0.3"]),
      startBackends(["127.0.0.4"]),
      startBackends(["127.0.0.5"]),
    ]);
    const head = `listen: ["http://127.0.0.1:0"]\nadmin: "http://127.0.0.1:0"\nupstreams:\n`;
    const b = await startBroker(
      head + upstreamYaml("api", a!, ", warm: true") + upstreamYaml("catalog", c1!, ", warm: true") + upstreamYaml("legacy", gone!, ", warm: true"),
    );
    expect(await eventually(async () => (await get(`${b.admin}/readyz`)).status === 200, 5_000)).toBe(true);
    expect((await get(`${b.listen[0]}/headers`, { host: "catalog.internal" })).headers["x-backend"]).toBe(c1![0]!.key);
    expect((await get(`${b.listen[0]}/headers`, { host: "legacy.internal" })).status).toBe(200);
    const apiSessions = (await a![0]!.stats()).sessions;
    // catalog moves to another backend (a changed setting), legacy is dropped, api is untouched.
    b.writeConfig(
      head +
        upstreamYaml("api", a!, ", warm: true") +
        `  catalog: { target: "http://catalog.internal:${c2![0]!.port}", discovery: "static:///${c2![0]!.key}", members: 1, hosts: ["catalog.internal"], warm: true }\n`,
    );
    b.child.kill("SIGHUP");
    // Until a replaced channel's metrics left the registry at once, this reload was refused ("already reports to this registry").
    expect(await eventually(() => b.stderr().includes('"msg":"reloaded"'), 5_000)).toBe(true);
    const line = b
      .stderr()
      .split("\n")
      .find((l) => l.includes('"msg":"reloaded"'))!;
    expect(JSON.parse(line)).toMatchObject({ added: [], changed: ["catalog"], removed: ["legacy"] });
    const r = await get(`${b.listen[0]}/headers`, { host: "catalog.internal" });
    expect(r.status).toBe(200);
    expect(r.headers["x-backend"]).toBe(c2![0]!.key);
    const l = await get(`${b.listen[0]}/headers`, { host: "legacy.internal" });
    expect(l.status).toBe(404);
    expect(l.headers["x-dialtone-error"]).toBe("ERR_DIALTONE_BROKER_NO_ROUTE");
    // The removed and the replaced channels closed their connections: their old backends see no more PINGs.
    const pingsNow = async (x: Backend): Promise<number> => (await x.stats()).pings;
    const [g0, c0] = [await pingsNow(gone![0]!), await pingsNow(c1![0]!)];
    await new Promise((res) => setTimeout(res, 2_500));
    expect(await pingsNow(gone![0]!)).toBe(g0);
    expect(await pingsNow(c1![0]!)).toBe(c0);
    // The unchanged upstream kept its warm connection: no new session on its backend.
    expect((await get(`${b.listen[0]}/headers`, { host: "api.internal" })).status).toBe(200);
    expect((await a![0]!.stats()).sessions).toBe(apiSessions);
    const stats = JSON.parse((await get(`${b.admin}/stats`)).body) as StatsBody;
    expect(Object.keys(stats.upstreams).sort()).toEqual(["api", "catalog"]);
  });

  it("listens on a unix socket too", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const dir = mkdtempSync(join(tmpdir(), "dialtone-sock-"));
    const sock = join(dir, "broker.sock");
    try {
      const b = await startBroker(`listen: ["unix://${sock}"]\nadmin: off\nupstreams:\n${upstreamYaml("api", backends, ", default: true")}`);
      expect(b.listen).toEqual([`unix://${sock}`]);
      const r = await get("http://localhost/headers", { socketPath: sock });
      expect(r.status).toBe(200);
      expect(r.headers["x-backend"]).toBe(backends[0]!.key);
    } finally {
      await stopAllBrokers();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("unix sockets, ingress and admin alike: 0660 under umask 000, a crashed broker's stale sockets replaced, a live one or a file refused", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const dir = mkdtempSync(join(tmpdir(), "dialtone-sock-"));
    const ingress = join(dir, "ingress.sock");
    const admin = join(dir, "admin.sock");
    const config = `listen: ["unix://${ingress}"]\nadmin: "unix://${admin}"\nupstreams:\n${upstreamYaml("api", backends, ", default: true")}`;
    const serves = async (): Promise<void> => {
      expect((await get("http://localhost/headers", { socketPath: ingress })).status).toBe(200);
      expect((await get("http://localhost/healthz", { socketPath: admin })).status).toBe(200);
    };
    try {
      const first = await startBroker(config, [], {}, { umask: "000" });
      expect(first.admin).toBe(`unix://${admin}`);
      for (const p of [ingress, admin]) expect(statSync(p).mode & 0o777, p).toBe(0o660);
      await serves();
      // A crash leaves both socket files behind: the next broker takes them over (no EADDRINUSE).
      first.child.kill("SIGKILL");
      await first.exited;
      expect(statSync(admin).isSocket()).toBe(true);
      const second = await startBroker(config);
      await serves();
      // A live broker's sockets are not taken over: the second start fails naming the setting, and the first keeps serving.
      const refused = await startBroker(config).then(
        () => "started",
        (err: Error) => err.message,
      );
      expect(refused).toContain("listen[0]");
      expect(refused).toContain("live socket");
      await serves();
      await second.stop();
      // Not a socket: refused and left alone, for the admin listener too.
      writeFileSync(admin, "not mine");
      const file = await startBroker(config).then(
        () => "started",
        (err: Error) => err.message,
      );
      expect(file).toContain("invalid option admin");
      expect(file).toContain("not a socket");
      expect(readFileSync(admin, "utf8")).toBe("not mine");
    } finally {
      await stopAllBrokers();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a failed bind names the listener: an admin port in use is not a bare EADDRINUSE", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const taken = http.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    try {
      const port = (taken.address() as { port: number }).port;
      const msg = await startBroker(
        `listen: ["http://127.0.0.1:0"]\nadmin: "http://127.0.0.1:${port}"\nupstreams:\n${upstreamYaml("api", backends, ", default: true")}`,
      ).then(
        () => "started",
        (err: Error) => err.message,
      );
      expect(msg).toContain("invalid option admin");
      expect(msg).toContain("EADDRINUSE");
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  it("a backend killed under load costs clients only the requests that were on it", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    const b = await startBroker(`listen: ["http://127.0.0.1:0"]\nadmin: off\nupstreams:\n${upstreamYaml("api", backends, ", warm: true")}`);
    await new Promise((r) => setTimeout(r, 500));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const u = new URL(b.listen[0]!);
    const one = (): Promise<number> =>
      new Promise((resolve) => {
        const req = http.request(
          { host: u.hostname, port: Number(u.port), path: "/echo", method: "POST", agent, headers: { host: "api.internal" }, timeout: 5_000 },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
            res.on("error", () => resolve(0));
          },
        );
        req.on("error", () => resolve(0));
        req.end("x");
      });
    const statuses: number[] = [];
    let killed = false;
    // 400 requests, 8 at a time; the first backend is SIGKILLed a quarter of the way in.
    for (let round = 0; round < 50; round++) {
      if (round === 12 && !killed) {
        killed = true;
        void backends[0]!.kill();
      }
      statuses.push(...(await Promise.all(Array.from({ length: 8 }, one))));
    }
    agent.destroy();
    const failed = statuses.filter((s) => s !== 200).length;
    // At most the 8 in flight on the killed member can fail; the library gives the same bound.
    expect(failed).toBeLessThanOrEqual(8);
  });

  it("GETs in flight on a backend that is killed are sent again on another member: none fail", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    // The in-flight balancer spreads the 9 GETs evenly, so the killed member surely holds some of them.
    const b = await startBroker(
      `listen: ["http://127.0.0.1:0"]\nadmin: off\nupstreams:\n${upstreamYaml("api", backends, ', warm: true, balancer: "in-flight"')}`,
    );
    await new Promise((r) => setTimeout(r, 500));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 9 });
    const u = new URL(b.listen[0]!);
    const one = (): Promise<number> =>
      new Promise((resolve) => {
        // Each GET stays on its backend 300 ms, so the kill finds some of them there.
        const req = http.request(
          { host: u.hostname, port: Number(u.port), path: "/?delay=300", agent, headers: { host: "api.internal" }, timeout: 5_000 },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
            res.on("error", () => resolve(0));
          },
        );
        req.on("error", () => resolve(0));
        req.end();
      });
    const statuses: number[] = [];
    for (let round = 0; round < 3; round++) {
      const batch = Promise.all(Array.from({ length: 9 }, one));
      if (round === 1) {
        await new Promise((r) => setTimeout(r, 100));
        void backends[0]!.kill();
      }
      statuses.push(...(await batch));
    }
    agent.destroy();
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
  });
});

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 15_000, env: { PATH: process.env.PATH ?? "", ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("dialtone broker CLI", () => {
  it("--help lists the flags and their DIALTONE_* variables", async () => {
    const r = await cli(["broker", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--idle-timeout");
    expect(r.stdout).toContain("DIALTONE_IDLE_TIMEOUT");
    expect((await cli(["--help"])).stdout).toContain("dialtone broker");
  });

  it("--check validates and exits 0; a bad setting exits 2 naming it; credentials never echoed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dialtone-check-"));
    try {
      const good = join(dir, "good.yaml");
      writeFileSync(
        good,
        `listen: ["http://127.0.0.1:7000", "unix:///tmp/x.sock"]\nidle: { timeout: 30m, checkInterval: 5m }\nupstreams:\n  api: { target: "https://api.internal:8443", discovery: "dns:///api.internal:8443", members: 3, hosts: ["api.internal"] }\n  prices: { kind: nats, target: "nats://u:hunter22@10.0.0.5:4222,10.0.0.6:4222", warm: true }\n`,
      );
      const ok = await cli(["broker", "--config", good, "--check"]);
      expect(ok.stderr).toBe("");
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain("2 upstream(s)");

      const bad = join(dir, "bad.yaml");
      writeFileSync(bad, `upstreams:\n  api: { target: "http://a:1", health: { timeout: "5 parsecs" } }\n`);
      const r = await cli(["broker", "--config", bad, "--check"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("upstreams.api.health.timeout");

      // Checked by the library's validators, which make no channel: a bad discovery string is blamed on discovery, not target.
      const disc = join(dir, "disc.yaml");
      writeFileSync(disc, `upstreams:\n  api: { target: "http://a:1", discovery: "bogus://x" }\n`);
      const d = await cli(["broker", "--config", disc, "--check"]);
      expect(d.code).toBe(2);
      expect(d.stderr).toContain("upstreams.api.discovery");

      const typo = await cli(["broker", "--config", good, "--check"], { DIALTONE_IDLE_TIMEOUT: "soon" });
      expect(typo.code).toBe(2);
      expect(typo.stderr).toContain("idle.timeout");

      const remote = await cli(["broker", "--listen", "http://0.0.0.0:7000", "--check"]);
      expect(remote.code).toBe(2);
      expect(remote.stderr).toContain("--allow-remote");

      const natsBad = join(dir, "nats.yaml");
      writeFileSync(natsBad, `upstreams:\n  prices: { kind: nats, target: "nats://u:hunter22@10.0.0.5:4222", memebrs: 2 }\n`);
      const t = await cli(["broker", "--config", natsBad, "--check"]);
      expect(t.code).toBe(2);
      expect(t.stderr).toContain("upstreams.prices.memebrs");
      expect(t.stderr).toContain("members");
      expect(t.stderr + ok.stdout).not.toContain("hunter22");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { connect, type ClientHttp2Session } from "node:http2";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { GaveUpError, Reconnect, type ReconnectEvent } from "../../src/index.js";
import { startBackend, startBackends, type Backend } from "../helpers/backends.js";
import { eventually } from "../helpers/channel.js";
import { promtoolCheck, sample } from "../helpers/prom.js";
import { startPrometheus, type PrometheusServer } from "../helpers/prometheus.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

/**
 * The README's "Supervise a single connection yourself" handle, around a real
 * node:http2 session to a real backend process that is killed, restarted on
 * the same port, and finally kept down past backoff.timeout. After every step
 * the registry's exposition says what happened and passes promtool, and a real
 * Prometheus server scraping it reads dialtone_reconnect_connected flip.
 */

// channelFixture reaps every backend after each test; it also closes the channel below.
const { open } = channelFixture();
let prom: PrometheusServer | undefined;
let http: Server | undefined;
let rc: Reconnect<ClientHttp2Session> | undefined;
afterEach(async () => {
  await rc?.close();
  rc = undefined;
  await prom?.stop();
  prom = undefined;
  await new Promise((r) => (http ? http.close(r) : r(undefined)));
  http = undefined;
});

const NAME = "upstream";
/** Short enough to wait out in a test, long enough for a backend process to restart within. */
const GIVE_UP_MS = 4000;

/** The README's connect, plus an error listener: a refused dial must not be an uncaught 'error'. */
function dial(url: string) {
  return async ({ signal }: { signal: AbortSignal }): Promise<ClientHttp2Session> => {
    const s = connect(url);
    s.on("error", () => {}); // lost() reports the close that follows
    try {
      await once(s, "connect", { signal });
    } catch (err) {
      s.destroy();
      throw err;
    }
    return s;
  };
}

describe("Reconnect.metrics() with a real HTTP/2 backend and a real Prometheus", () => {
  it("the scrape follows connect, kill, restart and give-up; Prometheus reads the gauge flip", { timeout: 90_000 }, async () => {
    let [backend] = (await startBackends(["127.0.0.2"])) as [Backend];
    const { host, port } = backend;
    const registry = new Registry();
    // A channel to the same backend on the same registry: the shared
    // dialtone_reconnect_attempts_total (label channel vs name) must stay promtool-clean.
    const ch = open({ target: `http://svc.test:${port}`, discovery: staticDiscovery([backend]), members: 1, name: "api", backoff: { initial: 100, max: 400 } });
    ch.metrics(registry);

    const beforeConnect = Date.now();
    rc = new Reconnect<ClientHttp2Session>({
      name: NAME,
      connect: dial(`http://${host}:${port}`),
      lost: (s) => once(s, "close"),
      dispose: (s) => void s.close(),
      backoff: { initial: 100, multiplier: 2, max: 400, timeout: GIVE_UP_MS, jitter: 0 },
    });
    const handle = rc;
    const events: ReconnectEvent[] = [];
    handle.on((e) => events.push(e));
    handle.metrics(registry);
    const count = (type: ReconnectEvent["type"]): number => events.filter((e) => e.type === type).length;

    let text = "";
    const scrape = async (): Promise<string> => (text = await registry.metrics());
    const read = (metric: string, labels: Record<string, string> = {}): number | undefined => sample(text, metric, { name: NAME, ...labels });
    const expectClean = async (): Promise<void> => {
      const r = await promtoolCheck(text);
      expect(r.output).toBe("");
      expect(r.code).toBe(0);
    };

    http = createServer((_req, res) => {
      void registry.metrics().then((body) => {
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(body);
      });
    });
    await new Promise<void>((r) => http!.listen(0, "127.0.0.1", r));
    prom = await startPrometheus(`127.0.0.1:${(http.address() as { port: number }).port}`);
    const server = prom;
    const query = (promql: string): Promise<number | undefined> => server.query(promql);
    const gauge = `dialtone_reconnect_connected{name="${NAME}"}`;

    // 1. Connected: the scrape says so, and so does Prometheus.
    await eventually(() => handle.state === "connected", 10_000, "the first connection");
    await scrape();
    expect(read("dialtone_reconnect_connected")).toBe(1);
    expect(read("dialtone_reconnect_gave_up")).toBe(0);
    expect(read("dialtone_reconnect_backoff_seconds")).toBe(0);
    expect(read("dialtone_reconnect_connected_since_seconds")).toBeGreaterThanOrEqual(beforeConnect / 1000);
    expect(read("dialtone_reconnect_connected_since_seconds")).toBeLessThanOrEqual(Date.now() / 1000);
    expect(read("dialtone_reconnect_status_changes_total", { status: "connected" })).toBe(1);
    expect(read("dialtone_reconnect_status_changes_total", { status: "disconnected" })).toBe(0);
    expect(read("dialtone_reconnect_attempts_total")).toBe(count("attempt"));
    expect(sample(text, "dialtone_reconnect_attempts_total", { channel: "api" })).toBeGreaterThanOrEqual(1);
    await expectClean();
    await eventuallyAsync(async () => (await query(gauge)) === 1, 20_000, "Prometheus to read connected = 1");

    // 2. Killed: disconnected, failing, waiting out a backoff delay.
    await backend.kill();
    // Right after SIGKILL a dial can still land in the dying listener's backlog and be reset:
    // wait for failures, not for the first disconnected state.
    await eventually(() => handle.state === "disconnected" && count("failure") >= 2, 5000, "failed dials");
    await scrape();
    expect(read("dialtone_reconnect_connected")).toBe(0);
    expect(read("dialtone_reconnect_connected_since_seconds")).toBe(0);
    expect(read("dialtone_reconnect_gave_up")).toBe(0);
    expect(read("dialtone_reconnect_failures_total")).toBe(count("failure"));
    expect(read("dialtone_reconnect_attempts_total")).toBe(count("attempt"));
    expect(read("dialtone_reconnect_status_changes_total", { status: "disconnected" })).toBe(count("disconnected"));
    const disconnected = events.find((e) => e.type === "disconnected");
    expect(disconnected?.type === "disconnected" && disconnected.error).toBeUndefined(); // once(s, "close") names no cause
    // The backoff gauge is the delay now being waited: one of the failure delays (0 only mid-dial).
    const delays = events.flatMap((e) => (e.type === "failure" ? [e.delay / 1000] : []));
    expect([0, ...delays]).toContain(read("dialtone_reconnect_backoff_seconds"));
    await eventually(() => handle.stats().backoffDelay > 0, 2000, "a backoff wait");
    await scrape();
    expect(read("dialtone_reconnect_backoff_seconds")).toBe(handle.stats().backoffDelay / 1000);
    expect(read("dialtone_reconnect_backoff_seconds")).toBeGreaterThan(0);
    await expectClean();

    // 3. Restarted on the same port: connected again, the delay back to 0.
    const beforeRestart = Date.now();
    backend = await startBackend({ host, port });
    await eventually(() => handle.state === "connected", 10_000, "the reconnection");
    await scrape();
    expect(read("dialtone_reconnect_connected")).toBe(1);
    expect(read("dialtone_reconnect_backoff_seconds")).toBe(0);
    expect(read("dialtone_reconnect_connected_since_seconds")).toBeGreaterThanOrEqual(beforeRestart / 1000);
    expect(read("dialtone_reconnect_status_changes_total", { status: "connected" })).toBe(count("connected"));
    expect(count("connected")).toBeGreaterThanOrEqual(2);
    await expectClean();
    const connectedChanges = count("connected");
    await eventuallyAsync(
      async () =>
        (await query(`dialtone_reconnect_status_changes_total{name="${NAME}",status="connected"}`)) === connectedChanges && (await query(gauge)) === 1,
      20_000,
      "Prometheus to see the reconnection",
    );

    // 4. Killed for good: after backoff.timeout of failures the handle gives up; its series stay.
    await backend.kill();
    await expect(handle.closed()).rejects.toBeInstanceOf(GaveUpError);
    expect(events.at(-1)?.type).toBe("gave-up");
    await scrape();
    expect(read("dialtone_reconnect_gave_up")).toBe(1);
    expect(read("dialtone_reconnect_connected")).toBe(0);
    expect(read("dialtone_reconnect_backoff_seconds")).toBe(0);
    expect(read("dialtone_reconnect_connected_since_seconds")).toBe(0);
    expect(read("dialtone_reconnect_failures_total")).toBe(count("failure"));
    expect(read("dialtone_reconnect_status_changes_total", { status: "disconnected" })).toBe(count("disconnected"));
    await expectClean();
    await eventuallyAsync(
      async () => (await query(`dialtone_reconnect_gave_up{name="${NAME}"}`)) === 1 && (await query(gauge)) === 0,
      20_000,
      "Prometheus to read the give-up",
    );
    // Prometheus's own history holds the flip: 1 while connected, 0 at the end.
    expect(await query(`max_over_time(${gauge}[5m])`)).toBe(1);
    expect(await query(`min_over_time(${gauge}[5m])`)).toBe(0);
    expect(await query(`changes(${gauge}[5m])`)).toBeGreaterThanOrEqual(1);

    // 5. Closed: every series of the handle is gone; the channel's stay.
    await handle.close();
    await scrape();
    expect(text.split("\n").filter((l) => l.includes(`name="${NAME}"`))).toEqual([]);
    expect(sample(text, "dialtone_reconnect_attempts_total", { channel: "api" })).toBeGreaterThanOrEqual(1);
    await expectClean();
  });
});

async function eventuallyAsync(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > ms) {
      // Say what Prometheus saw, so a failure explains itself.
      const up = await prom?.query('up{job="dialtone-test"}').catch(() => undefined);
      throw new Error(`timed out after ${ms} ms waiting for ${what} (scrape target up=${String(up)})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

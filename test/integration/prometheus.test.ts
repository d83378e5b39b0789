import { createServer, type Server } from "node:http";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { startBackends } from "../helpers/backends.js";
import { eventually, recordEvents } from "../helpers/channel.js";
import { startPrometheus, type PrometheusServer } from "../helpers/prometheus.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();
let prom: PrometheusServer | undefined;
let http: Server | undefined;
afterEach(async () => {
  await prom?.stop();
  prom = undefined;
  await new Promise((r) => (http ? http.close(r) : r(undefined)));
  http = undefined;
});

describe("a real Prometheus server scraping a channel's registry", () => {
  it("a PromQL query returns the healthy-member count the channel reports, before and after a backend dies", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    const ch = open({
      target: `http://svc.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 3,
      name: "checkout",
      backoff: { initial: 50, max: 200 },
    });
    const registry = new Registry();
    ch.metrics(registry);
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    http = createServer((req, res) => {
      void registry.metrics().then((text) => {
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(text);
      });
    });
    await new Promise<void>((r) => http!.listen(0, "127.0.0.1", r));
    const { port } = http.address() as { port: number };
    prom = await startPrometheus(`127.0.0.1:${port}`);

    const healthy = (): Promise<number | undefined> => prom!.query('dialtone_members_healthy{channel="checkout"}');
    let seen: number | undefined;
    await eventuallyAsync(async () => (seen = await healthy()) === ch.stats().ready, 20_000);
    expect(seen).toBe(3);

    // Two backends die: the channel keeps three members on the one left, then the value Prometheus sees follows.
    await backends[0]!.kill();
    await backends[1]!.kill();
    await eventually(() => ch.stats().ready === 3 && ch.stats().members.every((m) => m.address === backends[2]!.key), 5000, "all members on the survivor");
    // Two or three members died (a slot may have re-dialed onto the second backend before it
    // was killed): Prometheus must show the count the channel itself reported.
    const peerClosed = rec.events.filter((e) => e.type === "evicted" && e.reason === "peer-closed").length;
    expect(peerClosed).toBeGreaterThanOrEqual(2);
    await eventuallyAsync(async () => (await prom!.query('dialtone_evictions_total{channel="checkout",reason="peer_closed"}')) === peerClosed, 15_000);
    await eventuallyAsync(async () => (seen = await healthy()) === ch.stats().ready, 15_000);
    expect(seen).toBe(ch.stats().ready);
    expect(await prom.query('dialtone_channel_connected{channel="checkout"}')).toBe(1);
  });
});

async function eventuallyAsync(check: () => Promise<boolean>, ms: number): Promise<void> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > ms) {
      // Say what Prometheus saw, so a failure explains itself.
      const up = await prom?.query('up{job="dialtone-test"}').catch(() => undefined);
      throw new Error(`timed out after ${ms} ms (scrape target up=${String(up)})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { startBackends, stopAllBackends } from "../helpers/backends.js";
import { eventually, startBroker, stopAllBrokers } from "../helpers/broker.js";
import { startPrometheus, type PrometheusServer } from "../helpers/prometheus.js";

/** The broker's admin /metrics as a real Prometheus (Debian's package) scrapes it. */

let prom: PrometheusServer | undefined;
afterEach(async () => {
  await prom?.stop();
  prom = undefined;
  await stopAllBrokers();
  await stopAllBackends();
});

function get(base: string, host: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: Number(u.port), path: "/headers", agent: false, headers: { host }, timeout: 5_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
    req.end();
  });
}

describe("broker /metrics scraped by Prometheus", () => {
  it("is scraped cleanly (up = 1) and queries see the broker's and every channel's families", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const b = await startBroker(
      `listen: ["http://127.0.0.1:0"]\nadmin: "http://127.0.0.1:0"\nupstreams:\n  api: { target: "http://api.internal:${backends[0]!.port}", discovery: "static:///${backends.map((x) => x.key).join(",")}", members: 2, hosts: ["api.internal"], warm: true }\n`,
    );
    for (let i = 0; i < 5; i++) expect(await get(b.listen[0]!, "api.internal")).toBe(200);
    expect(await get(b.listen[0]!, "nowhere.example")).toBe(404);
    prom = await startPrometheus(new URL(b.admin!).host);
    const p = prom;
    // Scrapes every second; a few scrapes at most (bounded wait).
    expect(await eventually(async () => (await p.query('up{job="dialtone-test"}')) === 1, 15_000)).toBe(true);
    expect(await eventually(async () => (await p.query('dialtone_broker_requests_total{upstream="api",status="200"}')) === 5, 10_000)).toBe(true);
    expect(await p.query('dialtone_broker_requests_total{upstream="none",status="404"}')).toBe(1);
    expect(await p.query('sum(dialtone_broker_request_duration_seconds_count{upstream="api"})')).toBe(5);
    expect(await p.query('dialtone_members_healthy{channel="api"}')).toBe(2);
    expect(await p.query('dialtone_broker_ingress_connections_total{protocol="http1"}')).toBeGreaterThanOrEqual(6);
    // up = 1 already says the exposition parsed (one malformed line fails the whole scrape); and samples were stored.
    expect(await p.query('scrape_samples_scraped{job="dialtone-test"}')).toBeGreaterThan(0);
  });
});

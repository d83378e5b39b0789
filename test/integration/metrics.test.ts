import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { ConfigError, type ChannelEvent } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { eventually, recordEvents } from "../helpers/channel.js";
import { promtoolCheck, sample } from "../helpers/prom.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();
const HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

/** Asserts that `wanted` appear in `events` in this order (other events may come between). */
function expectInOrder(events: ChannelEvent[], wanted: Array<(e: ChannelEvent) => boolean>, what: string): void {
  let i = 0;
  for (const e of events) if (i < wanted.length && wanted[i]!(e)) i++;
  expect(i, `${what}: matched ${i} of ${wanted.length} in order`).toBe(wanted.length);
}

describe("events and Prometheus metrics under real faults", () => {
  it("a frozen backend: events arrive in order and dialtone_members_healthy drops by one within the health deadline", async () => {
    const backends = await startBackends(HOSTS);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 3, name: "orders" });
    const registry = new Registry();
    ch.metrics(registry);
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const scrape = (): Promise<string> => registry.metrics();
    expect(sample(await scrape(), "dialtone_members_healthy", { channel: "orders" })).toBe(3);
    expect(sample(await scrape(), "dialtone_members_wanted", { channel: "orders" })).toBe(3);
    expect(sample(await scrape(), "dialtone_connects_total", { channel: "orders", result: "ok" })).toBe(3);
    expect(sample(await scrape(), "dialtone_channel_connected", { channel: "orders" })).toBe(1);

    const frozen = backends[0]!;
    // The evicted slot is re-dialed on a healthy address within milliseconds, so the dip is
    // brief: read the gauge at the very moment the member turns unhealthy (collect() is synchronous).
    const healthyGauge = registry.getSingleMetric("dialtone_members_healthy")!;
    let healthyAtUnhealthy: Promise<number | undefined> | undefined;
    ch.on((e) => {
      if (e.type === "state" && e.to === "unhealthy" && e.member.address === frozen.key && !healthyAtUnhealthy) {
        healthyAtUnhealthy = Promise.resolve(healthyGauge.get()).then((g) => g.values.find((v) => v.labels.channel === "orders")?.value);
      }
    });
    frozen.freeze();
    // Health defaults promise ≤ 2.5 s; allow scheduling slack.
    await eventually(() => healthyAtUnhealthy !== undefined, 4500, "the frozen member to turn unhealthy");
    expect(await healthyAtUnhealthy).toBe(2);
    expect(sample(await scrape(), "dialtone_evictions_total", { channel: "orders", reason: "unhealthy" })).toBe(1);
    expect(sample(await scrape(), "dialtone_ping_failures_total", { channel: "orders" })).toBeGreaterThanOrEqual(2);
    const onFrozen = (e: ChannelEvent): boolean => "member" in e && e.member.address === frozen.key;
    await eventually(() => ch.stats().ready === 3, 5000, "a replacement member");
    expectInOrder(
      rec.events,
      [
        (e) => e.type === "ping-failed" && onFrozen(e),
        (e) => e.type === "ping-failed" && onFrozen(e),
        (e) => e.type === "state" && onFrozen(e) && e.from === "ready" && e.to === "unhealthy",
        (e) => e.type === "evicted" && onFrozen(e) && e.reason === "unhealthy",
        (e) => e.type === "state" && onFrozen(e) && e.to === "closed",
        (e) => e.type === "member-removed" && onFrozen(e),
        (e) => e.type === "connect-attempt",
        (e) => e.type === "member-added",
        (e) => e.type === "connect-ok",
      ],
      "freeze → evict → redial",
    );
    expect(sample(await scrape(), "dialtone_members_healthy", { channel: "orders" })).toBe(3);
    frozen.thaw();
  });

  it("degraded goes 1 and back to 0, counted as one episode; status changes are counted", async () => {
    const backends = await startBackends(HOSTS);
    const ch = open({
      target: `http://svc.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 3,
      name: "payments",
      health: { interval: 300, timeout: 300 },
    });
    const registry = new Registry();
    ch.metrics(registry);
    await ch.ready(AbortSignal.timeout(10_000));
    const degraded = async (): Promise<number | undefined> => sample(await registry.metrics(), "dialtone_channel_degraded", { channel: "payments" });
    expect(await degraded()).toBe(0);
    for (const b of backends) b.freeze();
    await eventually(() => ch.stats().degraded, 5000, "degraded mode");
    expect(await degraded()).toBe(1);
    for (const b of backends) b.thaw();
    await eventually(() => !ch.stats().degraded, 5000, "degraded mode to end");
    const text = await registry.metrics();
    expect(sample(text, "dialtone_channel_degraded", { channel: "payments" })).toBe(0);
    expect(sample(text, "dialtone_degraded_episodes_total", { channel: "payments" })).toBe(1);
    expect(sample(text, "dialtone_status_changes_total", { channel: "payments", status: "connected" })).toBe(1);
  });

  it("kill, GOAWAY and a total outage move evictions and request outcomes exactly", async () => {
    const backends = await startBackends(HOSTS);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 3, name: "search", acquireTimeout: 300 });
    const registry = new Registry();
    ch.metrics(registry);
    await ch.ready(AbortSignal.timeout(10_000));
    for (let i = 0; i < 10; i++) await ch.request({ path: "/" });
    let text = await registry.metrics();
    expect(sample(text, "dialtone_requests_total", { channel: "search", outcome: "ok" })).toBe(10);
    expect(sample(text, "dialtone_request_duration_seconds_count", { channel: "search" })).toBe(10);

    await backends[0]!.kill();
    await eventually(() => ch.stats().members.every((m) => m.address !== backends[0]!.key || m.state !== "ready"), 3000, "the killed member to go");
    await eventually(() => ch.stats().ready === 3, 3000, "the killed member's slot to be re-dialed");
    // After the kill a slot may have stacked on backends[1]: every member there drains.
    const onGoaway = ch.stats().members.filter((m) => m.address === backends[1]!.key).length;
    expect(onGoaway).toBeGreaterThanOrEqual(1);
    await backends[1]!.command({ cmd: "goaway" });
    await eventually(() => ch.stats().members.every((m) => m.address !== backends[1]!.key), 2000, "the draining member to close");
    text = await registry.metrics();
    expect(sample(text, "dialtone_evictions_total", { channel: "search", reason: "peer_closed" })).toBe(1);
    expect(sample(text, "dialtone_evictions_total", { channel: "search", reason: "goaway" })).toBe(onGoaway);

    await backends[2]!.kill();
    await eventually(() => !ch.connected, 3000, "disconnected");
    const failed = await Promise.allSettled([ch.request({ path: "/" }), ch.request({ path: "/" })]);
    expect(failed.every((r) => r.status === "rejected")).toBe(true);
    text = await registry.metrics();
    expect(sample(text, "dialtone_requests_total", { channel: "search", outcome: "no_member" })).toBe(2);
    expect(sample(text, "dialtone_channel_connected", { channel: "search" })).toBe(0);
    expect(sample(text, "dialtone_connects_total", { channel: "search", result: "error" })).toBeGreaterThanOrEqual(1);
  });

  it("channels share a registry by name; closing one removes its series; a duplicate name is refused", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const registry = new Registry();
    const a = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1, name: "a" });
    const b = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 2, name: "b" });
    a.metrics(registry);
    b.metrics(registry, { perAddress: true });
    await Promise.all([a.ready(AbortSignal.timeout(10_000)), b.ready(AbortSignal.timeout(10_000))]);
    await a.request({ path: "/" });
    let text = await registry.metrics();
    expect(sample(text, "dialtone_members_healthy", { channel: "a" })).toBe(1);
    expect(sample(text, "dialtone_members_healthy", { channel: "b" })).toBe(2);
    // Per-address labels only where opted in.
    expect(sample(text, "dialtone_connects_total", { channel: "b", result: "ok", address: backends[0]!.key })).toBe(2);
    expect(sample(text, "dialtone_connects_total", { channel: "a", result: "ok", address: "" })).toBe(1);
    expect(() => open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), name: "a" }).metrics(registry)).toThrow(
      ConfigError,
    );
    await a.close();
    text = await registry.metrics();
    expect(text).not.toContain('channel="a"');
    expect(sample(text, "dialtone_members_healthy", { channel: "b" })).toBe(2);
  });

  it("the exposition of a real scrape passes promtool check metrics", async () => {
    const backends = await startBackends(HOSTS);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 3, name: "lint" });
    const registry = new Registry();
    ch.metrics(registry, { perAddress: true });
    await ch.ready(AbortSignal.timeout(10_000));
    for (let i = 0; i < 20; i++) await ch.request({ path: "/" });
    await backends[0]!.kill();
    await eventually(() => ch.stats().ready === 3, 5000, "recovery");
    const text = await registry.metrics();
    const r = await promtoolCheck(text);
    expect(r.output).toBe("");
    expect(r.code).toBe(0);
  });

  it("events() is an async iterator with a bounded buffer that reports what it dropped", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    const ac = new AbortController();
    const it = ch.events({ signal: ac.signal, bufferSize: 4 });
    await ch.ready(AbortSignal.timeout(10_000));
    // Nobody reads while 20 requests emit 20 events: only the newest 4 stay, and the drop is reported.
    for (let i = 0; i < 20; i++) await ch.request({ path: "/" });
    const first = await it.next();
    expect(first.value).toMatchObject({ type: "events-dropped" });
    const seen: ChannelEvent[] = [];
    for (let i = 0; i < 4; i++) seen.push((await it.next()).value as ChannelEvent);
    expect(seen.every((e) => e.type === "request" || e.type === "ping")).toBe(true);
    ac.abort();
    expect((await it.next()).done).toBe(true);
  });
});

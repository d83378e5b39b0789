import { describe, expect, it } from "vitest";
import { NoMemberError, RequestError } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { eventually, recordEvents, steadyLoad } from "../helpers/channel.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();
const HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

describe("draining, refusals and total outage against real HTTP/2 backends", () => {
  it("GOAWAY under load: zero failed requests, and the replacement is dialed before the old member closes", async () => {
    const backends = await startBackends(HOSTS, { delayMs: 30 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 3 });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const leaving = backends[0]!;
    let stop = false;
    const load = steadyLoad(() => ch.request({ path: "/", timeout: 5000 }), { concurrency: 12, maxMs: 8000, stop: () => stop });
    await new Promise((r) => setTimeout(r, 400));
    await leaving.command({ cmd: "goaway" });
    await eventually(
      () => rec.events.some((e) => e.type === "state" && e.to === "closed" && e.member.address === leaving.key),
      5000,
      "the draining member to close",
    );
    await eventually(() => ch.stats().ready === 3, 5000, "three ready members again");
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    const results = await load;
    expect(results.filter((r) => !r.ok).map((r) => String(r.error))).toEqual([]);
    expect(results.length).toBeGreaterThan(100);

    const draining = rec.events.find((e) => e.type === "draining" && e.member.address === leaving.key);
    const closed = rec.events.find((e) => e.type === "state" && e.to === "closed" && e.member.address === leaving.key);
    expect(draining).toBeDefined();
    const slot = draining!.type === "draining" ? draining!.member.slot : -1;
    const replacement = rec.events.find((e) => e.type === "connect-attempt" && e.slot === slot && e.at >= draining!.at);
    expect(replacement).toBeDefined();
    expect(replacement!.at).toBeLessThanOrEqual(closed!.at);
  });

  it("GOAWAY on an idle member closes it at once (Node alone would leave the session open)", async () => {
    const backends = await startBackends(HOSTS);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 3 });
    await ch.ready(AbortSignal.timeout(10_000));
    await backends[0]!.command({ cmd: "goaway" });
    // Far below drainTimeout (30 s): the member closes because nothing is left in flight.
    await eventually(() => ch.stats().members.every((m) => m.address !== backends[0]!.key), 2000, "the idle draining member to close");
    // Its slot is re-dialed on a live address; the new member is ready once its first PING is answered.
    await eventually(() => ch.stats().ready === 3, 5000, "the slot's new member to be ready");
    expect(ch.stats().members.filter((m) => m.state === "draining")).toEqual([]);
  });

  it("REFUSED_STREAM is retried on another member: every request succeeds", async () => {
    const backends = await startBackends(HOSTS);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 3 });
    await ch.ready(AbortSignal.timeout(10_000));
    await backends[0]!.command({ cmd: "refuse-next", n: 5 });
    const results = await Promise.allSettled(Array.from({ length: 60 }, () => ch.request({ path: "/", method: "POST", body: "x" })));
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    expect((await backends[0]!.stats()).refused).toBe(5);
  });

  it("a failure HTTP/2 cannot prove unprocessed is not retried unless the caller marks the request idempotent", async () => {
    const backends = await startBackends(["127.0.0.2"], { delayMs: 300 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1, acquireTimeout: 300 });
    await ch.ready(AbortSignal.timeout(10_000));
    const pending = ch.request({ path: "/", timeout: 3000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 100));
    await backends[0]!.kill();
    const err = await pending;
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).unprocessed).toBe(false);
    // The TCP connection closed under it: the member is lost (not a bare stream error).
    expect((err as RequestError).code).toBe("ERR_DIALTONE_MEMBER_LOST");
  });

  it("all backends down: requests fail after acquireTimeout with a typed error naming the target and the last cause; nothing hangs", async () => {
    const backends = await startBackends(HOSTS);
    const ch = open({
      target: `http://svc.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 3,
      acquireTimeout: 400,
    });
    const statuses: string[] = [];
    const watcher = (async () => {
      for await (const s of ch.status()) statuses.push(s);
    })();
    await ch.ready(AbortSignal.timeout(10_000));
    await Promise.all(backends.map((b) => b.kill()));
    await eventually(() => ch.stats().usable === 0 && !ch.connected, 3000, "no usable member");
    // Let the slots fail a few dials so the last error is a connection error.
    await eventually(() => (ch.stats().lastError ?? "").includes("ECONNREFUSED"), 3000, "a refused dial to be recorded");
    const started = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => ch.request({ path: "/" })));
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(390);
    expect(waited).toBeLessThan(5000);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      const e = (r as PromiseRejectedResult).reason as NoMemberError;
      expect(e).toBeInstanceOf(NoMemberError);
      expect(e.code).toBe("ERR_DIALTONE_NO_MEMBER");
      expect(e.message).toContain("http://svc.test:");
      expect(e.message).toContain("ECONNREFUSED");
    }
    expect(ch.stats().queued).toBe(0);
    await ch.close();
    await watcher;
    expect(statuses).toEqual(["disconnected", "connected", "disconnected"]);
  });

  it("the acquire queue is bounded: past maxQueue, requests fail at once with QueueFullError", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    await backends[0]!.kill();
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1, acquireTimeout: 500, maxQueue: 3 });
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => ch.request({ path: "/" })));
    const codes = results.map((r) => (r.status === "rejected" ? (r.reason as { code: string }).code : "ok"));
    expect(codes.filter((c) => c === "ERR_DIALTONE_QUEUE_FULL")).toHaveLength(2);
    expect(codes.filter((c) => c === "ERR_DIALTONE_NO_MEMBER")).toHaveLength(3);
  });

  it("degraded mode: all backends frozen → the last unhealthy member serves (not evicted); thawed → degraded ends", async () => {
    const backends = await startBackends(HOSTS);
    const ch = open({
      target: `http://svc.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 3,
      degraded: { criticalMin: 1 },
      health: { interval: 300, timeout: 300, unhealthyAfter: 2, healthyAfter: 2 },
    });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    for (const b of backends) b.freeze();
    await eventually(() => ch.stats().degraded, 5000, "degraded mode");
    const entered = rec.events.find((e) => e.type === "degraded" && e.degraded);
    expect(entered).toBeDefined();
    // In degraded mode the connected-but-unhealthy member is pickable, and no longer evicted.
    const s = ch.stats();
    const unhealthy = s.members.filter((m) => m.state === "unhealthy");
    expect(unhealthy.length).toBeGreaterThanOrEqual(1);
    expect(s.usable).toBe(unhealthy.length);
    expect(ch.connected).toBe(true);
    const kept = unhealthy[0]!.id;
    await new Promise((r) => setTimeout(r, 1000));
    expect(ch.stats().members.some((m) => m.id === kept)).toBe(true);
    expect(rec.events.some((e) => e.type === "evicted" && e.member.id === kept)).toBe(false);
    for (const b of backends) b.thaw();
    await eventually(() => !ch.stats().degraded, 5000, "degraded mode to end");
    const left = rec.events.find((e) => e.type === "degraded" && !e.degraded);
    expect(left!.at).toBeGreaterThan(entered!.at);
    await eventually(() => ch.stats().ready === 3, 8000, "three ready members after the thaw");
    const r = await ch.request({ path: "/" });
    expect(r.status).toBe(200);
  });
});

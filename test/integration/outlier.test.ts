import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { startBackends } from "../helpers/backends.js";
import { eventually, recordEvents } from "../helpers/channel.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();
const HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];

describe("outlier ejection against real HTTP/2 backends", () => {
  /**
   * One of three backends answers 503 to every request but PINGs fine: PING
   * alone keeps it in rotation for good. With `outlier`, 3 gateway errors in
   * a row eject it; it stays connected, takes no picks for baseEjection,
   * comes back, fails again and is ejected for twice as long.
   */
  it("a backend answering 503 to everything is ejected after N in a row, takes no picks, comes back, and is ejected for longer", async () => {
    const backends = await startBackends(HOSTS);
    const bad = backends[0]!;
    await bad.command({ cmd: "status", status: 503 });
    const ch = open({
      target: `http://svc.test:${bad.port}`,
      discovery: staticDiscovery(backends),
      members: 3,
      // One call at a time: the in-flight balancer spreads them evenly, so the bad backend gets its share
      // until ejected (peak-EWMA could avoid it on latency alone, which is not what this test is about).
      balancer: "in-flight",
      outlier: { consecutiveGatewayErrors: 3, baseEjection: 600 },
    });
    const registry = new Registry();
    ch.metrics(registry);
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    const send = async (): Promise<number> => (await ch.request({ path: "/" })).status;
    // Until the third 503, the bad backend takes its share.
    let failed = 0;
    for (let i = 0; i < 60 && !rec.events.some((e) => e.type === "ejected"); i++) if ((await send()) === 503) failed++;
    expect(failed).toBe(3);
    const ejected = rec.events.find((e) => e.type === "ejected");
    expect(ejected).toMatchObject({ reason: "consecutive-gateway", durationMs: 600, member: { address: bad.key } });
    // Ejected: 100 calls, none to it; it is still a ready, PINGed member.
    const before = (await bad.stats()).requests;
    const statuses = await Promise.all(Array.from({ length: 100 }, send));
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect((await bad.stats()).requests).toBe(before);
    expect(ch.stats().members.find((m) => m.address === bad.key)?.state).toBe("ready");
    // Its time is up: it takes picks again, fails again, and this ejection lasts twice as long.
    await eventually(() => rec.events.some((e) => e.type === "ejection-ended"), 3000, "the ejection to end");
    for (let i = 0; i < 200 && rec.events.filter((e) => e.type === "ejected").length < 2; i++) await send();
    expect(rec.events.filter((e) => e.type === "ejected").at(-1)).toMatchObject({ durationMs: 1200, member: { address: bad.key } });
    expect(await registry.metrics()).toMatch(/dialtone_ejections_total\{channel="[^"]+",reason="consecutive_gateway"\} 2/);
  });

  /**
   * Four addresses, three members: the fourth address has no member. When a
   * member's backend answers 503 to everything and is ejected, its slot
   * dials the fourth address; that member serves, and when the ejection
   * ends the ejected one drains as surplus.
   */
  it("an ejected member's slot dials a replacement on the address no member uses, which serves; the ejected one drains when its time is up", async () => {
    const backends = await startBackends([...HOSTS, "127.0.0.5"]);
    const ch = open({
      target: `http://svc.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 3,
      balancer: "in-flight",
      outlier: { consecutiveGatewayErrors: 3, baseEjection: 1500 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    const used = new Set(ch.stats().members.map((m) => m.address));
    expect(used.size).toBe(3);
    const spare = backends.find((b) => !used.has(b.key))!;
    const bad = backends.find((b) => used.has(b.key))!;
    await bad.command({ cmd: "status", status: 503 });
    const rec = recordEvents(ch);
    const send = async (): Promise<{ status: number; backend: unknown }> => {
      const res = await ch.request({ path: "/" });
      return { status: res.status, backend: res.headers["x-backend"] };
    };
    for (let i = 0; i < 60 && !rec.events.some((e) => e.type === "ejected"); i++) await send();
    expect(rec.events.find((e) => e.type === "ejected")).toMatchObject({ member: { address: bad.key } });
    // The replacement: dialed to the unused address, proven, and serving.
    await eventually(() => ch.stats().members.some((m) => m.address === spare.key && m.state === "ready"), 5000, "a member on the unused address");
    const served = await Promise.all(Array.from({ length: 60 }, send));
    expect(served.every((r) => r.status === 200)).toBe(true);
    expect(served.some((r) => r.backend === spare.key)).toBe(true);
    expect(served.some((r) => r.backend === bad.key)).toBe(false);
    // Meanwhile the ejected member is still connected and PINGed.
    expect(ch.stats().members.find((m) => m.address === bad.key)?.state).toBe("ready");
    // Its time is up: surplus, it drains; the three members left serve, none on the bad backend.
    await eventually(
      () => rec.events.some((e) => e.type === "draining" && e.member.address === bad.key && e.reason === "surplus"),
      5000,
      "the ejected member to drain",
    );
    await eventually(() => !ch.stats().members.some((m) => m.address === bad.key), 5000, "the ejected member to close");
    expect(
      ch
        .stats()
        .members.map((m) => m.address)
        .sort(),
    ).toEqual(
      backends
        .filter((b) => b !== bad)
        .map((b) => b.key)
        .sort(),
    );
    const before = (await bad.stats()).requests;
    const after = await Promise.all(Array.from({ length: 60 }, send));
    expect(after.every((r) => r.status === 200)).toBe(true);
    expect((await bad.stats()).requests).toBe(before);
  });

  it("off unless configured: without `outlier` the 503 backend keeps its share", async () => {
    const backends = await startBackends(HOSTS);
    await backends[0]!.command({ cmd: "status", status: 503 });
    // The in-flight balancer spreads one-at-a-time calls evenly, so only ejection could take the share away.
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 3, balancer: "in-flight" });
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push((await ch.request({ path: "/" })).status);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(5);
    expect(rec.events.some((e) => e.type === "ejected")).toBe(false);
  });

  it("never more than maxEjectedPercent: with two of three failing, one is ejected and the other keeps its share", async () => {
    const backends = await startBackends(HOSTS);
    await backends[0]!.command({ cmd: "status", status: 500 });
    await backends[1]!.command({ cmd: "status", status: 500 });
    const ch = open({
      target: `http://svc.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 3,
      balancer: "in-flight",
      outlier: { consecutive5xx: 2, baseEjection: 30_000 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    for (let i = 0; i < 80; i++) await ch.request({ path: "/" });
    const ejections = rec.events.filter((e) => e.type === "ejected");
    expect(ejections).toHaveLength(1);
    expect(ejections[0]).toMatchObject({ reason: "consecutive-5xx" });
  });
});

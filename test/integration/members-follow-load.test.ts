import { Registry } from "prom-client";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createHttp2Channel, type Http2Channel } from "../../src/index.js";
import { startBackends, stopAllBackends } from "../helpers/backends.js";
import { eventually, recordEvents, steadyLoad } from "../helpers/channel.js";
import { sample } from "../helpers/prom.js";

const channels: Http2Channel[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await stopAllBackends();
});
afterAll(stopAllBackends);

describe("members that follow load, against real HTTP/2 backends", () => {
  it("a load ramp grows members one at a time toward max, steady load changes nothing, a pause shrinks them to min", async () => {
    // Each request takes 100 ms, so the number of workers is the number in flight.
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"], { delayMs: 100 });
    const ch = createHttp2Channel({
      target: `http://backend.test:${backends[0]!.port}`,
      discovery: `static:///${backends.map((b) => b.key).join(",")}`,
      members: { min: 1, max: 4, target: 4, shrinkAfter: 1500 },
      name: "ramp",
    });
    channels.push(ch);
    const registry = new Registry();
    ch.metrics(registry);
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    expect(ch.stats().wanted).toBe(1);
    const changes = (): Array<[number, number]> => rec.events.flatMap((e) => (e.type === "members" ? [[e.from, e.to] as [number, number]] : []));
    const call = (): Promise<unknown> => ch.request({ path: "/" });

    // Ramp: 24 in flight is 24 per member at first, far above 4.
    let stop = false;
    const ramp = steadyLoad(call, { concurrency: 24, maxMs: 20_000, stop: () => stop });
    await eventually(() => ch.stats().wanted === 4 && ch.stats().ready === 4, 15_000, "4 ready members");
    stop = true;
    expect((await ramp).every((r) => r.ok)).toBe(true);
    expect(changes()).toEqual([
      [1, 2],
      [2, 3],
      [3, 4],
    ]);
    expect(new Set(ch.stats().members.map((m) => m.address)).size).toBe(4);
    expect(sample(await registry.metrics(), "dialtone_members_wanted", { channel: "ramp" })).toBe(4);
    expect(sample(await registry.metrics(), "dialtone_member_count_changes_total", { channel: "ramp", direction: "up" })).toBe(3);

    // Steady: 10 in flight over 4 members is 2.5 each, between a quarter of target and target.
    const before = changes().length;
    stop = false;
    const steady = await steadyLoad(call, { concurrency: 10, maxMs: 4000, stop: () => false });
    expect(steady.every((r) => r.ok)).toBe(true);
    expect(changes()).toHaveLength(before);

    // Pause: nothing in flight; one member goes per shrinkAfter, down to min, each drained as surplus.
    await eventually(() => ch.stats().wanted === 1, 15_000, "members back to min");
    expect(changes().slice(before)).toEqual([
      [4, 3],
      [3, 2],
      [2, 1],
    ]);
    const surplus = rec.events.filter((e) => e.type === "draining" && e.reason === "surplus");
    expect(surplus).toHaveLength(3);
    await eventually(() => ch.stats().members.length === 1, 5000, "surplus members closed");
    expect(sample(await registry.metrics(), "dialtone_member_count_changes_total", { channel: "ramp", direction: "down" })).toBe(3);
    expect(sample(await registry.metrics(), "dialtone_members_wanted", { channel: "ramp" })).toBe(1);
  }, 60_000);

  it("with the peak-EWMA balancer, latency that rises under load grows members before in-flight reaches target", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"], { delayMs: 5 });
    const ch = createHttp2Channel({
      target: `http://backend.test:${backends[0]!.port}`,
      discovery: `static:///${backends.map((b) => b.key).join(",")}`,
      balancer: "peak-ewma",
      members: { min: 1, max: 2, target: 8 },
    });
    channels.push(ch);
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const call = (): Promise<unknown> => ch.request({ path: "/" });
    // Quiet: one request at a time (below a quarter of target), ~5 ms each: the quiet latency.
    await steadyLoad(call, { concurrency: 1, maxMs: 2000, stop: () => false });
    expect(ch.stats().wanted).toBe(1);
    // Load in the band (3 in flight on 1 member, target 8) and the backends slow to 100 ms: latency, not in-flight, says grow.
    for (const b of backends) await b.command({ cmd: "delay", ms: 100 });
    let stop = false;
    const load = steadyLoad(call, { concurrency: 3, maxMs: 10_000, stop: () => stop });
    await eventually(() => ch.stats().wanted === 2, 8000, "a second member");
    stop = true;
    expect((await load).every((r) => r.ok)).toBe(true);
    const grew = rec.events.find((e) => e.type === "members");
    expect(grew?.type === "members" && grew.reason).toMatch(/^latency/);
  }, 30_000);
});

import { describe, expect, it } from "vitest";
import { ClosedError, NotReadyError } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { eventually } from "../helpers/channel.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();

describe("streams, stream limits, abort and close against a real HTTP/2 backend", () => {
  it("stream() counts as in flight until the stream closes", async () => {
    const backends = await startBackends(["127.0.0.2"], { delayMs: 150 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const s = await ch.stream({ path: "/" });
    expect(ch.stats().members[0]!.inFlight).toBe(1);
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    await new Promise((r) => s.once("close", r));
    expect(Buffer.concat(chunks).toString()).toBe(`ok ${backends[0]!.key}`);
    expect(ch.stats().members[0]!.inFlight).toBe(0);
  });

  it("a member at the peer's SETTINGS_MAX_CONCURRENT_STREAMS takes no more picks; the rest wait and succeed", async () => {
    const backends = await startBackends(["127.0.0.2"], { delayMs: 200, maxConcurrentStreams: 2 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    expect(ch.stats().members[0]!.maxConcurrent).toBe(2);
    let maxInFlight = 0;
    let maxQueued = 0;
    const sampler = setInterval(() => {
      const s = ch.stats();
      maxInFlight = Math.max(maxInFlight, s.members[0]?.inFlight ?? 0);
      maxQueued = Math.max(maxQueued, s.queued);
    }, 10);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => ch.request({ path: "/" })));
    clearInterval(sampler);
    expect(results.every((r) => r.status === "fulfilled")).toBe(true);
    expect(maxInFlight).toBe(2);
    expect(maxQueued).toBeGreaterThanOrEqual(3);
  });

  it("an aborted request rejects with the signal's reason and frees its member", async () => {
    const backends = await startBackends(["127.0.0.2"], { delayMs: 500 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const ac = new AbortController();
    const p = ch.request({ path: "/", signal: ac.signal });
    setTimeout(() => ac.abort(new Error("caller gave up")), 50);
    await expect(p).rejects.toThrow("caller gave up");
    expect(ch.stats().members[0]!.inFlight).toBe(0);
  });

  it("close() fails queued requests with ClosedError, ends status(), closes every member", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    await backends[0]!.kill();
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 2, acquireTimeout: 10_000 });
    const waiting = ch.request({ path: "/" });
    const statuses: string[] = [];
    const reader = (async () => {
      for await (const s of ch.status()) statuses.push(s);
    })();
    await eventually(() => ch.stats().queued === 1, 2000, "the request to queue");
    await ch.close();
    await expect(waiting).rejects.toBeInstanceOf(ClosedError);
    await reader;
    expect(statuses).toEqual(["disconnected"]);
    expect(ch.stats().members).toEqual([]);
    await expect(ch.request({ path: "/" })).rejects.toBeInstanceOf(ClosedError);
  });

  it("close() lets in-flight requests finish", async () => {
    const backends = await startBackends(["127.0.0.2"], { delayMs: 300 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const inflight = ch.request({ path: "/" });
    await new Promise((r) => setTimeout(r, 50));
    await ch.close();
    await expect(inflight).resolves.toMatchObject({ status: 200 });
  });

  it("ready() without a signal is bounded by readyTimeout: NotReadyError says how far it got and why", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    await backends[0]!.kill();
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 2, readyTimeout: 600 });
    const started = performance.now();
    const err = await ch.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NotReadyError);
    expect((err as NotReadyError).ready).toBe(0);
    expect((err as NotReadyError).wanted).toBe(2);
    expect((err as NotReadyError).code).toBe("ERR_DIALTONE_NOT_READY");
    expect((err as Error).message).toContain("ECONNREFUSED");
    expect(performance.now() - started).toBeGreaterThanOrEqual(590);
  });
});

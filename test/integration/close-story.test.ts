import { describe, expect, it } from "vitest";
import { ClosedError } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { recordEvents } from "../helpers/channel.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();

describe("close() is its own reason", () => {
  it("closing a busy channel emits no evicted, draining or degraded events and marks no address failed", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4"], { delayMs: 2000 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 3, closeGrace: 300 });
    await ch.ready(AbortSignal.timeout(5000));
    const rec = recordEvents(ch);
    // Requests still in flight when closeGrace ends are cut.
    const inFlight = Array.from({ length: 6 }, () => ch.request({ path: "/", timeout: 10_000 }).then(() => undefined, (e: unknown) => e));
    await new Promise((r) => setTimeout(r, 100));
    await ch.close();
    const errors = await Promise.all(inFlight);
    expect(errors.every((e) => e !== undefined)).toBe(true);
    const blamed = rec.events.filter((e) => e.type === "evicted" || e.type === "draining" || e.type === "degraded" || e.type === "connect-failed");
    expect(blamed).toEqual([]);
    expect(ch.stats().addresses.map((a) => a.failures)).toEqual([0, 0, 0]);
    // Every member left with the channel, for the channel's reason.
    const removed = rec.events.filter((e) => e.type === "member-removed");
    expect(removed).toHaveLength(3);
    for (const e of removed) if (e.type === "member-removed") expect(e.reason).toBe("channel closed");
  });

  // Needs the request-side change in src/transport/http2/request.ts (see the core-redesign report):
  // a stream cut because the channel closed must reject with ClosedError. Flip to `it` once it lands.
  it.fails("requests cut at closeGrace reject with ClosedError", async () => {
    const backends = await startBackends(["127.0.0.2"], { delayMs: 2000 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1, closeGrace: 200 });
    await ch.ready(AbortSignal.timeout(5000));
    const pending = ch.request({ path: "/", timeout: 10_000 }).then(() => undefined, (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    await ch.close();
    expect(await pending).toBeInstanceOf(ClosedError);
  });
});

import { describe, expect, it } from "vitest";
import { ClosedError } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { recordEvents } from "../helpers/channel.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";
import { http2Supervisor } from "../helpers/supervisor.js";

const { open } = channelFixture();

describe("close() is its own reason", () => {
  it("closing a busy channel emits no evicted, draining or degraded events and marks no address failed", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4"], { delayMs: 2000 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 3, closeGrace: 300 });
    await ch.ready(AbortSignal.timeout(5000));
    const rec = recordEvents(ch);
    // Requests still in flight when closeGrace ends are cut.
    const inFlight = Array.from({ length: 6 }, () =>
      ch.request({ path: "/", timeout: 10_000 }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
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

  // Needs the transport side (core-redesign report): in ChannelBase's attempt loop, a failed attempt
  // whose lease.closedByChannel is true rejects with ClosedError. Flip to `it` once it lands.
  it("requests cut at closeGrace reject with ClosedError", async () => {
    const backends = await startBackends(["127.0.0.2"], { delayMs: 2000 });
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 1, closeGrace: 200 });
    await ch.ready(AbortSignal.timeout(5000));
    const pending = ch.request({ path: "/", timeout: 10_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 100));
    await ch.close();
    expect(await pending).toBeInstanceOf(ClosedError);
  });

  it("a lease says when close() cut its member at closeGrace, and only then", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"], { delayMs: 1000 });
    const sup = http2Supervisor(backends, { closeGrace: 150 });
    await sup.leases.ready(AbortSignal.timeout(5000));
    const busy = await sup.leases.acquire();
    const idle = await sup.leases.acquire();
    expect(idle.member).not.toBe(busy.member);
    idle.release();
    // A slow request keeps one member busy past closeGrace; the other closes gracefully at once.
    const stream = busy.connection.session.request({ ":path": "/" });
    busy.connection.track(stream);
    stream.on("error", () => {});
    stream.resume();
    const closed = new Promise((r) => stream.once("close", r));
    // On the wire before close() starts.
    await new Promise((r) => setTimeout(r, 50));
    expect(busy.closedByChannel).toBe(false);
    await sup.close();
    await closed;
    busy.release();
    expect(busy.closedByChannel).toBe(true);
    expect(idle.closedByChannel).toBe(false);
  });
});

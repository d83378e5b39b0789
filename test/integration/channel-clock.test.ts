/**
 * A channel on a fake clock (the `clock` option), against real peers: the
 * transport's own timers — a request's deadline, the connect timeout — run
 * on the channel's clock, so a minute of it passes in no real time; and
 * close() leaves no timer of the channel's behind on it. Real sockets still
 * need real time, so the tests move the fake clock in small steps while they
 * wait for the network, and jump it only where a timer is the point.
 */
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import {
  ConnectError,
  createHttp2Channel,
  createNatsChannel,
  RequestTimeoutError,
  type ChannelEvent,
  type Http2Channel,
  type Http2ChannelOptions,
} from "../../src/index.js";
import { startBackends, stopAllBackends } from "../helpers/backends.js";
import { blackHole, closeBadPeers } from "../helpers/bad-peers.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";
import { SimClock } from "../helpers/sim-clock.js";
import { staticDiscovery } from "../helpers/setup.js";

const open: Array<{ ch: { close(): Promise<void> }; clock: SimClock }> = [];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const { ch, clock } of open.splice(0)) await closeOn(ch, clock);
  for (const c of cleanups.splice(0)) await c().catch(() => {});
  await stopAllBackends();
  await closeBadPeers();
});

function channel(clock: SimClock, opts: Omit<Http2ChannelOptions, "clock">): Http2Channel {
  const ch = createHttp2Channel({ ...opts, clock });
  open.push({ ch, clock });
  return ch;
}

/** Moves the fake clock 1 ms per real turn (≥ 2 ms) until `done()` holds; bounded: 5000 steps. */
async function drive(clock: SimClock, done: () => boolean): Promise<void> {
  for (let i = 0; i < 5000 && !done(); i++) {
    await clock.runUntil(clock.now() + 1);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** close() on a fake clock: its grace and ticks are the clock's, so the clock must move while it runs. */
async function closeOn(ch: { close(): Promise<void> }, clock: SimClock): Promise<void> {
  let closed = false;
  const closing = ch.close().then(() => void (closed = true));
  await drive(clock, () => closed);
  await closing;
}

/** Whether a promise has settled, without waiting for it. */
function settled(p: Promise<unknown>): () => boolean {
  let done = false;
  void p.then(
    () => void (done = true),
    () => void (done = true),
  );
  return () => done;
}

describe("an HTTP/2 channel on a fake clock (real backend, real sockets)", () => {
  it("a request's deadline fires when the channel's clock reaches it: 60 s of timeout in no real time; close() leaves no timer", async () => {
    const clock = new SimClock();
    const backends = await startBackends(["127.0.0.2"]);
    // PINGs far apart: the jump below is about the request's deadline alone.
    const ch = channel(clock, {
      target: `http://svc.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 1,
      requestTimeout: 60_000,
      health: { interval: 600_000, timeout: 100_000, suspectAfter: 600_000 },
    });
    const ready = ch.ready(AbortSignal.timeout(20_000));
    await drive(clock, settled(ready));
    await ready;
    const started = clock.now();
    let error: unknown;
    // The backend answers in ten minutes of real time: only the fake clock can end this request in time.
    const req = ch.request({ path: "/?delay=600000" }).catch((e: unknown) => (error = e));
    const done = settled(req);
    await clock.runUntil(started + 59_999);
    expect(done()).toBe(false);
    await clock.runUntil(started + 60_000);
    await drive(clock, done);
    await req;
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect((error as Error).message).toMatch(/60000 ms/);
    expect(clock.now() - started).toBeLessThan(60_000 + 5000);

    await closeOn(ch, clock);
    // The last connection's flush timer goes once its socket has flushed (real I/O): wait for that, bounded.
    await drive(clock, () => clock.pendingOwnTimers === 0);
    expect(clock.pendingOwnTimers).toBe(0);
  });

  it("the connect timeout runs on the channel's clock: a TLS dial to a peer that never speaks fails when the fake minute is up", async () => {
    const clock = new SimClock();
    const hole = await blackHole("127.0.0.3");
    const events: Array<ChannelEvent & { t: number }> = [];
    const ch = channel(clock, { target: `https://svc.test:443`, discovery: `static:///${hole.key}`, members: 1, connectTimeout: 60_000 });
    ch.on((e) => events.push({ ...e, t: clock.now() }));
    await drive(clock, () => hole.accepted >= 1);
    expect(hole.accepted).toBe(1);
    const attempt = events.find((e) => e.type === "connect-attempt");
    expect(attempt).toBeDefined();
    await clock.runUntil(attempt!.t + 59_999);
    expect(events.filter((e) => e.type === "connect-failed")).toEqual([]);
    await clock.runUntil(attempt!.t + 60_000);
    const failed = events.find((e) => e.type === "connect-failed");
    expect(failed?.type === "connect-failed" && failed.error).toBeInstanceOf(ConnectError);
    expect(failed?.type === "connect-failed" && failed.error.message).toMatch(/connect timed out after 60000 ms/);
    expect(failed!.t).toBe(attempt!.t + 60_000);
  });
});

describe("a NATS channel on a fake clock (real nats-server)", () => {
  it("a request's deadline (the channel's deadline queue) fires on the channel's clock; close() leaves no timer", async () => {
    const server: NatsServer = await startNatsServer({ host: "127.0.0.7", config: () => "" });
    cleanups.push(() => server.stop());
    // A responder that takes the request and never replies: only the deadline can end it.
    const sink = await connect({ servers: server.key });
    cleanups.push(() => sink.close());
    sink.subscribe("clock.hang", { callback: () => {} });
    await sink.flush();
    const clock = new SimClock();
    const ch = createNatsChannel({
      target: `nats://${server.key}`,
      members: 1,
      clock,
      requestTimeout: 60_000,
      hedge: false,
      health: { interval: 600_000, timeout: 100_000, suspectAfter: 600_000 },
    });
    open.push({ ch, clock });
    const ready = ch.ready(AbortSignal.timeout(20_000));
    await drive(clock, settled(ready));
    await ready;
    const started = clock.now();
    let error: unknown;
    const req = ch.request("clock.hang", "x").catch((e: unknown) => (error = e));
    const done = settled(req);
    await clock.runUntil(started + 59_999);
    expect(done()).toBe(false);
    await clock.runUntil(started + 60_000);
    await drive(clock, done);
    await req;
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect(clock.now() - started).toBeLessThan(60_000 + 5000);

    await closeOn(ch, clock);
    expect(clock.pendingOwnTimers).toBe(0);
  });
});

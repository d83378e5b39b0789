/**
 * grpc-js deadlines on dialtone run on the channel's clock (its deadline
 * queue), against a real grpc-js TestService: a deadline farther away than
 * Node's longest timer (2^31−1 ms, about 24.8 days) neither fires at once nor
 * at that timer's end, but when the channel's clock reaches it; Infinity is
 * no deadline at all. A fake clock (the channel's `clock` option) makes weeks
 * pass in no real time; real sockets still need real time, so the clock moves
 * in small steps while the test waits for the network, and jumps only where
 * the deadline is the point. PINGs are set a Node-timer apart with a long
 * timeout, so no jump makes the member unhealthy.
 */
import grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { createGrpcChannel } from "../../src/adapters/grpc-js.js";
import { createHttp2Channel, type Http2Channel } from "../../src/index.js";
import { loadTesting, type AnyClient } from "../helpers/grpc-js.js";
import { startGrpcJsInterop, stopRealServers, type GrpcServer } from "../helpers/real-servers.js";
import { channelFixture } from "../helpers/setup.js";
import { SimClock } from "../helpers/sim-clock.js";

const MAX_TIMER_MS = 2 ** 31 - 1;
const DAY_MS = 86_400_000;
const { TestService } = loadTesting(grpc);
const S = grpc.status;
const { open } = channelFixture();
const onFakeClocks: Array<{ ch: Http2Channel; clock: SimClock }> = [];
const clients: AnyClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const { ch, clock } of onFakeClocks.splice(0)) await closeOn(ch, clock);
  await stopRealServers();
});

/** Moves the fake clock 1 ms per real turn (≥ 2 ms) until `done()` holds; bounded: 5000 steps. */
async function drive(clock: SimClock, done: () => boolean): Promise<void> {
  for (let i = 0; i < 5000 && !done(); i++) {
    await clock.runUntil(clock.now() + 1);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** close() on a fake clock: its grace and ticks are the clock's, so the clock must move while it runs. */
async function closeOn(ch: Http2Channel, clock: SimClock): Promise<void> {
  let closed = false;
  const closing = ch.close().then(() => void (closed = true));
  await drive(clock, () => closed);
  await closing;
}

/** A one-member channel on a fake clock to one grpc-js TestService, and a generated client on it. */
async function onFakeClock(): Promise<{ clock: SimClock; c: AnyClient; srv: GrpcServer }> {
  const srv = await startGrpcJsInterop("127.0.0.2");
  const clock = new SimClock();
  const ch = createHttp2Channel({
    target: `http://svc.test:${srv.port}`,
    discovery: `static:///${srv.key}`,
    members: 1,
    clock,
    // A PING at most every Node-timer, waited for long, never counted unhealthy within a test: the jumps are about the deadline.
    health: { interval: MAX_TIMER_MS, timeout: 1_000_000, unhealthyAfter: 100, jitter: 0, suspectAfter: 0 },
  });
  onFakeClocks.push({ ch, clock });
  let ready = false;
  const readying = ch.ready(AbortSignal.timeout(20_000)).then(() => void (ready = true));
  await drive(clock, () => ready);
  await readying;
  const c = new TestService(ch.target, grpc.credentials.createInsecure(), { channelOverride: createGrpcChannel(ch) });
  clients.push(c);
  return { clock, c, srv };
}

/** A server stream that answers once at once, then waits 2000 s of real time: open until something ends it. */
function longStream(
  c: AnyClient,
  deadline: grpc.Deadline,
): { status: () => grpc.StatusObject | undefined; first: () => boolean; call: grpc.ClientReadableStream<unknown> } {
  const call = c.StreamingOutputCall({ responseParameters: [{ size: 1 }, { size: 1, intervalUs: 2_000_000_000 }] }, new grpc.Metadata(), {
    deadline,
  }) as grpc.ClientReadableStream<unknown>;
  let status: grpc.StatusObject | undefined;
  let first = false;
  call.on("data", () => (first = true));
  call.on("status", (s: grpc.StatusObject) => (status = s));
  call.on("error", () => {});
  return { status: () => status, first: () => first, call };
}

describe("grpc-js deadlines on dialtone", () => {
  it("a deadline past Node's longest timer is not over when that timer would fire; it ends the call DEADLINE_EXCEEDED when the channel's clock reaches it", async () => {
    const { clock, c } = await onFakeClock();
    const start = clock.now();
    // grpc-js deadlines are wall-clock times: the channel's wall clock is the fake one's.
    const s = longStream(c, clock.wall() + MAX_TIMER_MS + 60_000);
    await drive(clock, () => s.first() || s.status() !== undefined);
    expect([s.first(), s.status()]).toEqual([true, undefined]);
    await clock.runUntil(start + MAX_TIMER_MS + 1000);
    expect(s.status()).toBeUndefined();
    await clock.runUntil(start + MAX_TIMER_MS + 60_000);
    await drive(clock, () => s.status() !== undefined);
    expect(s.status()?.code).toBe(S.DEADLINE_EXCEEDED);
    // It went when due (within the steps the clock took while the cancel's I/O ran), not at some later timer.
    expect(clock.now() - start).toBeLessThan(MAX_TIMER_MS + 60_000 + 5000);
  }, 60_000);

  it("Infinity is no deadline: the call is open after 100 days of the channel's clock; grpc-js's cancel ends it", async () => {
    const { clock, c } = await onFakeClock();
    const s = longStream(c, Infinity);
    await drive(clock, () => s.first() || s.status() !== undefined);
    expect([s.first(), s.status()]).toEqual([true, undefined]);
    await clock.runUntil(clock.now() + 100 * DAY_MS);
    expect(s.status()).toBeUndefined();
    s.call.cancel();
    await drive(clock, () => s.status() !== undefined);
    expect(s.status()?.code).toBe(S.CANCELLED);
  }, 60_000);

  it("on the system clock, a deadline 25 days away fires neither at once nor on the server (grpc-timeout capped below 2^31 ms): the call gets every answer", async () => {
    const srv = await startGrpcJsInterop("127.0.0.2");
    const ch = open({ target: `http://svc.test:${srv.port}`, discovery: `static:///${srv.key}`, members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const c = new TestService(ch.target, grpc.credentials.createInsecure(), { channelOverride: createGrpcChannel(ch) });
    clients.push(c);
    const call = c.StreamingOutputCall({ responseParameters: [{ size: 1 }, { size: 2, intervalUs: 200_000 }] }, new grpc.Metadata(), {
      deadline: Date.now() + MAX_TIMER_MS + DAY_MS,
    }) as grpc.ClientReadableStream<{ payload: { body: Buffer } }>;
    const sizes: number[] = [];
    call.on("data", (m: { payload: { body: Buffer } }) => sizes.push(m.payload.body.length));
    call.on("error", () => {});
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    expect([status.code, sizes]).toEqual([S.OK, [1, 2]]);
  }, 30_000);
});

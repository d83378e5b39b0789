/**
 * grpc-js on dialtone hedges the methods marked idempotent when one real
 * backend stalls: two grpc-js TestService backends, one of them frozen with
 * SIGSTOP (its TCP connection stays open and nothing answers).
 *
 * Nothing here rests on a random pick or on time: the picker's randomness is
 * pinned (`random: () => 0`) and the in-flight balancer sees both idle members
 * at the same cost, so every call's first attempt goes to the same member; a
 * probe call says which backend that is, and that backend is the one frozen.
 * PINGs (every 60 s) and passive suspicion (off) cannot take the frozen member
 * out of rotation during the test, so the first attempt is certain to reach it.
 * The hedge is proven by who answered: the other backend, through the hedge
 * (`hedgeWon`); without hedging the same call waits on the frozen backend
 * until its deadline.
 */
import grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { createGrpcChannel, type GrpcChannelOptions } from "../../src/adapters/grpc-js.js";
import type { ChannelEvent, Http2Channel } from "../../src/index.js";
import { eventually, recordEvents } from "../helpers/channel.js";
import { loadTesting, unary, type AnyClient } from "../helpers/grpc-js.js";
import { startGrpcJsInterop, stopRealServers, type GrpcServer } from "../helpers/real-servers.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();
const clients: AnyClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  // SIGKILL ends the frozen backend too.
  await stopRealServers();
});

const S = grpc.status;
const { TestService } = loadTesting(grpc);
const EMPTY_CALL = "/grpc.testing.TestService/EmptyCall";
type RequestEvent = Extract<ChannelEvent, { type: "request" }>;
const requests = (events: ChannelEvent[]): RequestEvent[] => events.filter((e): e is RequestEvent => e.type === "request");

/**
 * Two backends behind a two-member channel whose first attempts all go to
 * one member (pinned picker, idle members tie); that member's backend is
 * frozen before the call under test. Returns the frozen one and the other.
 */
async function oneFrozen(options: GrpcChannelOptions): Promise<{ ch: Http2Channel; c: AnyClient; frozen: GrpcServer; live: GrpcServer }> {
  const backends = await Promise.all([startGrpcJsInterop("127.0.0.2"), startGrpcJsInterop("127.0.0.3")]);
  const ch = open({
    target: `http://svc.test:${backends[0]!.port}`,
    discovery: `static:///${backends.map((b) => b.key).join(",")}`,
    members: 2,
    balancer: "in-flight",
    random: () => 0,
    hedge: { delay: 50, max: 1 },
    health: { interval: 60_000, suspectAfter: 0 },
  });
  await ch.ready(AbortSignal.timeout(10_000));
  const c = new TestService(ch.target, grpc.credentials.createInsecure(), { channelOverride: createGrpcChannel(ch, options) });
  clients.push(c);
  const probe = await unary((cb) => c.EmptyCall({}, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, cb));
  expect(probe.status.code).toBe(S.OK);
  const first = probe.headers?.get("x-backend")[0];
  const frozen = backends.find((b) => b.key === first);
  const live = backends.find((b) => b.key !== first);
  if (!frozen || !live) throw new Error(`the probe was answered by ${String(first)}, not by one of ${backends.map((b) => b.key).join(", ")}`);
  frozen.freeze();
  return { ch, c, frozen, live };
}

describe("grpc-js on dialtone: hedging against a frozen backend", () => {
  it("a method marked idempotent whose first attempt reaches the frozen backend is answered by the other one, through the hedge", async () => {
    const { ch, c, frozen, live } = await oneFrozen({ idempotent: [EMPTY_CALL] });
    const rec = recordEvents(ch);
    const r = await unary((cb) => c.EmptyCall({}, new grpc.Metadata(), { deadline: Date.now() + 20_000 }, cb));
    expect(r.status.code).toBe(S.OK);
    expect(r.headers?.get("x-backend")).toEqual([live.key]);
    // The call's one request event: a hedge went out, and the hedge (which never goes where an attempt
    // of the call already is) won: the first attempt was the frozen backend's, and it never answered.
    const evs = requests(rec.events);
    expect(evs.map((e) => [e.outcome, e.hedges, e.hedgeWon, e.address])).toEqual([["ok", 1, true, live.key]]);
    expect(frozen.key).not.toBe(live.key);
    // The loser was cancelled (its stream closes a turn or two later): nothing stays in flight on either member.
    await eventually(() => ch.stats().members.every((m) => m.inFlight === 0), 10_000, "no call in flight");
  }, 30_000);

  it("the same call not marked idempotent is sent once: it waits on the frozen backend until its deadline", async () => {
    const { ch, c, frozen } = await oneFrozen({});
    const rec = recordEvents(ch);
    const r = await unary((cb) => c.EmptyCall({}, new grpc.Metadata(), { deadline: Date.now() + 1000 }, cb));
    expect(r.status.code).toBe(S.DEADLINE_EXCEEDED);
    expect(r.headers).toBeUndefined();
    // The request event comes when the cancelled stream has closed, just after grpc-js saw the status.
    await eventually(() => requests(rec.events).length > 0, 10_000, "the call's request event");
    expect(requests(rec.events).map((e) => [e.hedges, e.address])).toEqual([[0, frozen.key]]);
  }, 30_000);
});

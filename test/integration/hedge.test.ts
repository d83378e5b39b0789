import { request as undiciRequest, type Dispatcher } from "undici";
import { describe, expect, it } from "vitest";
import { createDispatcher } from "../../src/adapters/undici.js";
import type { ChannelEvent } from "../../src/index.js";
import { startBackends, type Backend } from "../helpers/backends.js";
import { recordEvents } from "../helpers/channel.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();

type RequestEvent = Extract<ChannelEvent, { type: "request" }>;
const requests = (events: ChannelEvent[]): RequestEvent[] => events.filter((e): e is RequestEvent => e.type === "request");

/** Two backends, the first answering every request 1 s late (it still PINGs fine). */
async function stalledPair(): Promise<[Backend, Backend]> {
  const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
  await backends[0]!.command({ cmd: "stall", percent: 100, ms: 1000 });
  return backends as [Backend, Backend];
}

describe("hedged requests against real HTTP/2 backends", () => {
  it("an idempotent call with no answer after `delay` goes to the other member; the first answer wins and the loser is cancelled", async () => {
    const [slow, fast] = await stalledPair();
    const ch = open({
      target: `http://svc.test:${slow.port}`,
      discovery: staticDiscovery([slow, fast]),
      members: 2,
      balancer: "in-flight",
      hedge: { delay: 50, max: 1 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    // Calls go out in pairs: with the in-flight balancer the second call of a pair
    // goes to the member the first did not take, so the first pair reaches the
    // stalled member whatever P2C's random draws are. (Later pairs may not: once its
    // calls go unanswered, the overdue-aware cost steers picks away from it.)
    for (let i = 0; i < 8; i++) {
      const pair = await Promise.all([ch.request({ path: "/", idempotent: true }), ch.request({ path: "/", idempotent: true })]);
      for (const res of pair) {
        expect(res.status).toBe(200);
        expect(res.headers["x-backend"]).toBe(fast.key);
      }
    }
    // Without hedging, a call P2C sends to the stalled member is answered by it (after 1 s): every
    // answer coming from the fast one is the proof, with no wall-clock bound a loaded machine could break.
    const evs = requests(rec.events);
    const hedged = evs.filter((e) => e.hedges === 1);
    expect(hedged.length).toBeGreaterThan(0);
    expect(hedged.every((e) => e.hedgeWon && e.address === fast.key && e.outcome === "ok")).toBe(true);
    expect(evs.filter((e) => e.hedges === 0).every((e) => !e.hedgeWon && e.address === fast.key)).toBe(true);
    // Each loser was reset with RST_STREAM CANCEL before the stalled backend answered it.
    await new Promise((r) => setTimeout(r, 100));
    expect((await slow.stats()).cancelled).toBe(hedged.length);
  });

  it("calls not marked idempotent are never hedged: they wait for the stalled member", async () => {
    const [slow, fast] = await stalledPair();
    const ch = open({
      target: `http://svc.test:${slow.port}`,
      discovery: staticDiscovery([slow, fast]),
      members: 2,
      balancer: "in-flight",
      hedge: { delay: 50, max: 1 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    const results = await Promise.all(Array.from({ length: 8 }, () => ch.request({ path: "/", method: "POST", body: "x" })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.some((r) => r.headers["x-backend"] === slow.key)).toBe(true);
    expect(requests(rec.events).every((e) => e.hedges === 0)).toBe(true);
    expect((await slow.stats()).cancelled).toBe(0);
  });

  it("a streamed response (requestStream, what the adapters use) is hedged too: the winner streams, the loser is cancelled", async () => {
    const [slow, fast] = await stalledPair();
    const ch = open({
      target: `http://svc.test:${slow.port}`,
      discovery: staticDiscovery([slow, fast]),
      members: 2,
      balancer: "in-flight",
      hedge: { delay: 50, max: 1 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    const readAll = async (): Promise<string> => {
      const res = await ch.requestStream({ path: "/", idempotent: true });
      const chunks: Buffer[] = [];
      for await (const c of res.body) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString();
    };
    // In pairs, so that one call of the first pair is certain to reach the stalled
    // member (in-flight balancer: the second pick avoids the member the first one
    // holds); later pairs may avoid it, as the overdue-aware cost steers away from it.
    for (let i = 0; i < 4; i++) {
      expect(await Promise.all([readAll(), readAll()])).toEqual([`ok ${fast.key}`, `ok ${fast.key}`]);
    }
    const hedged = requests(rec.events).filter((e) => e.hedges === 1);
    expect(hedged.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 100));
    expect((await slow.stats()).cancelled).toBe(hedged.length);
    // Nothing stays leased: every member is idle again.
    expect(ch.stats().members.every((m) => m.inFlight === 0)).toBe(true);
  });

  it("through the undici adapter (dialtone/undici): an undici request marked idempotent is hedged", async () => {
    const [slow, fast] = await stalledPair();
    const ch = open({
      target: `http://svc.test:${slow.port}`,
      discovery: staticDiscovery([slow, fast]),
      members: 2,
      balancer: "in-flight",
      hedge: { delay: 50, max: 1 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    // undici's request() types its dispatcher as its own Dispatcher class; ours is what it calls.
    const dispatcher = createDispatcher(ch) as unknown as Dispatcher;
    const call = async (): Promise<string> => await (await undiciRequest(`http://svc.test:${slow.port}/`, { dispatcher, idempotent: true })).body.text();
    // In pairs: the first pair reaches the stalled member whatever P2C draws (see above).
    for (let i = 0; i < 5; i++) {
      // Every answer from the fast backend: the calls that reached the stalled one were hedged.
      expect(await Promise.all([call(), call()])).toEqual([`ok ${fast.key}`, `ok ${fast.key}`]);
    }
    expect(requests(rec.events).some((e) => e.hedges === 1 && e.hedgeWon)).toBe(true);
  });

  it("hedges are paid from the retry budget: with a tiny one, one hedge goes out, then none, each refusal an event", async () => {
    const [slow, fast] = await stalledPair();
    const ch = open({
      target: `http://svc.test:${slow.port}`,
      discovery: staticDiscovery([slow, fast]),
      members: 2,
      // These tests are about hedging, not balancing: in-flight sends the slow member its share.
      balancer: "in-flight",
      hedge: { delay: 30, max: 1 },
      retryBudget: { ratio: 0, minPerSecond: 0.1, window: 10_000 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    // Concurrent calls, so some land on the stalled member whatever P2C's draws.
    await Promise.all(Array.from({ length: 12 }, () => ch.request({ path: "/", idempotent: true })));
    const evs = requests(rec.events);
    expect(evs.filter((e) => e.hedges > 0)).toHaveLength(1);
    const exhausted = rec.events.filter((e) => e.type === "retry-budget-exhausted");
    expect(exhausted.length).toBeGreaterThan(0);
    expect(exhausted.every((e) => e.type === "retry-budget-exhausted" && e.kind === "hedge")).toBe(true);
    // Every call the stalled member answered was refused its hedge (each refusal is one event; on a
    // loaded machine a call to the fast member may be overdue too and be refused as well).
    expect(evs.filter((e) => e.address === slow.key).length).toBeGreaterThan(0);
    expect(evs.filter((e) => e.address === slow.key).length).toBeLessThanOrEqual(exhausted.length);
  });
});

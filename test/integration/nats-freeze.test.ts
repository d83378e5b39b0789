import { afterEach, describe, expect, it } from "vitest";
import { createNatsChannel, type ChannelEvent, type NatsChannel } from "../../src/index.js";
import { eventually, recordEvents } from "../helpers/channel.js";
import { startNatsCluster, type NatsCluster } from "../helpers/nats-cluster.js";
import { startResponders } from "../helpers/nats-responders.js";

let cluster: NatsCluster | undefined;
const cleanups: Array<() => Promise<void>> = [];
const channels: NatsChannel[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  for (const c of cleanups.splice(0)) await c().catch(() => {});
  await cluster?.stop();
  cluster = undefined;
});

type Timed<E> = E & { at: number };
type RequestEvent = Timed<Extract<ChannelEvent, { type: "request" }>>;

interface Call {
  idempotent: boolean;
  start: number;
  end: number;
  ok: boolean;
  code: string | undefined;
  address: string | undefined;
}

const RATE_INTERVAL_MS = 5; // 200 requests/s, as the soak and bench/nats
const TIMEOUT_MS = 2000;

/**
 * Issue 24: a frozen NATS server costs what a frozen HTTP/2 backend does.
 * A real 3-node cluster; the only responders live on node 0, so a request is
 * lost only when it was published to the frozen server itself (nats-server
 * routes a client's queue messages to any server's subscribers: responders
 * on the frozen server would lose requests whatever member sent them).
 * Node 2 is SIGSTOPped under a steady 200 requests/s, every other one marked
 * idempotent (the channel's default hedge).
 *
 * Where a request was placed is read from the channel's own request events
 * (address, and start = end − duration) of requests not marked idempotent
 * (one attempt: its address is where it went), so the assertions are about
 * the order of the channel's own events, not about wall-clock headroom.
 */
describe("NATS: one server SIGSTOPped under load", () => {
  it("its member is suspected and takes no request after that; idempotent requests all succeed; what fails was placed on it before", async () => {
    cluster = await startNatsCluster();
    const [home, , frozen] = cluster.nodes as [NonNullable<NatsCluster["nodes"][0]>, unknown, NonNullable<NatsCluster["nodes"][0]>];
    const responders = await startResponders([home, home], "echo");
    cleanups.push(() => responders.stop());
    cleanups.push(async () => frozen.thaw());
    // The in-flight balancer: an idle frozen member ties with the others and is certain to be picked
    // after the freeze (peak-EWMA may rightly keep away from it from the start, and then there is
    // nothing to suspect). Overdue cost and suspicion apply to both balancers alike.
    const ch = createNatsChannel({
      target: `nats://${cluster.nodes.map((n) => n.key).join(",")}`,
      members: 3,
      balancer: "in-flight",
      ignoreDiscoveredServers: true,
      requestTimeout: TIMEOUT_MS,
      // Above the default 250 ms so that an event-loop stall of a loaded 2-core CI machine does not
      // make the healthy members look silent too (then every member is avoided alike and the claim
      // below has nothing to hold on to); the rule is the same whatever the value.
      health: { suspectAfter: 600 },
    });
    channels.push(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    expect(new Set(ch.stats().members.map((m) => m.address))).toEqual(new Set(cluster.nodes.map((n) => n.key)));
    const rec = recordEvents(ch);

    // The channel's own view of the frozen member, sampled: requests in flight on it (placed, unanswered).
    let frozenBusy = 0;
    const sampler = setInterval(() => {
      if (Number.isNaN(frozenAt)) return;
      if (ch.stats().members.some((m) => m.address === frozen.key && m.inFlight > 0)) frozenBusy++;
    }, 20);
    const calls: Call[] = [];
    const pending: Array<Promise<void>> = [];
    let frozenAt = Number.NaN;
    const t0 = performance.now();
    // 1 s of load before the freeze (the p95 hedge delay needs 32 samples), 3 s after it.
    for (let i = 0; i < 800; i++) {
      const due = t0 + i * RATE_INTERVAL_MS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (i === 200) {
        await frozen.freeze();
        frozenAt = performance.now();
      }
      const idempotent = i % 2 === 1;
      const start = performance.now();
      pending.push(
        ch.request("echo", `m${i}`, { idempotent, timeout: TIMEOUT_MS }).then(
          () => void calls.push({ idempotent, start, end: performance.now(), ok: true, code: undefined, address: undefined }),
          (err: { code?: string; address?: string }) =>
            void calls.push({ idempotent, start, end: performance.now(), ok: false, code: err.code, address: err.address }),
        ),
      );
    }
    await Promise.all(pending);
    clearInterval(sampler);
    frozen.thaw();
    await eventually(() => calls.length === 800, 5_000, "every call settled");
    rec.stop();

    // Requests went to it after the freeze (a tie it is certain to win while idle) and stayed
    // unanswered, so it was busy and silent: what suspicion is about.
    expect(frozenBusy).toBeGreaterThan(0);
    const suspected = rec.events.find((e): e is Timed<Extract<ChannelEvent, { type: "suspect" }>> => e.type === "suspect" && e.member.address === frozen.key);
    expect(suspected, "the frozen server's member is suspected").toBeDefined();
    const suspectAt = suspected!.at;
    // Passive suspicion comes before PINGs could say the same (no wall-clock bound: an order of events).
    const unhealthy = rec.events.find((e) => e.type === "state" && e.to === "unhealthy" && e.member.address === frozen.key);
    if (unhealthy) expect(suspectAt).toBeLessThan(unhealthy.at);

    // Where requests not marked idempotent went (one attempt each: its address is where it was placed).
    const single = rec.events.filter((e): e is RequestEvent => e.type === "request" && e.hedges === 0 && e.retries === 0);
    const placedOnFrozen = single.filter((e) => e.address === frozen.key && e.at - e.durationMs >= frozenAt);
    // Other members suspected too (only when the event loop stalled past suspectAfter) would make every
    // member equally avoided; none was, so the frozen one was avoided by every pick after its suspicion.
    const othersSuspected = rec.events.filter((e) => e.type === "suspect" && e.member.address !== frozen.key && e.at >= frozenAt);
    expect(othersSuspected).toEqual([]);
    const afterSuspicion = placedOnFrozen.filter((e) => e.at - e.durationMs > suspectAt);
    expect(afterSuspicion).toEqual([]);

    // Every idempotent request succeeded: the default hedge asked the stuck ones again elsewhere.
    expect(calls.filter((c) => c.idempotent && !c.ok)).toEqual([]);
    // What failed was sent on the frozen member before it was suspected (none waited on a member already suspected),
    // and nothing else failed: no request sent through a healthy member was lost.
    const failed = calls.filter((c) => !c.ok);
    for (const c of failed) {
      expect(c.address).toBe(frozen.key);
      expect(c.start).toBeLessThanOrEqual(suspectAt);
      expect(["ERR_DIALTONE_REQUEST_TIMEOUT", "ERR_DIALTONE_MEMBER_LOST"]).toContain(c.code);
    }
    // The idempotent calls that met the frozen member were hedged, and the hedge won.
    const hedged = rec.events.filter((e): e is RequestEvent => e.type === "request" && e.hedges > 0);
    expect(hedged.every((e) => e.outcome === "ok")).toBe(true);
  });

  it("a hedge that lost keeps its request in flight until its deadline: NATS cannot take it back, and its member must keep looking silent", async () => {
    cluster = await startNatsCluster();
    const [home, , frozen] = cluster.nodes as [NonNullable<NatsCluster["nodes"][0]>, unknown, NonNullable<NatsCluster["nodes"][0]>];
    const responders = await startResponders([home], "echo");
    cleanups.push(() => responders.stop());
    cleanups.push(async () => frozen.thaw());
    const ch = createNatsChannel({
      target: `nats://${cluster.nodes.map((n) => n.key).join(",")}`,
      members: 3,
      balancer: "in-flight",
      ignoreDiscoveredServers: true,
      hedge: { delay: 50, max: 1 },
      // No periodic PING during the test: a PING left unanswered by the frozen server would make its
      // idle member avoided before a call reached it (the pool's PING rule), and what is tested here is
      // the lost hedge's request. Idle members tie, so each call reaches the frozen one with
      // probability 1/3: 40 calls all miss it once in 10^7 runs.
      health: { interval: 60_000 },
    });
    channels.push(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    await frozen.freeze();
    const onFrozen = (): number => ch.stats().members.find((m) => m.address === frozen.key)?.inFlight ?? 0;
    // One call at a time, each with a 10 s deadline, until one is hedged away from the frozen member:
    // right when it resolves, the attempt the hedge beat is still on the frozen member (no other call runs).
    let beaten = false;
    for (let i = 0; i < 40 && !beaten; i++) {
      await ch.request("echo", `m${i}`, { idempotent: true, timeout: 10_000 });
      const last = rec.events.filter((e): e is RequestEvent => e.type === "request").at(-1);
      beaten = last?.hedges === 1 && last.hedgeWon && onFrozen() >= 1;
    }
    expect(beaten, "a call was hedged away from the frozen member").toBe(true);
    // A frozen server never answers, so only a release could take it off: 200 ms later (its deadline
    // is 10 s away) it is still there, and the member still counts it.
    await new Promise((r) => setTimeout(r, 200));
    expect(onFrozen()).toBeGreaterThanOrEqual(1);
  });
});

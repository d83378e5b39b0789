import { afterEach, describe, expect, it } from "vitest";
import { createNatsChannel, type ChannelEvent, type NatsChannel } from "../../src/index.js";
import { recordEvents } from "../helpers/channel.js";
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

type RequestEvent = Extract<ChannelEvent, { type: "request" }> & { at: number };

describe("NATS hedged requests against a real 3-node cluster", () => {
  /**
   * Responders on two servers; the third server is SIGSTOPped (its member
   * stays ready until PINGs say otherwise, 2.5 s). A request through that
   * member gets no reply; hedged, it is asked again through another member
   * after 50 ms, and the first reply wins. The stuck attempt's late reply
   * is dropped, but it stays in flight on the frozen member until its
   * deadline (NATS cannot take a published request back), so that member
   * keeps looking busy and silent. Unhedged, each request sent through it
   * would wait out its timeout.
   */
  it("an idempotent request with no reply after `delay` is asked again on another member; the first reply wins", async () => {
    cluster = await startNatsCluster();
    const [frozen, ...live] = cluster.nodes;
    const responders = await startResponders(live, "echo");
    cleanups.push(() => responders.stop());
    const ch = createNatsChannel({
      target: `nats://${cluster.nodes.map((n) => n.key).join(",")}`,
      members: 3,
      balancer: "in-flight",
      hedge: { delay: 50, max: 1 },
      // No periodic PING during the test: one the frozen server leaves unanswered would make its idle
      // member avoided before any request reached it, and there would be nothing to hedge.
      health: { interval: 60_000 },
    });
    channels.push(ch);
    cleanups.push(async () => frozen!.thaw());
    await ch.ready(AbortSignal.timeout(10_000));
    await frozen!.freeze();
    const rec = recordEvents(ch);
    for (let i = 0; i < 40; i++) {
      const msg = await ch.request("echo", `m${i}`, { idempotent: true, timeout: 1500 });
      expect(msg.string()).toMatch(new RegExp(`\\|m${i}$`));
    }
    // Idle members tie, so each request reaches the frozen one first with probability 1/3: all 40
    // miss it once in 10^7 runs.
    // The frozen server never answers: a request sent there first succeeds only because it was asked
    // again elsewhere (unhedged it would reject at its timeout). No wall-clock bound: what proves it
    // is who answered, so a loaded CI machine cannot fail it.
    const evs = rec.events.filter((e): e is RequestEvent => e.type === "request");
    expect(evs.every((e) => e.outcome === "ok" && e.address !== frozen!.key)).toBe(true);
    const hedged = evs.filter((e) => e.hedges === 1);
    expect(hedged.length).toBeGreaterThan(0);
    expect(hedged.every((e) => e.hedgeWon)).toBe(true);
  });

  // One request at a time: the in-flight balancer sends some to the frozen member, which is what
  // these tests need to see hedged (peak-EWMA could rightly keep away from it from the start).
  it("attemptTimeout: an idempotent request with no reply within it is asked again on another member", async () => {
    cluster = await startNatsCluster();
    const [frozen, ...live] = cluster.nodes;
    const responders = await startResponders(live, "echo");
    cleanups.push(() => responders.stop());
    const ch = createNatsChannel({
      target: `nats://${cluster.nodes.map((n) => n.key).join(",")}`,
      members: 3,
      balancer: "in-flight",
      attemptTimeout: 100,
      health: { interval: 60_000 },
    });
    channels.push(ch);
    cleanups.push(async () => frozen!.thaw());
    await ch.ready(AbortSignal.timeout(10_000));
    await frozen!.freeze();
    const rec = recordEvents(ch);
    for (let i = 0; i < 40; i++) expect((await ch.request("echo", `m${i}`, { idempotent: true, timeout: 1500 })).string()).toMatch(new RegExp(`\\|m${i}$`));
    const evs = rec.events.filter((e): e is RequestEvent => e.type === "request");
    // Every request answered, none by the frozen server (which never answers): the ones that went
    // there first were asked again elsewhere. Who answered proves it, not how long it took.
    expect(evs.filter((e) => !(e.outcome === "ok" && e.address !== frozen!.key))).toEqual([]);
    expect(evs.some((e) => e.hedges > 0 && e.hedgeWon)).toBe(true);
  });

  it("a request not marked idempotent is not hedged: it waits for its reply", async () => {
    cluster = await startNatsCluster();
    const [slowNode, ...fastNodes] = cluster.nodes;
    const slow = await startResponders([slowNode!], "echo", { delayMs: 600 });
    const fast = await startResponders(fastNodes, "echo");
    cleanups.push(
      () => slow.stop(),
      () => fast.stop(),
    );
    const ch = createNatsChannel({
      target: `nats://${cluster.nodes.map((n) => n.key).join(",")}`,
      members: 3,
      balancer: "in-flight",
      hedge: { delay: 50, max: 1 },
    });
    channels.push(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    const replies = await Promise.all(Array.from({ length: 24 }, (_, i) => ch.request("echo", `m${i}`, { timeout: 5000 })));
    expect(replies.some((m) => m.string().startsWith(slowNode!.key))).toBe(true);
    expect(rec.events.filter((e): e is RequestEvent => e.type === "request").every((e) => e.hedges === 0)).toBe(true);
  });
});

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
   * The responder on the first server answers 2 s late (a stand-in for the
   * stale queue interest of a frozen server); NATS prefers the queue
   * subscriber on the requester's own server, so requests through the member
   * on that server wait for it. Hedged, they are asked again through another
   * member after 50 ms; the first reply wins and the late one is dropped.
   */
  it("an idempotent request with no reply after `delay` is asked again on another member; the first reply wins", async () => {
    cluster = await startNatsCluster();
    const [slowNode, ...fastNodes] = cluster.nodes;
    const slow = await startResponders([slowNode!], "echo", { delayMs: 2000 });
    const fast = await startResponders(fastNodes, "echo");
    cleanups.push(() => slow.stop(), () => fast.stop());
    const ch = createNatsChannel({ target: `nats://${cluster.nodes.map((n) => n.key).join(",")}`, members: 3, hedge: { delay: 50, max: 1 } });
    channels.push(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    const took: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      const msg = await ch.request("echo", `m${i}`, { idempotent: true, timeout: 5000 });
      took.push(performance.now() - t0);
      expect(msg.string()).toMatch(new RegExp(`\\|m${i}$`));
      expect(msg.string().startsWith(slowNode!.key)).toBe(false);
    }
    expect(Math.max(...took)).toBeLessThan(1000);
    const evs = rec.events.filter((e): e is RequestEvent => e.type === "request");
    expect(evs.some((e) => e.hedges === 1 && e.hedgeWon)).toBe(true);
    expect(evs.every((e) => e.outcome === "ok")).toBe(true);
  });

  it("a request not marked idempotent is not hedged: it waits for its reply", async () => {
    cluster = await startNatsCluster();
    const [slowNode, ...fastNodes] = cluster.nodes;
    const slow = await startResponders([slowNode!], "echo", { delayMs: 600 });
    const fast = await startResponders(fastNodes, "echo");
    cleanups.push(() => slow.stop(), () => fast.stop());
    const ch = createNatsChannel({ target: `nats://${cluster.nodes.map((n) => n.key).join(",")}`, members: 3, hedge: { delay: 50, max: 1 } });
    channels.push(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => ch.request("echo", `m${i}`, { timeout: 5000 })));
    expect(replies.some((m) => m.string().startsWith(slowNode!.key))).toBe(true);
    expect(rec.events.filter((e): e is RequestEvent => e.type === "request").every((e) => e.hedges === 0)).toBe(true);
  });
});

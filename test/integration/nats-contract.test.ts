import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { createNatsChannel, type ChannelEvent, type NatsChannel, type NatsChannelOptions } from "../../src/index.js";
import { eventually, recordEvents } from "../helpers/channel.js";
import { startNatsCluster, type NatsCluster } from "../helpers/nats-cluster.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";

let cluster: NatsCluster | undefined;
const servers: NatsServer[] = [];
const channels: NatsChannel[] = [];
const conns: NatsConnection[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await Promise.all(conns.splice(0).map((c) => c.close().catch(() => {})));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  await cluster?.stop();
  cluster = undefined;
});

function open(opts: NatsChannelOptions): NatsChannel {
  const ch = createNatsChannel(opts);
  channels.push(ch);
  return ch;
}

async function server(host = "127.0.0.7"): Promise<NatsServer> {
  const s = await startNatsServer({ host, config: () => "max_payload: 1048576\n" });
  servers.push(s);
  return s;
}

/** A plain official-client connection: the other side of a test, outside the channel. */
async function plain(key: string): Promise<NatsConnection> {
  const nc = await connect({ servers: key, reconnect: false });
  conns.push(nc);
  return nc;
}

describe("NATS server-list forms against a real nats-server", () => {
  it("a host name and an IP, with spaces, as a string and as an array of URLs, all connect", async () => {
    const s = await server("127.0.0.1");
    for (const target of [`nats://localhost:${s.port}, nats://127.0.0.1:${s.port}`, [`nats://localhost:${s.port}`, `nats://127.0.0.1:${s.port}`]]) {
      const ch = open({ target, members: 1, name: JSON.stringify(target) });
      await ch.ready(AbortSignal.timeout(10_000));
      expect(ch.target).toBe(`nats://localhost:${s.port},127.0.0.1:${s.port}`);
      expect(ch.stats().addresses.map((a) => a.address)).toContain(`127.0.0.1:${s.port}`);
    }
  });
});

describe("NATS subscriptions bounded in bytes", () => {
  it("a reader that never reads keeps at most maxPendingBytes alive; drops come as one event per burst", async () => {
    const s = await server();
    const limit = 1024 * 1024;
    const ch = open({ target: `nats://${s.key}`, members: 1, maxPendingBytes: limit });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const sub = await ch.subscribe("bulk");
    const pub = await plain(s.key);
    const payload = new Uint8Array(16 * 1024);
    const n = 400;
    for (let i = 0; i < n; i++) pub.publish("bulk", payload);
    await pub.flush();
    await eventually(() => sub.received === n, 5000, "every message to reach the subscription");
    const dropEvents = (): Array<Extract<ChannelEvent, { type: "messages-dropped" }>> =>
      rec.events.filter((e): e is Extract<ChannelEvent, { type: "messages-dropped" }> & { at: number } => e.type === "messages-dropped");
    // Messages may arrive in more than one burst (a loaded machine): each burst's report comes 100 ms after its
    // first drop, so wait until every drop has been reported, not just the first burst's.
    await eventually(() => dropEvents().reduce((t, e) => t + e.count, 0) === n - sub.pending.messages, 2000, "every drop to be reported");
    const drops = dropEvents();
    const pending = sub.pending;
    // Bounded: what is kept alive (whole socket chunks, counted once) stays under the limit (one message may overshoot).
    expect(pending.bytes).toBeLessThanOrEqual(limit + 64 * 1024);
    expect(pending.messages).toBeLessThan(n);
    expect(drops.reduce((t, e) => t + e.count, 0)).toBe(n - pending.messages);
    // One event per burst, not one per message.
    expect(drops.length).toBeLessThanOrEqual(5);
  });
});

describe("NATS close flushes", () => {
  it("10,000 messages published and then close(): a subscriber on another connection receives all of them", async () => {
    const s = await server();
    const sink = await plain(s.key);
    let got = 0;
    const sub = sink.subscribe("flood", { callback: () => void got++ });
    await sink.flush();
    const ch = open({ target: `nats://${s.key}`, members: 2 });
    await ch.ready(AbortSignal.timeout(10_000));
    const n = 10_000;
    const body = "x".repeat(64);
    for (let i = 0; i < n; i++) await ch.publish("flood", body);
    await ch.close();
    await eventually(() => got === n, 5000, `all ${n} messages at the subscriber (got ${got})`);
    sub.unsubscribe();
  });
});

describe("NATS subscription contract", () => {
  it("drain() delivers every message the server already sent, then the iterator ends", async () => {
    const s = await server();
    const ch = open({ target: `nats://${s.key}`, members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const sub = await ch.subscribe("work");
    const pub = await plain(s.key);
    const n = 2000;
    for (let i = 0; i < n; i++) pub.publish("work", String(i));
    await pub.flush();
    await sub.drain();
    const seen: number[] = [];
    for await (const m of sub) seen.push(Number(m.string()));
    expect(seen.length).toBe(n);
    expect(seen[n - 1]).toBe(n - 1);
    expect(sub.closed).toBe(true);
  });

  it("across a move (its server SIGKILLed): max re-subscribes for max − delivered, and the queue group is kept", async () => {
    cluster = await startNatsCluster();
    const [n0, n1, n2] = cluster.nodes as [NatsCluster["nodes"][0], NatsCluster["nodes"][0], NatsCluster["nodes"][0]];
    const ch = open({ target: `nats://${n0.key},${n1.key}`, members: 1, ignoreDiscoveredServers: true });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const limited = await ch.subscribe("tasks.limited", { max: 30 });
    const grouped = await ch.subscribe("tasks.grouped", { queue: "workers" });
    // Subscribed last: once the publisher's server delivers it, the interest in the two above has
    // crossed the route too (a server sends a connection's subscriptions over a route in order).
    const probe = await ch.subscribe("tasks.probe");
    // Another member of the group, on the server that stays up.
    const pub = await plain(n2.key);
    let other = 0;
    pub.subscribe("tasks.grouped", { queue: "workers", callback: () => void other++ });
    await pub.flush();
    /** Publishes probes until one arrives: the channel's interest has reached the publisher's server. */
    const interestArrived = async (what: string): Promise<void> => {
      const before = probe.received;
      await eventually(
        () => {
          pub.publish("tasks.probe", "?");
          return probe.received > before;
        },
        10_000,
        what,
      );
    };
    await interestArrived("the subscriptions' interest to reach the publisher's server");

    for (let i = 0; i < 10; i++) pub.publish("tasks.limited", String(i));
    await pub.flush();
    await eventually(() => limited.received === 10, 5000, "the first 10 messages");

    const home = cluster.nodes.find((x) => x.key === limited.address);
    expect(home).toBeDefined();
    await (home as NatsCluster["nodes"][0]).kill();
    await eventually(() => rec.events.filter((e) => e.type === "subscription-moved").length >= 2, 8000, "both subscriptions to move");
    expect(limited.address).not.toBe(home?.key);
    expect(grouped.address).toBe(limited.address);

    // The route between servers takes a moment to carry the new interest: the probe, re-subscribed
    // after the others on the new server, says when it has.
    await interestArrived("the moved subscriptions' interest to reach the publisher's server");
    for (let i = 10; i < 60; i++) pub.publish("tasks.limited", String(i));
    const grouping = 200;
    for (let i = 0; i < grouping; i++) pub.publish("tasks.grouped", String(i));
    await pub.flush();
    const seen: string[] = [];
    for await (const m of limited) seen.push(m.string());
    // 30 in all: 10 before the move, then 20 more, and the iterator ended by itself.
    expect(seen.length).toBe(30);
    expect(limited.received).toBe(30);

    await eventually(() => grouped.received + other === grouping, 5000, "every grouped message delivered once");
    await new Promise((r) => setTimeout(r, 200));
    // In the group: each message went to one member only (no duplicates), and both members got some.
    expect(grouped.received + other).toBe(grouping);
    expect(grouped.received).toBeGreaterThan(0);
    expect(other).toBeGreaterThan(0);
  });
});

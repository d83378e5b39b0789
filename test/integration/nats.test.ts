import { connect } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import {
  AbortedError,
  BadRequestError,
  createNatsChannel,
  DialtoneError,
  MemberLostError,
  NoMemberError,
  NoRespondersError,
  RequestTimeoutError,
  type NatsChannel,
  type NatsChannelOptions,
} from "../../src/index.js";
import { eventually, recordEvents, steadyLoad } from "../helpers/channel.js";
import { startNatsCluster, type NatsCluster } from "../helpers/nats-cluster.js";
import { startResponders } from "../helpers/nats-responders.js";
import { sample } from "../helpers/prom.js";

let cluster: NatsCluster | undefined;
const cleanups: Array<() => Promise<void>> = [];
const channels: NatsChannel[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  for (const c of cleanups.splice(0)) await c().catch(() => {});
  await cluster?.stop();
  cluster = undefined;
});

function open(opts: NatsChannelOptions): NatsChannel {
  const ch = createNatsChannel(opts);
  channels.push(ch);
  return ch;
}

function targetOf(c: NatsCluster): string {
  return `nats://${c.nodes.map((n) => n.key).join(",")}`;
}

describe("NATS channel against a real 3-node nats-server cluster", () => {
  it("warm-up: N members on N distinct servers before ready()", async () => {
    cluster = await startNatsCluster();
    const ch = open({ target: targetOf(cluster), members: 3 });
    await ch.ready(AbortSignal.timeout(10_000));
    const s = ch.stats();
    expect(s.members.every((m) => m.state === "ready")).toBe(true);
    expect(new Set(s.members.map((m) => m.address))).toEqual(new Set(cluster.nodes.map((n) => n.key)));
  });

  it("learns the servers the cluster advertises (INFO connect_urls) unless told not to", async () => {
    cluster = await startNatsCluster();
    const one = cluster.nodes[0]!.key;
    const learning = open({ target: `nats://${one}`, members: 3, name: "learning" });
    await learning.ready(AbortSignal.timeout(10_000));
    expect(new Set(learning.stats().members.map((m) => m.address)).size).toBe(3);
    const pinned = open({ target: `nats://${one}`, members: 2, ignoreDiscoveredServers: true, name: "pinned" });
    await pinned.ready(AbortSignal.timeout(10_000));
    expect(pinned.stats().addresses.map((a) => a.address)).toEqual([one]);
  });

  it("request/reply under steady load while one server is SIGKILLed and another SIGSTOPped: no request started after the health deadline fails", async () => {
    cluster = await startNatsCluster();
    // The responder lives on the server that stays up: nats-server itself routes some queue
    // requests to a frozen server's responders, whatever the client does.
    const responders = await startResponders([cluster.nodes[2]!]);
    cleanups.push(() => responders.stop());
    const ch = open({ target: targetOf(cluster), members: 3, ignoreDiscoveredServers: true, requestTimeout: 1500 });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    let disconnectedEver = false;
    const off = ch.on((e) => {
      if (e.type === "status" && e.status === "disconnected") disconnectedEver = true;
    });
    let stop = false;
    const load = steadyLoad(() => ch.request("echo", "x", { timeout: 1500 }), { concurrency: 6, maxMs: 12_000, stop: () => stop, pauseMs: 3 });
    await new Promise((r) => setTimeout(r, 300));
    const killed = cluster.nodes[0]!;
    const frozen = cluster.nodes[1]!;
    await killed.kill();
    await frozen.freeze();
    const faultAt = performance.now();
    // The frozen server is found by PING timeout (TCP stays open).
    await eventually(
      () => rec.events.some((e) => e.type === "evicted" && e.member.address === frozen.key && e.reason === "unhealthy"),
      4500,
      "the frozen member to be evicted",
    );
    const evicted = rec.events.find((e) => e.type === "evicted" && e.member.address === frozen.key)!;
    expect(evicted.type === "evicted" && evicted.detail).toMatch(/PONG|timed out|timeout/i);
    const deadline = faultAt + 2500 + 300;
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    const results = await load;
    off();
    frozen.thaw();
    expect(results.filter((r) => !r.ok && r.at > deadline).map((r) => String(r.error))).toEqual([]);
    expect(results.filter((r) => r.ok && r.at > deadline).length).toBeGreaterThan(50);
    expect(disconnectedEver).toBe(false);
  });

  it("lame duck mode: zero failed requests, and the subscription keeps delivering", async () => {
    cluster = await startNatsCluster();
    const responders = await startResponders(cluster.nodes);
    cleanups.push(() => responders.stop());
    const ch = open({ target: targetOf(cluster), members: 3, ignoreDiscoveredServers: true });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const sub = await ch.subscribe("ticks");
    const ldmNode = cluster.nodes.find((n) => n.key === sub.address)!;
    const publisherNode = cluster.nodes.find((n) => n !== ldmNode)!;
    const pub = await connect({ servers: publisherNode.key, reconnect: false });
    cleanups.push(() => pub.close());
    const got: number[] = [];
    const reader = (async () => {
      for await (const m of sub) got.push(Number(m.string()));
    })();
    let seq = 0;
    const ticker = setInterval(() => pub.publish("ticks", String(seq++)), 10);
    cleanups.push(async () => clearInterval(ticker));
    let stop = false;
    const load = steadyLoad(() => ch.request("echo", "x", { timeout: 3000 }), { concurrency: 4, maxMs: 10_000, stop: () => stop, pauseMs: 5 });
    await new Promise((r) => setTimeout(r, 300));
    ldmNode.lameDuck();
    const ldmAt = seq;
    await eventually(() => rec.events.some((e) => e.type === "subscription-moved"), 5000, "the subscription to move");
    await eventually(() => got.some((n) => n > ldmAt + 50), 5000, "ticks after lame duck");
    stop = true;
    const results = await load;
    clearInterval(ticker);
    sub.unsubscribe();
    await reader;
    expect(results.filter((r) => !r.ok).map((r) => String(r.error))).toEqual([]);
    expect(rec.events.some((e) => e.type === "draining" && e.reason === "lame-duck" && e.member.address === ldmNode.key)).toBe(true);
    const moved = rec.events.find((e) => e.type === "subscription-moved");
    expect(moved?.type === "subscription-moved" && moved.from).toBe(ldmNode.key);
  });

  it("a subscription's messages keep arriving after its member's server is killed", async () => {
    cluster = await startNatsCluster();
    const ch = open({ target: targetOf(cluster), members: 3, ignoreDiscoveredServers: true });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const sub = await ch.subscribe("ticks");
    const victim = cluster.nodes.find((n) => n.key === sub.address)!;
    const pub = await connect({ servers: cluster.nodes.find((n) => n !== victim)!.key, reconnect: false });
    cleanups.push(() => pub.close());
    const got: number[] = [];
    const reader = (async () => {
      for await (const m of sub) got.push(Number(m.string()));
    })();
    let seq = 0;
    const ticker = setInterval(() => pub.publish("ticks", String(seq++)), 10);
    cleanups.push(async () => clearInterval(ticker));
    await eventually(() => got.length > 10, 3000, "ticks before the kill");
    await victim.kill();
    const killedAt = seq;
    await eventually(() => got.some((n) => n > killedAt + 20), 5000, "ticks after the kill");
    clearInterval(ticker);
    sub.unsubscribe();
    await reader;
    const moved = rec.events.find((e) => e.type === "subscription-moved");
    expect(moved?.type === "subscription-moved" && moved.from).toBe(victim.key);
    expect(sub.address).not.toBe(victim.key);
    // The gap is bounded (here: detection of a closed socket plus one SUB round trip).
    expect(moved?.type === "subscription-moved" && moved.gapMs).toBeLessThan(2500);
  });

  it("a request whose member dies before the reply fails with MemberLostError; marked idempotent, it is retried elsewhere", async () => {
    cluster = await startNatsCluster();
    const [x, y, z] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    const responders = await startResponders([y], "slow", { delayMs: 400 });
    cleanups.push(() => responders.stop());
    const lonely = open({ target: `nats://${x.key}`, members: 1, ignoreDiscoveredServers: true, name: "lonely" });
    await lonely.ready(AbortSignal.timeout(10_000));
    const pending = lonely.request("slow", "1", { timeout: 3000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await new Promise((r) => setTimeout(r, 100));
    await x.kill();
    const err = await pending;
    expect(err).toBeInstanceOf(MemberLostError);
    expect((err as MemberLostError).code).toBe("ERR_DIALTONE_MEMBER_LOST");

    const pair = open({ target: `nats://${z.key},${y.key}`, members: 2, ignoreDiscoveredServers: true, name: "pair" });
    await pair.ready(AbortSignal.timeout(10_000));
    // Kill z while its requests are in flight; idempotent requests are re-sent on y.
    const many = Array.from({ length: 6 }, (_, i) => pair.request("slow", String(i), { timeout: 4000, idempotent: true }));
    await new Promise((r) => setTimeout(r, 100));
    await z.kill();
    const settled = await Promise.allSettled(many);
    expect(settled.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
  });

  it("each request ends at its own deadline (a short one sent after a long one too); a late reply is dropped and the member keeps serving", async () => {
    cluster = await startNatsCluster();
    const [x] = cluster.nodes as [(typeof cluster.nodes)[0]];
    // Answers "late <ms>" after the number of ms the request carries.
    const nc = await connect({ servers: x.key, reconnect: false });
    cleanups.push(() => nc.close());
    nc.subscribe("delay", {
      callback: (_err, m) => {
        const ms = Number(m.string());
        setTimeout(() => {
          try {
            m.respond(`late ${ms}`);
          } catch {
            // closed at the end of the test
          }
        }, ms);
      },
    });
    await nc.flush();
    const ch = open({ target: `nats://${x.key}`, members: 1, ignoreDiscoveredServers: true });
    await ch.ready(AbortSignal.timeout(10_000));
    const t0 = performance.now();
    const timed = (p: Promise<unknown>): Promise<[unknown, number]> =>
      p.then(
        (v) => [v, performance.now() - t0],
        (e: unknown) => [e, performance.now() - t0],
      );
    const long = timed(ch.request("delay", "2500", { timeout: 1500 }));
    const short = timed(ch.request("delay", "2500", { timeout: 300 }));
    expect((await ch.request("delay", "0", { timeout: 3000 })).string()).toBe("late 0");
    const [shortErr, shortMs] = await short;
    expect(shortErr).toBeInstanceOf(RequestTimeoutError);
    expect(shortMs).toBeGreaterThanOrEqual(290);
    const [longErr, longMs] = await long;
    expect(longErr).toBeInstanceOf(RequestTimeoutError);
    expect(longMs).toBeGreaterThanOrEqual(1490);
    // Each request keeps its own deadline: the short one did not wait for the long one's.
    expect(shortMs).toBeLessThan(longMs);

    // Its reply comes after it timed out: dropped; the next request gets its own.
    expect(
      await ch.request("delay", "400", { timeout: 200 }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    ).toBeInstanceOf(RequestTimeoutError);
    await new Promise((r) => setTimeout(r, 300));
    expect((await ch.request("delay", "1", { timeout: 2000 })).string()).toBe("late 1");
    expect(ch.stats().ready).toBe(1);
  });

  it("no responders is its own typed error, at once", async () => {
    cluster = await startNatsCluster();
    const ch = open({ target: targetOf(cluster), members: 2 });
    await ch.ready(AbortSignal.timeout(10_000));
    const err = await ch.request("nobody.home", "?", { timeout: 3000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NoRespondersError);
    // Its own type, not RequestTimeoutError: the server's 503 ended it, not the timeout.
    expect((err as NoRespondersError).subject).toBe("nobody.home");
  });

  it("auth: user/password; wrong credentials are refused with a clear error, right ones work", async () => {
    cluster = await startNatsCluster({ user: "app", pass: "s3cret" });
    const responders = await startResponders(cluster.nodes, "echo", { user: "app", pass: "s3cret" });
    cleanups.push(() => responders.stop());
    const wrong = open({ target: targetOf(cluster), members: 1, auth: { user: "app", pass: "nope" }, acquireTimeout: 800, name: "wrong" });
    const err = await wrong.request("echo", "x").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NoMemberError);
    expect((err as Error).message).toMatch(/authorization|authentication/i);
    const right = open({ target: targetOf(cluster), members: 2, auth: { user: "app", pass: "s3cret" }, name: "right" });
    await right.ready(AbortSignal.timeout(10_000));
    const reply = await right.request("echo", "hello");
    expect(reply.string()).toMatch(/\|hello$/);
  });

  it("publish and a queue-group subscription through the channel", async () => {
    cluster = await startNatsCluster();
    const ch = open({ target: targetOf(cluster), members: 3 });
    await ch.ready(AbortSignal.timeout(10_000));
    const sub = await ch.subscribe("orders.*", { queue: "q" });
    const got = new Set<number>();
    const reader = (async () => {
      for await (const m of sub) {
        got.add(Number(m.string()));
        if (got.size === 20) break;
      }
    })();
    // The subscription's interest reaches the other servers over routes a moment later
    // (for any NATS client): publish in rounds until every message has arrived, bounded.
    for (let round = 0; round < 50 && got.size < 20; round++) {
      for (let i = 0; i < 20; i++) if (!got.has(i)) await ch.publish(`orders.${i}`, String(i));
      await ch.flush();
      await Promise.race([reader, new Promise((r) => setTimeout(r, 100))]);
    }
    expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    sub.unsubscribe();
  });

  it("reports to Prometheus like any channel: healthy members drop when a server dies, evictions by reason", async () => {
    cluster = await startNatsCluster();
    const ch = open({ target: targetOf(cluster), members: 3, ignoreDiscoveredServers: true, name: "bus" });
    const registry = new Registry();
    ch.metrics(registry);
    await ch.ready(AbortSignal.timeout(10_000));
    expect(sample(await registry.metrics(), "dialtone_members_healthy", { channel: "bus" })).toBe(3);
    await cluster.nodes[0]!.kill();
    await eventually(() => ch.stats().members.every((m) => m.address !== cluster!.nodes[0]!.key || m.state !== "ready"), 3000, "the member to go");
    await eventually(() => ch.stats().ready === 3, 3000, "its slot to be re-dialed");
    const text = await registry.metrics();
    expect(sample(text, "dialtone_evictions_total", { channel: "bus", reason: "peer_closed" })).toBe(1);
    expect(sample(text, "dialtone_members_healthy", { channel: "bus" })).toBe(3);
    expect(sample(text, "dialtone_connects_total", { channel: "bus", result: "ok" })).toBe(4);
  });

  it("bad payloads, headers and timeouts are BadRequestErrors and aborts AbortedErrors: nothing escapes the taxonomy", async () => {
    cluster = await startNatsCluster();
    // One member: the silent subscriber below and the request meet on one server, with no route propagation to wait for.
    const ch = open({ target: `nats://${cluster.nodes[0]!.key}`, members: 1, ignoreDiscoveredServers: true });
    await ch.ready(AbortSignal.timeout(10_000));
    const bad: Array<() => Promise<unknown>> = [
      () => ch.request("svc.echo", 42 as unknown as string),
      () => ch.request("svc.echo", { a: 1 } as unknown as string),
      () => ch.publish("svc.echo", [1, 2] as unknown as string),
      () => ch.request("svc.echo", "x", { headers: { "bad:name": "v" } }),
      () => ch.request("svc.echo", "x", { headers: { "x-a": "one\r\ntwo" } }),
      () => ch.publish("svc.echo", "x", { headers: { "x-a": 5 as unknown as string } }),
      () => ch.request("svc.echo", "x", { timeout: Number.NaN }),
      () => ch.request("svc.echo", "x", { timeout: "5s" as unknown as number }),
    ];
    for (const call of bad) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BadRequestError);
    }
    const reason = new Error("caller left");
    const aborted = await ch.request("svc.none", "x", { signal: AbortSignal.abort(reason) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(aborted).toBeInstanceOf(AbortedError);
    expect((aborted as AbortedError).cause).toBe(reason);
    const pubAborted = await ch.publish("svc.none", "x", { signal: AbortSignal.abort() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(pubAborted).toBeInstanceOf(AbortedError);
    // A request aborted while it waits for its reply.
    const ac = new AbortController();
    const sub = await ch.subscribe("svc.slow");
    const p = ch.request("svc.slow", "x", { signal: ac.signal, timeout: 5000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    setTimeout(() => ac.abort(reason), 100);
    const late = await p;
    expect(late).toBeInstanceOf(AbortedError);
    expect(late).toBeInstanceOf(DialtoneError);
    sub.unsubscribe();
    expect(ch.stats().members.every((m) => m.state === "ready")).toBe(true);
  });

  it("retainServerOrder puts members on the servers in the order listed; a backoff function decides each redial's delay", async () => {
    cluster = await startNatsCluster();
    const keys = cluster.nodes.map((n) => n.key);
    for (let i = 0; i < 4; i++) {
      const ch = open({ target: `nats://${keys.join(",")}`, members: 1, retainServerOrder: true, ignoreDiscoveredServers: true, name: `ordered-${i}` });
      await ch.ready(AbortSignal.timeout(10_000));
      expect(ch.stats().members[0]!.address).toBe(keys[0]);
    }
    const asked: number[] = [];
    const dead = open({ target: "nats://127.0.0.2:1", members: 1, backoff: (n: number) => (asked.push(n), 50), name: "dead" });
    await eventually(() => asked.length >= 4, 3000, "three redials");
    // The first call is the construction-time probe (a function bad for attempt 1 fails there); then each failure counts up.
    expect(asked.slice(0, 4)).toEqual([1, 1, 2, 3]);
    expect(dead.stats().ready).toBe(0);
  });
});

import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { ConnectError, NotReadyError, createNatsChannel, type ChannelEvent, type NatsChannel, type NatsChannelOptions } from "../../src/index.js";
import { eventually, recordEvents } from "../helpers/channel.js";
import { startNatsCluster, type NatsCluster } from "../helpers/nats-cluster.js";

/** The password carries "@" so the target must percent-encode it: the channel must decode it to get in. */
const SECRET = "s3cr3t@pw";
const ENCODED = encodeURIComponent(SECRET);
const USER = "app";

let cluster: NatsCluster | undefined;
const channels: NatsChannel[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await cluster?.stop();
  cluster = undefined;
});

function open(opts: NatsChannelOptions): NatsChannel {
  const ch = createNatsChannel(opts);
  channels.push(ch);
  return ch;
}

/** Everything an operator could see about a channel, as one string to search for the secret. */
function visible(ch: NatsChannel, events: ChannelEvent[], extra: string[] = []): string {
  const errText = (e: unknown): string => (e instanceof Error ? `${e.message} ${String(e.stack)} ${errText(e.cause)}` : "");
  const parts = [ch.target, ch.name, JSON.stringify(ch.stats()), ...extra];
  for (const e of events) {
    parts.push(JSON.stringify(e));
    for (const v of Object.values(e)) parts.push(errText(v));
  }
  return parts.join("\n");
}

function expectNoSecret(text: string): void {
  expect(text).not.toContain("s3cr3t");
  expect(text).not.toContain(ENCODED);
  expect(text).not.toContain(`${USER}:`);
}

describe("NATS credentials in the target, against a real nats-server with authorization", () => {
  it("nats://user:pass@… connects, works, and shows no credentials in target, name, stats, events or metric labels", async () => {
    cluster = await startNatsCluster({ user: USER, pass: SECRET });
    const [a, b, c] = cluster.nodes as [NatsCluster["nodes"][0], NatsCluster["nodes"][0], NatsCluster["nodes"][0]];
    const target = `nats://${USER}:${ENCODED}@${a.key},${USER}:${ENCODED}@${b.key},${c.key}`;
    const ch = open({ target, members: 3, ignoreDiscoveredServers: true });
    const rec = recordEvents(ch);
    const registry = new Registry();
    ch.metrics(registry);
    await ch.ready(AbortSignal.timeout(10_000));
    expect(ch.target).toBe(`nats://${a.key},${b.key},${c.key}`);
    expect(new Set(ch.stats().members.map((m) => m.address))).toEqual(new Set([a.key, b.key, c.key]));

    // It works: a subscription on one member gets what is published through the others.
    const sub = await ch.subscribe("auth.test");
    const got: string[] = [];
    const reader = (async () => {
      for await (const m of sub) {
        got.push(m.string());
        if (got.length === 10) return;
      }
    })();
    for (let i = 0; i < 10; i++) await ch.publish("auth.test", String(i));
    await ch.flush();
    await eventually(() => got.length === 10, 5000, "10 messages through the authenticated channel");
    sub.unsubscribe();
    await reader;

    const metrics = await registry.metrics();
    expect(metrics).toContain(`channel="nats://${a.key},${b.key},${c.key}"`);
    expect(rec.events.some((e) => e.type === "connect-ok")).toBe(true);
    expectNoSecret(visible(ch, rec.events, [metrics]));
  });

  it("the same credentials given in auth instead of the URL connect the same way", async () => {
    cluster = await startNatsCluster({ user: USER, pass: SECRET, hosts: ["127.0.0.2"] });
    const key = cluster.nodes[0]!.key;
    const ch = open({ target: `nats://${key}`, members: 1, auth: { user: USER, pass: SECRET } });
    await ch.ready(AbortSignal.timeout(10_000));
    expect(ch.connected).toBe(true);
  });

  it("with the wrong password it never connects, and no error, event or stat contains the password", async () => {
    cluster = await startNatsCluster({ user: USER, pass: SECRET, hosts: ["127.0.0.2"] });
    const key = cluster.nodes[0]!.key;
    const wrong = "wr0ng@s3cr3t";
    const ch = open({ target: `nats://${USER}:${encodeURIComponent(wrong)}@${key}`, members: 1, readyTimeout: 1500, acquireTimeout: 200 });
    const rec = recordEvents(ch);
    const readyErr = await ch.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(readyErr).toBeInstanceOf(NotReadyError);
    const failed = rec.events.filter((e) => e.type === "connect-failed");
    expect(failed.length).toBeGreaterThan(0);
    const first = failed[0] as Extract<ChannelEvent, { type: "connect-failed" }>;
    expect(first.error).toBeInstanceOf(ConnectError);
    // The server said why, and only that.
    expect(first.error.message).toMatch(/authori[sz]ation/i);
    const publishErr = await ch.publish("x", "y").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(publishErr).toBeInstanceOf(Error);
    const text = visible(ch, rec.events, [String((readyErr as Error).message), String((readyErr as Error).stack), String((publishErr as Error).message)]);
    expect(text).not.toContain("wr0ng");
    expect(text).not.toContain(encodeURIComponent(wrong));
    expectNoSecret(text);
  });
});

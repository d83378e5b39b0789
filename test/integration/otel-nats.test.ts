import { SpanKind } from "@opentelemetry/api";
import { afterEach, describe, expect, it } from "vitest";
import { createNatsChannel, type NatsChannel } from "../../src/index.js";
import { startNatsCluster, type NatsCluster } from "../helpers/nats-cluster.js";
import { callTrees, dialtoneTracing, forkTraced, parentOf, spansIn, waitFor } from "../helpers/otel.js";

const USER = "tracer";
const SECRET = "pa55-in-the-url";

const { exporter, tracer } = dialtoneTracing();

let cluster: NatsCluster | undefined;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => {});
  await cluster?.stop();
  cluster = undefined;
});

/** One authenticated server, a traced responder process on it, and a channel whose target carries the credentials. */
async function setup(): Promise<{ ch: NatsChannel; messages: unknown[]; key: string }> {
  cluster = await startNatsCluster({ user: USER, pass: SECRET, hosts: ["127.0.0.2"] });
  const key = cluster.nodes[0]!.key;
  const responder = await forkTraced("otel-nats-responder.ts", [`nats://${key}`, USER, SECRET], "ready");
  cleanups.push(() => responder.stop());
  const ch = createNatsChannel({ target: `nats://${USER}:${SECRET}@${key}`, members: 1 });
  cleanups.unshift(() => ch.close());
  await ch.ready(AbortSignal.timeout(10_000));
  return { ch, messages: responder.messages, key };
}

describe("dialtone/otel on NATS: messaging spans, context in the NATS headers (real nats-server, traced responder process)", () => {
  it("request(): a CLIENT span with the messaging attributes, an attempt child, and the responder's span under the attempt", async () => {
    const { ch, messages, key } = await setup();
    const rootId = await tracer.startActiveSpan("root", async (root) => {
      const reply = await ch.request("otel.echo", "hi", { headers: { "x-app": "1" } });
      expect(reply.string()).toBe("echo hi");
      root.end();
      return root.spanContext().spanId;
    });
    const tree = await waitFor(() => callTrees(exporter.getFinishedSpans()).find((t) => parentOf(t.call) === rootId), "the request's span");
    expect(tree.call.kind).toBe(SpanKind.CLIENT);
    expect(tree.call.name).toBe("send otel.echo");
    const [host, port] = key.split(":");
    expect(tree.call.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.destination.name": "otel.echo",
      "messaging.operation.type": "send",
      "messaging.operation.name": "request",
      "server.address": host,
      "server.port": Number(port),
      "network.peer.address": host,
    });
    const attempt = tree.attempts[0]!;
    const consumer = await waitFor(() => spansIn(messages).find((s) => s.parentSpanId === attempt.spanContext().spanId), "the responder's span");
    expect(consumer.traceId).toBe(attempt.spanContext().traceId);
  });

  it("publish(): a PRODUCER span, and the subscriber's span under its attempt", async () => {
    const { ch, messages } = await setup();
    const rootId = await tracer.startActiveSpan("root", async (root) => {
      await ch.publish("otel.events", "event");
      root.end();
      return root.spanContext().spanId;
    });
    const tree = await waitFor(() => callTrees(exporter.getFinishedSpans()).find((t) => parentOf(t.call) === rootId), "the publish's span");
    expect(tree.call.kind).toBe(SpanKind.PRODUCER);
    expect(tree.call.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.destination.name": "otel.events",
      "messaging.operation.name": "publish",
    });
    await waitFor(() => spansIn(messages).find((s) => s.parentSpanId === tree.attempts[0]!.spanContext().spanId), "the subscriber's span");
  });

  it("no span carries the credentials of the target (nats://user:pass@…), and a failed request has error.type", async () => {
    const { ch } = await setup();
    await tracer.startActiveSpan("root", async (root) => {
      await ch.request("otel.echo", "x");
      await ch.request("nobody.listens", "x").catch(() => undefined);
      root.end();
    });
    const trees = await waitFor(() => {
      const t = callTrees(exporter.getFinishedSpans());
      return t.length >= 2 ? t : undefined;
    }, "both requests' spans");
    const failed = trees.find((t) => t.call.attributes["messaging.destination.name"] === "nobody.listens")!;
    expect(failed.call.attributes["error.type"]).toBe("ERR_DIALTONE_NO_RESPONDERS");
    const text = JSON.stringify(exporter.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })));
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(`${USER}:`);
  });
});

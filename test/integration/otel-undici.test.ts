import diagnosticsChannel from "node:diagnostics_channel";
import type { LookupFunction } from "node:net";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { Pool, request as undiciRequest, type Dispatcher } from "undici";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { DialtoneInstrumentation } from "../../src/adapters/otel.js";
import { createDispatcher } from "../../src/adapters/undici.js";
import { startBackends } from "../helpers/backends.js";
import { callTrees, clientTracing, parentOf, spansIn, TRACED_EXEC_ARGV, waitFor } from "../helpers/otel.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";
import { makeTestPki } from "../helpers/tls.js";

const { open } = channelFixture();
const exporter = clientTracing();
const undiciTracing = new UndiciInstrumentation();
afterAll(() => undiciTracing.disable());
beforeEach(() => exporter.reset());

const undiciSpans = (): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.instrumentationScope.name.includes("instrumentation-undici"));

/** What a span says, without its ids and times. */
const shape = (s: ReadableSpan): object => ({ name: s.name, kind: s.kind, status: s.status, attributes: s.attributes });

describe("@opentelemetry/instrumentation-undici, unchanged, through dialtone/undici and through undici's own Pool", () => {
  it("gives the same span (name, kind, status, every attribute) for the same requests, and the backend's span is its child either way", async () => {
    const pki = makeTestPki(["svc.test"]);
    const [backend] = await startBackends(["127.0.0.2"], { tls: { cert: pki.cert, key: pki.key }, execArgv: TRACED_EXEC_ARGV });
    const origin = `https://svc.test:${backend!.port}`;
    const ch = open({ target: origin, discovery: staticDiscovery([backend!]), members: 1, tls: { ca: pki.ca } });
    await ch.ready(AbortSignal.timeout(10_000));
    // undici's Pool reaches the same backend under the same name: HTTP/2 over TLS, svc.test resolving to it.
    const lookup = ((_host: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) =>
      opts.all ? cb(null, [{ address: backend!.host, family: 4 }]) : cb(null, backend!.host, 4)) as unknown as LookupFunction;
    const pool = new Pool(origin, { allowH2: true, connect: { ca: pki.ca, lookup } });
    const ours = createDispatcher(ch) as unknown as Dispatcher;
    try {
      const creates: unknown[] = [];
      const count = (m: unknown): number => creates.push(m);
      diagnosticsChannel.subscribe("undici:request:create", count);
      const shapes: Record<string, object[]> = {};
      for (const [name, dispatcher] of [
        ["pool", pool],
        ["dialtone", ours],
      ] as const) {
        exporter.reset();
        creates.length = 0;
        const ok = await undiciRequest(`${origin}/a/b?c=1`, { dispatcher, headers: { "user-agent": "tracing-test" } });
        await ok.body.text();
        const missing = await undiciRequest(`${origin}/status/404`, { dispatcher, method: "POST", body: "x" });
        await missing.body.text();
        // One undici:request:create per request: dialtone's dispatcher publishes it once, and nothing else does.
        expect(creates).toHaveLength(2);
        const spans = await waitFor(() => (undiciSpans().length === 2 ? undiciSpans() : undefined), `${name}: two undici spans`);
        for (const s of spans) {
          await waitFor(() => spansIn(backend!.messages).find((b) => b.parentSpanId === s.spanContext().spanId), `${name}: the backend's span under ${s.name}`);
        }
        shapes[name] = spans.map(shape);
      }
      diagnosticsChannel.unsubscribe("undici:request:create", count);
      expect(shapes.dialtone).toEqual(shapes.pool);
      expect(shapes.pool![0]).toMatchObject({
        attributes: {
          "url.full": `${origin}/a/b?c=1`,
          "network.peer.address": backend!.host,
          "network.protocol.version": "2",
          "http.response.status_code": 200,
        },
      });
      expect(shapes.pool![1]).toMatchObject({ attributes: { "http.request.method": "POST", "http.response.status_code": 404, "error.type": "404" } });
    } finally {
      await pool.close();
    }
  });
});

describe("Node's global fetch through dialtone/undici", () => {
  it("publishes undici:request:create exactly once per fetch, and instrumentation-undici's span is the backend span's parent", async () => {
    const [backend] = await startBackends(["127.0.0.2"], { execArgv: TRACED_EXEC_ARGV });
    const ch = open({ target: `http://svc.test:${backend!.port}`, discovery: staticDiscovery([backend!]), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const creates: unknown[] = [];
    const count = (m: unknown): number => creates.push(m);
    diagnosticsChannel.subscribe("undici:request:create", count);
    try {
      const dispatcher = createDispatcher(ch);
      for (let i = 0; i < 3; i++) await (await fetch(`http://svc.test:${backend!.port}/fetch/${i}`, { dispatcher })).text();
    } finally {
      diagnosticsChannel.unsubscribe("undici:request:create", count);
    }
    expect(creates).toHaveLength(3);
    const spans = await waitFor(() => (undiciSpans().length === 3 ? undiciSpans() : undefined), "three undici spans");
    for (const s of spans) {
      expect(s.attributes["http.response.status_code"]).toBe(200);
      await waitFor(
        () => spansIn(backend!.messages).find((b) => b.parentSpanId === s.spanContext().spanId),
        `the backend's span under ${String(s.attributes["url.full"])}`,
      );
    }
  });
});

describe("instrumentation-undici and dialtone/otel together", () => {
  it("dialtone's call span is the undici span's child (its traceparent is the parent), and the backend's span is under dialtone's attempt", async () => {
    const dialtoneTracing = new DialtoneInstrumentation();
    try {
      const [backend] = await startBackends(["127.0.0.2"], { execArgv: TRACED_EXEC_ARGV });
      const ch = open({ target: `http://svc.test:${backend!.port}`, discovery: staticDiscovery([backend!]), members: 1 });
      await ch.ready(AbortSignal.timeout(10_000));
      const res = await undiciRequest(`http://svc.test:${backend!.port}/both`, { dispatcher: createDispatcher(ch) as unknown as Dispatcher });
      await res.body.text();
      const outer = await waitFor(() => undiciSpans()[0], "the undici span");
      const tree = await waitFor(() => callTrees(exporter.getFinishedSpans())[0], "dialtone's call span");
      expect(parentOf(tree.call)).toBe(outer.spanContext().spanId);
      expect(tree.call.spanContext().traceId).toBe(outer.spanContext().traceId);
      await waitFor(
        () => spansIn(backend!.messages).find((b) => b.parentSpanId === tree.attempts[0]!.spanContext().spanId),
        "the backend's span under the attempt",
      );
    } finally {
      dialtoneTracing.disable();
    }
  });
});

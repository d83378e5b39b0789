import diagnosticsChannel from "node:diagnostics_channel";
import { context, propagation, ROOT_CONTEXT, SpanKind, trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { fetch as undiciFetch, type Dispatcher } from "undici";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DialtoneInstrumentation } from "../../src/adapters/otel.js";
import { createDispatcher } from "../../src/adapters/undici.js";
import type { AttemptStartMessage, Http2Channel } from "../../src/index.js";
import { eventually } from "../helpers/channel.js";
import { callTrees, clientTracing, forkTraced, parentOf, spansIn, waitFor, type SpanRecord } from "../helpers/otel.js";
import { freePort, startNghttpx, stopRealServers, type RealServer } from "../helpers/real-servers.js";
import { channelFixture } from "../helpers/setup.js";

/**
 * The backend's side traced by the real @opentelemetry/instrumentation-http,
 * unchanged, in its own process (test/fixtures/otel-http1-backend.ts): that
 * instrumentation knows node:http only, so the backend speaks HTTP/1.1 behind
 * nghttpx, a real HTTP/2 reverse proxy (Debian's nghttp2-proxy), which
 * dialtone's members connect to over h2c. nghttpx forwards traceparent and
 * tracestate as dialtone sent them, so the SERVER span the instrumentation
 * makes is the child of dialtone's attempt span. (The gRPC paths, Connect
 * and grpc-js, need an HTTP/2 server end to end: otel-http2.test.ts traces
 * those with the SDK in an HTTP/2 backend process.)
 */
const { open } = channelFixture();
const exporter = clientTracing();
const instrumentation = new DialtoneInstrumentation();
const tracer = trace.getTracer("test");
const HTTP_INSTRUMENTATION = "@opentelemetry/instrumentation-http";

let backend: Awaited<ReturnType<typeof forkTraced>>;
let proxy: RealServer;

beforeAll(async () => {
  const port = await freePort("127.0.0.5");
  backend = await forkTraced("otel-http1-backend.ts", ["127.0.0.5", String(port)], "listening", ["--import", "tsx"]);
  proxy = await startNghttpx("127.0.0.4", { host: "127.0.0.5", port });
});
afterAll(async () => {
  instrumentation.disable();
  await stopRealServers();
  await backend?.stop();
});
beforeEach(() => exporter.reset());

async function channel(members = 1, extra: Partial<Parameters<typeof open>[0]> = {}): Promise<Http2Channel> {
  const ch = open({ target: `http://svc.test:${proxy.port}`, discovery: `static:///${proxy.key}`, members, ...extra });
  await ch.ready(AbortSignal.timeout(10_000));
  await eventually(() => ch.stats().ready === members, 10_000, `${members} member(s) ready`);
  return ch;
}

/** Runs `call` under a test span (itself under `parent`); returns its ids. */
async function underRoot<T>(call: () => Promise<T>, parent = context.active()): Promise<{ rootId: string; traceId: string; result: T }> {
  return await tracer.startActiveSpan("test root", {}, parent, async (root) => {
    try {
      const result = await call();
      return { rootId: root.spanContext().spanId, traceId: root.spanContext().traceId, result };
    } finally {
      root.end();
    }
  });
}

/** The call under `rootId` with its attempts, and the instrumentation-http SERVER span under the answering attempt. */
async function traced(rootId: string, traceId: string, attempts = 1): Promise<{ call: ReadableSpan; attempts: ReadableSpan[]; server: SpanRecord }> {
  const tree = await waitFor(
    () => callTrees(exporter.getFinishedSpans()).find((t) => parentOf(t.call) === rootId && t.attempts.length === attempts),
    `the call span and its ${attempts} attempt span(s)`,
  );
  const answered = tree.attempts.find((a) => a.attributes["dialtone.attempt.outcome"] === "ok")!;
  const server = await waitFor(() => spansIn(backend.messages).find((s) => s.parentSpanId === answered.spanContext().spanId), "the backend's SERVER span");
  expect(server.scope).toBe(HTTP_INSTRUMENTATION);
  expect(server.kind).toBe(SpanKind.SERVER);
  expect(server.traceId).toBe(traceId);
  return { ...tree, server };
}

function expectCall(t: { call: ReadableSpan; attempts: ReadableSpan[] }, path: string): void {
  expect(t.call.attributes).toMatchObject({
    "http.request.method": "GET",
    "url.full": `http://svc.test:${proxy.port}${path}`,
    "network.peer.address": proxy.host,
    "network.peer.port": proxy.port,
    "http.response.status_code": 200,
  });
  expect(t.attempts[0]!.attributes).toMatchObject({ "dialtone.attempt.reason": "first", "dialtone.attempt.outcome": "ok" });
}

describe("an HTTP/1.1 backend traced by @opentelemetry/instrumentation-http behind nghttpx: its SERVER span is the child of dialtone's attempt span", () => {
  it("nghttpx forwards traceparent and tracestate unchanged: the backend receives the attempt span's context", async () => {
    const ch = await channel();
    // A caller's trace that arrived with a tracestate: dialtone's spans inherit it, and each attempt sends it on.
    const incoming = propagation.extract(ROOT_CONTEXT, {
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      tracestate: "vendor=opaque-value,other=1",
    });
    const { rootId, traceId, result } = await underRoot(() => ch.request({ path: "/headers" }), incoming);
    expect(traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    const t = await traced(rootId, traceId);
    const received = JSON.parse(result.body.toString()) as Record<string, string>;
    expect(received.traceparent).toBe(`00-${traceId}-${t.attempts[0]!.spanContext().spanId}-01`);
    expect(received.tracestate).toBe("vendor=opaque-value,other=1");
    // What nghttpx adds by default (via, x-forwarded-proto) touches no trace header.
    expect(Object.keys(received).filter((k) => /trace|baggage/.test(k))).toEqual(["traceparent", "tracestate"]);
  });

  it("request()", async () => {
    const ch = await channel();
    const { rootId, traceId } = await underRoot(() => ch.request({ path: "/hello?x=1" }));
    const t = await traced(rootId, traceId);
    expectCall(t, "/hello?x=1");
    // The instrumentation's own (stable HTTP semconv) view of the request nghttpx forwarded over HTTP/1.1.
    expect(t.server.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.path": "/hello",
      "url.query": "x=1",
      "server.address": "svc.test",
      "server.port": proxy.port,
      "network.protocol.version": "1.1",
      "http.response.status_code": 200,
    });
  });

  it("requestStream(): the body streamed in chunks through the proxy", async () => {
    const ch = await channel();
    const { rootId, traceId, result } = await underRoot(async () => {
      const res = await ch.requestStream({ path: "/chunks?n=3" });
      let text = "";
      for await (const c of res.body) text += String(c);
      return text;
    });
    expect(result).toBe("chunk 1\nchunk 2\nchunk 3\n");
    expectCall(await traced(rootId, traceId), "/chunks?n=3");
  });

  it("stream(): a raw HTTP/2 stream", async () => {
    const ch = await channel();
    const { rootId, traceId } = await underRoot(async () => {
      const s = await ch.stream({ path: "/raw" });
      s.resume();
      await new Promise((r) => s.once("close", r));
    });
    expectCall(await traced(rootId, traceId), "/raw");
  });

  it("the undici adapter: fetch() through createDispatcher", async () => {
    const ch = await channel();
    const dispatcher = createDispatcher(ch) as unknown as Dispatcher;
    const { rootId, traceId, result } = await underRoot(async () => (await undiciFetch(`http://svc.test:${proxy.port}/via-fetch`, { dispatcher })).text());
    expect(result).toBe("ok /via-fetch");
    expectCall(await traced(rootId, traceId), "/via-fetch");
  });

  it("a hedged call: the hedge's SERVER span under the hedge attempt, the stalled first attempt's under the first", async () => {
    // Two members, both on the proxy's one address; the first attempt (only it) asks the backend to stall.
    const ch = await channel(2, { hedge: { delay: 50, max: 1 } });
    const stallFirst = (m: unknown): void => {
      const a = m as AttemptStartMessage;
      if (a.attempt === 1) a.setHeader("x-test-stall", "10000");
    };
    diagnosticsChannel.subscribe("dialtone:attempt:start", stallFirst);
    let ids: { rootId: string; traceId: string };
    try {
      ids = await underRoot(() => ch.request({ path: "/hedged", idempotent: true }));
    } finally {
      diagnosticsChannel.unsubscribe("dialtone:attempt:start", stallFirst);
    }
    const t = await traced(ids.rootId, ids.traceId, 2);
    const [first, hedge] = t.attempts as [ReadableSpan, ReadableSpan];
    expect(first.attributes).toMatchObject({ "dialtone.attempt.reason": "first", "dialtone.attempt.outcome": "cancelled" });
    expect(hedge.attributes).toMatchObject({ "dialtone.attempt.reason": "hedge", "dialtone.attempt.outcome": "ok", "http.request.resend_count": 1 });
    expect(t.server.parentSpanId).toBe(hedge.spanContext().spanId);
    // The cancelled attempt reached the backend too (nghttpx closes the HTTP/1.1 request it was forwarding): its span is the first's child.
    const loser = await waitFor(
      () => spansIn(backend.messages).find((s) => s.parentSpanId === first.spanContext().spanId),
      "the stalled request's SERVER span",
    );
    expect(loser.scope).toBe(HTTP_INSTRUMENTATION);
    expect(loser.traceId).toBe(ids.traceId);
  });
});

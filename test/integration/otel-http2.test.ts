import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { request as undiciRequest, type Dispatcher } from "undici";
import { describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { createSessionManager } from "../../src/adapters/connect.js";
import { createGrpcChannel } from "../../src/adapters/grpc-js.js";
import { createDispatcher } from "../../src/adapters/undici.js";
import type { Http2Channel } from "../../src/index.js";
import { startBackends, type Backend } from "../helpers/backends.js";
import { EchoService } from "../fixtures/echo-service.js";
import { callTrees, dialtoneTracing, forkTraced, parentOf, spansIn, TRACED_EXEC_ARGV, waitFor, type SpanRecord } from "../helpers/otel.js";
import { freePort } from "../helpers/real-servers.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();
const { exporter, tracer } = dialtoneTracing();

/** Runs `call` under a test span; returns that span's id. */
async function underRoot(call: () => Promise<unknown>): Promise<{ rootId: string; traceId: string }> {
  return await tracer.startActiveSpan("test root", async (root) => {
    try {
      await call();
    } finally {
      root.end();
    }
    return { rootId: root.spanContext().spanId, traceId: root.spanContext().traceId };
  });
}

interface Traced {
  call: ReadableSpan;
  attempts: ReadableSpan[];
  server: SpanRecord;
}

/**
 * After one call under a root span: its call span (child of the root), its
 * attempt spans, and the backend's server span, whose parent must be the
 * last attempt (the one that answered).
 */
async function traced(messages: readonly unknown[], rootId: string, traceId: string, attempts = 1): Promise<Traced> {
  const tree = await waitFor(
    () => callTrees(exporter.getFinishedSpans()).find((t) => parentOf(t.call) === rootId && t.attempts.length === attempts),
    `the call span and its ${attempts} attempt span(s)`,
  );
  const answered = tree.attempts[attempts - 1]!.spanContext().spanId;
  const server = await waitFor(() => spansIn(messages).find((s) => s.parentSpanId === answered), "the backend's server span, child of the answering attempt");
  expect(server.traceId).toBe(traceId);
  expect(tree.call.spanContext().traceId).toBe(traceId);
  return { ...tree, server };
}

async function oneBackend(): Promise<{ backend: Backend; ch: Http2Channel }> {
  const [backend] = await startBackends(["127.0.0.2"], { execArgv: TRACED_EXEC_ARGV });
  const ch = open({ target: `http://svc.test:${backend!.port}`, discovery: staticDiscovery([backend!]), members: 1 });
  await ch.ready(AbortSignal.timeout(10_000));
  return { backend: backend!, ch };
}

function expectHttpCall(t: Traced, backend: Backend, path: string, method = "GET"): void {
  expect(t.call.kind).toBe(SpanKind.CLIENT);
  expect(t.call.name).toBe(method);
  expect(t.call.attributes).toMatchObject({
    "http.request.method": method,
    "server.address": "svc.test",
    "server.port": backend.port,
    "url.full": `http://svc.test:${backend.port}${path}`,
    "network.peer.address": backend.host,
    "network.peer.port": backend.port,
    "http.response.status_code": 200,
  });
  expect(t.call.attributes["error.type"]).toBeUndefined();
  expect(t.attempts[0]!.attributes).toMatchObject({
    "dialtone.attempt.reason": "first",
    "dialtone.attempt.outcome": "ok",
    "network.peer.address": backend.host,
  });
  expect(t.attempts[0]!.attributes["http.request.resend_count"]).toBeUndefined();
  expect(t.server.attributes["url.path"]).toBe(path);
}

/**
 * The backends here speak HTTP/2 end to end (the fault-injecting backend, the
 * Connect server for gRPC), so their SERVER spans are made with the real SDK
 * by a preload (test/fixtures/otel-server-tracing.ts), not by
 * @opentelemetry/instrumentation-http, which knows node:http only: that
 * instrumentation itself is tested behind nghttpx in
 * otel-instrumentation-http.test.ts.
 */
describe("dialtone/otel: a CLIENT span per call, a child per attempt, and the backend's server span under the attempt (real SDK; HTTP/2 backend process traced by an SDK preload)", () => {
  it("request(): semconv attributes on the call span, traceparent in the request", async () => {
    const { backend, ch } = await oneBackend();
    const { rootId, traceId } = await underRoot(() => ch.request({ path: "/hello?x=1" }));
    expectHttpCall(await traced(backend.messages, rootId, traceId), backend, "/hello?x=1");
  });

  it("requestStream(): the call span ends when the body has been read, not at the head", async () => {
    const { backend, ch } = await oneBackend();
    let headAt = 0;
    const { rootId, traceId } = await underRoot(async () => {
      const res = await ch.requestStream({ path: "/stream?chunks=3&size=10&every=20" });
      headAt = performance.timeOrigin + performance.now();
      for await (const _ of res.body);
    });
    const t = await traced(backend.messages, rootId, traceId);
    expectHttpCall(t, backend, "/stream?chunks=3&size=10&every=20");
    const endMs = t.call.endTime[0] * 1000 + t.call.endTime[1] / 1e6;
    expect(endMs).toBeGreaterThan(headAt);
  });

  it("stream(): a raw stream's attempt carries the headers and its status", async () => {
    const { backend, ch } = await oneBackend();
    const { rootId, traceId } = await underRoot(async () => {
      const s = await ch.stream({ path: "/raw" });
      s.resume();
      await new Promise((r) => s.once("close", r));
    });
    expectHttpCall(await traced(backend.messages, rootId, traceId), backend, "/raw");
  });

  it("the undici adapter: an undici request through createDispatcher is traced the same way", async () => {
    const { backend, ch } = await oneBackend();
    const dispatcher = createDispatcher(ch) as unknown as Dispatcher;
    const { rootId, traceId } = await underRoot(async () => {
      const res = await undiciRequest(`http://svc.test:${backend.port}/via-undici`, { dispatcher });
      await res.body.text();
    });
    expectHttpCall(await traced(backend.messages, rootId, traceId), backend, "/via-undici");
  });

  it("the Connect adapter: a gRPC call through createSessionManager is traced, the SDK-traced HTTP/2 server's span under its attempt", async () => {
    const port = await freePort("127.0.0.2");
    const server = await forkTraced("connect-server.ts", ["127.0.0.2", String(port)], "listening");
    try {
      const ch = open({ target: `http://grpc.test:${port}`, discovery: `static:///127.0.0.2:${port}`, members: 1 });
      await ch.ready(AbortSignal.timeout(10_000));
      const echo = createClient(EchoService, createGrpcTransport({ baseUrl: ch.target, sessionManager: createSessionManager(ch) }));
      const { rootId, traceId } = await underRoot(() => echo.echo({ value: Buffer.from("hi") }));
      const t = await traced(server.messages, rootId, traceId);
      expect(t.call.attributes).toMatchObject({
        "http.request.method": "POST",
        "url.full": `http://grpc.test:${port}/dialtone.test.Echo/Echo`,
        "network.peer.address": "127.0.0.2",
        "http.response.status_code": 200,
        "dialtone.operation": "stream",
      });
    } finally {
      await server.stop();
    }
  });

  it("the grpc-js adapter: a grpc-js call on createGrpcChannel is traced, the SDK-traced HTTP/2 server's span under its attempt", async () => {
    const port = await freePort("127.0.0.2");
    const server = await forkTraced("connect-server.ts", ["127.0.0.2", String(port)], "listening");
    try {
      const ch = open({ target: `http://grpc.test:${port}`, discovery: `static:///127.0.0.2:${port}`, members: 1 });
      await ch.ready(AbortSignal.timeout(10_000));
      // google.protobuf.BytesValue by hand (field 1, length-delimited): no generated code for one short message.
      const bytesValue = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0x0a, b.length]), b]);
      const Echo = grpc.makeGenericClientConstructor(
        {
          echo: {
            path: "/dialtone.test.Echo/Echo",
            requestStream: false,
            responseStream: false,
            requestSerialize: bytesValue,
            requestDeserialize: (b: Buffer) => b,
            responseSerialize: (b: Buffer) => b,
            responseDeserialize: (b: Buffer) => b,
          },
        },
        "Echo",
      );
      const client = new Echo(ch.target, grpc.credentials.createInsecure(), { channelOverride: createGrpcChannel(ch) });
      const echo = (): Promise<Buffer> =>
        new Promise((resolve, reject) =>
          (client as unknown as { echo(req: Buffer, cb: (e: Error | null, r: Buffer) => void): void }).echo(Buffer.from("hi"), (e, r) =>
            e ? reject(e) : resolve(r),
          ),
        );
      const { rootId, traceId } = await underRoot(async () => expect(await echo()).toEqual(bytesValue(Buffer.from("hi"))));
      const t = await traced(server.messages, rootId, traceId);
      expect(t.call.attributes).toMatchObject({
        "http.request.method": "POST",
        "url.full": `http://grpc.test:${port}/dialtone.test.Echo/Echo`,
        "network.peer.address": "127.0.0.2",
        "http.response.status_code": 200,
      });
      client.close();
    } finally {
      await server.stop();
    }
  });

  it("a retry after REFUSED_STREAM shows both attempts: the first failed, the second a resend the backend answered", async () => {
    const { backend, ch } = await oneBackend();
    await backend.command({ cmd: "refuse-next", n: 1 });
    const { rootId, traceId } = await underRoot(() => ch.request({ path: "/retried" }));
    const t = await traced(backend.messages, rootId, traceId, 2);
    const [first, second] = t.attempts as [ReadableSpan, ReadableSpan];
    expect(first.attributes).toMatchObject({ "dialtone.attempt.outcome": "error", "error.type": "ERR_DIALTONE_REFUSED_STREAM" });
    expect(first.status.code).toBe(SpanStatusCode.ERROR);
    expect(second.attributes).toMatchObject({
      "dialtone.attempt.reason": "retry-unprocessed",
      "http.request.resend_count": 1,
      "http.response.status_code": 200,
    });
    expect(t.call.attributes).toMatchObject({ "http.response.status_code": 200, "dialtone.attempts": 2 });
    expect(t.call.attributes["error.type"]).toBeUndefined();
  });

  it("a hedged call shows the hedge (resend_count 1) as the answer and the stalled first attempt as cancelled", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"], { execArgv: TRACED_EXEC_ARGV });
    const [slow, fast] = backends as [Backend, Backend];
    await slow.command({ cmd: "stall", percent: 100, ms: 1000 });
    const ch = open({
      target: `http://svc.test:${slow.port}`,
      discovery: staticDiscovery([slow, fast]),
      members: 2,
      balancer: "in-flight",
      hedge: { delay: 50, max: 1 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    // A pair at once: with the in-flight balancer the second call goes to the member the first did
    // not take, so one of the two reaches the stalled member and is hedged (see hedge.test.ts).
    const { rootId, traceId } = await underRoot(() =>
      Promise.all([ch.request({ path: "/h", idempotent: true }), ch.request({ path: "/h", idempotent: true })]),
    );
    // The call whose first attempt reached the stalled member (the other call may be hedged too on a
    // loaded machine, if the fast member takes over 50 ms: then its hedge is the loser).
    const tree = await waitFor(
      () =>
        callTrees(exporter.getFinishedSpans()).find(
          (t) => parentOf(t.call) === rootId && t.attempts.length === 2 && t.attempts[0]!.attributes["network.peer.address"] === slow.host,
        ),
      "the hedged call's two attempts",
    );
    const [first, hedge] = tree.attempts as [ReadableSpan, ReadableSpan];
    expect(first.attributes).toMatchObject({ "dialtone.attempt.reason": "first", "dialtone.attempt.outcome": "cancelled", "network.peer.address": slow.host });
    expect(first.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(hedge.attributes).toMatchObject({
      "dialtone.attempt.reason": "hedge",
      "dialtone.attempt.outcome": "ok",
      "http.request.resend_count": 1,
      "network.peer.address": fast.host,
    });
    expect(tree.call.attributes).toMatchObject({ "network.peer.address": fast.host, "http.response.status_code": 200 });
    const server = await waitFor(
      () => spansIn(fast.messages).find((s) => s.parentSpanId === hedge.spanContext().spanId),
      "the fast backend's span under the hedge",
    );
    expect(server.traceId).toBe(traceId);
  });

  it("a failed call has error.type (its DialtoneError code) on the call and the attempt; a 503 has error.type 503", async () => {
    const { backend, ch } = await oneBackend();
    await backend.command({ cmd: "stall", percent: 100, ms: 2000 });
    const { rootId } = await underRoot(() => ch.request({ path: "/slow", timeout: 200 }).catch(() => undefined));
    const tree = await waitFor(() => callTrees(exporter.getFinishedSpans()).find((t) => parentOf(t.call) === rootId), "the failed call's span");
    expect(tree.call.attributes["error.type"]).toBe("ERR_DIALTONE_REQUEST_TIMEOUT");
    expect(tree.call.status.code).toBe(SpanStatusCode.ERROR);
    expect(tree.attempts[0]!.attributes["error.type"]).toBe("ERR_DIALTONE_REQUEST_TIMEOUT");
    await backend.command({ cmd: "stall", percent: 0, ms: 0 });
    const second = await underRoot(() => ch.request({ path: "/status/503" }));
    const t = await waitFor(() => callTrees(exporter.getFinishedSpans()).find((x) => parentOf(x.call) === second.rootId), "the 503 call's span");
    expect(t.call.attributes).toMatchObject({ "http.response.status_code": 503, "error.type": "503" });
  });

  it("no span attribute carries the caller's credentials (an authorization header, a URL's user-info)", async () => {
    const { backend, ch } = await oneBackend();
    const dispatcher = createDispatcher(ch) as unknown as Dispatcher;
    await underRoot(async () => {
      await ch.request({ path: "/private", headers: { authorization: "Bearer s3cret-token" } });
      const res = await undiciRequest(`http://svc.test:${backend.port}/private`, { dispatcher, headers: { authorization: "Basic dXNlcjpzM2NyZXQ=" } });
      await res.body.text();
    });
    await waitFor(() => (callTrees(exporter.getFinishedSpans()).length >= 2 ? true : undefined), "both calls' spans");
    const text = JSON.stringify(exporter.getFinishedSpans().map((s) => s.attributes));
    expect(text).not.toMatch(/s3cret|dXNlcjpzM2NyZXQ|authorization/i);
  });
});

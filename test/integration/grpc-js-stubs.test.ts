/**
 * grpc-js stubs as users have them (grpc-testing.proto through
 * @grpc/proto-loader at run time) on dialtone, against grpc's TestService
 * served by grpc-js, beside the same stubs on grpc-js alone: 4 MiB messages
 * and the message-size limits, every status code, interceptors, call
 * credentials. (Unary and streaming calls, deadlines, cancellation and
 * metadata both ways are the interop cases in grpc-js-interop.test.ts.)
 */
import grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrpcChannel, type GrpcChannelOptions } from "../../src/adapters/grpc-js.js";
import { createHttp2Channel, type Http2Channel } from "../../src/index.js";
import { eventually } from "../helpers/channel.js";
import { loadTesting, unary, type AnyClient } from "../helpers/grpc-js.js";
import { makeTestPki } from "../helpers/tls.js";
import { startGrpcJsInterop, stopRealServers, type RealServer } from "../helpers/real-servers.js";

const S = grpc.status;
const { TestService } = loadTesting(grpc);
const MiB = 1024 * 1024;
let server: RealServer;
let channel: Http2Channel;
const clients: AnyClient[] = [];

beforeAll(async () => {
  server = await startGrpcJsInterop("127.0.0.2");
  channel = createHttp2Channel({ target: `http://interop.test:${server.port}`, discovery: `static:///${server.key}`, members: 1 });
  await channel.ready(AbortSignal.timeout(10_000));
}, 30_000);
afterAll(async () => {
  for (const c of clients) c.close();
  await channel?.close();
  await stopRealServers();
});

function onDialtone(options?: GrpcChannelOptions, clientOptions: grpc.ClientOptions = {}): AnyClient {
  const c = new TestService(channel.target, grpc.credentials.createInsecure(), { ...clientOptions, channelOverride: createGrpcChannel(channel, options) });
  clients.push(c);
  return c;
}
function alone(options: grpc.ClientOptions = {}): AnyClient {
  const c = new TestService(server.key, grpc.credentials.createInsecure(), options);
  clients.push(c);
  return c;
}
const call = (c: AnyClient, req: object, md = new grpc.Metadata(), opts: grpc.CallOptions = {}) =>
  unary<{ payload: { body: Buffer } }>((cb) => c.UnaryCall(req, md, { deadline: Date.now() + 20_000, ...opts }, cb));

describe("grpc-js stubs on dialtone, beside grpc-js alone (grpc-js TestService)", () => {
  it("4 MiB messages both ways with the limits raised; over grpc-js's default 4 MiB receive limit, RESOURCE_EXHAUSTED as grpc-js alone", async () => {
    const big = { responseSize: 4 * MiB, payload: { body: Buffer.alloc(4 * MiB, 7) } };
    const ours = await call(onDialtone({ maxReceiveMessageLength: 8 * MiB }), big);
    const theirs = await call(alone({ "grpc.max_receive_message_length": 8 * MiB }), big);
    expect([ours.status.code, ours.messages[0]?.payload.body.length]).toEqual([S.OK, 4 * MiB]);
    expect([theirs.status.code, theirs.messages[0]?.payload.body.length]).toEqual([S.OK, 4 * MiB]);
    const over = { responseSize: 4 * MiB };
    const [a, b] = await Promise.all([call(onDialtone(), over), call(alone(), over)]);
    expect([a.status.code, b.status.code]).toEqual([S.RESOURCE_EXHAUSTED, S.RESOURCE_EXHAUSTED]);
    // And a send limit: refused before it leaves.
    const c = await call(onDialtone({ maxSendMessageLength: 1024 }), { payload: { body: Buffer.alloc(2048) } });
    expect(c.status.code).toBe(S.RESOURCE_EXHAUSTED);
    await eventually(() => channel.stats().members.every((m) => m.inFlight === 0), 5_000, "in-flight back to 0");
  }, 60_000);

  it("every status code 1–16 from the server arrives as the server sent it, with its message, as with grpc-js alone", async () => {
    const ours = onDialtone();
    const theirs = alone();
    for (let code = 1; code <= 16; code++) {
      const req = { responseStatus: { code, message: `status ${code} ☺` } };
      const [a, b] = await Promise.all([call(ours, req), call(theirs, req)]);
      expect([code, a.status.code, a.status.details]).toEqual([code, code, `status ${code} ☺`]);
      expect([code, b.status.code, b.status.details]).toEqual([code, code, `status ${code} ☺`]);
    }
  });

  it("interceptors run above the channel: one that adds metadata and reads the response metadata works as with grpc-js alone", async () => {
    const seen: string[] = [];
    const interceptor: grpc.Interceptor = (options, next) =>
      new grpc.InterceptingCall(next(options), {
        start(metadata, listener, nextStart) {
          metadata.set("x-grpc-test-echo-initial", "from-interceptor");
          nextStart(metadata, {
            onReceiveMetadata(md, nextMd) {
              seen.push(String(md.get("x-grpc-test-echo-initial")[0]));
              nextMd(md);
            },
          });
        },
      });
    const a = await call(onDialtone(undefined, { interceptors: [interceptor] }), { responseSize: 8 });
    const b = await call(alone({ interceptors: [interceptor] }), { responseSize: 8 });
    expect([a.status.code, b.status.code]).toEqual([S.OK, S.OK]);
    expect(seen).toEqual(["from-interceptor", "from-interceptor"]);
  });

  it("call credentials over an http:// target fail UNAUTHENTICATED: the token is never sent in the clear", async () => {
    let asked = 0;
    const creds = grpc.credentials.createFromMetadataGenerator((_params, cb) => {
      asked++;
      const md = new grpc.Metadata();
      md.set("authorization", "Bearer secret");
      cb(null, md);
    });
    const r = await call(onDialtone(), { responseSize: 8 }, new grpc.Metadata(), { credentials: creds });
    expect(r.status.code).toBe(S.UNAUTHENTICATED);
    expect(asked).toBe(0);
  });

  it("call credentials over TLS: the plugin's metadata is sent with the call (the server echoes it back)", async () => {
    const pki = makeTestPki(["interop.test"]);
    const tlsServer = await startGrpcJsInterop("127.0.0.3", { tls: pki });
    const secure = createHttp2Channel({
      target: `https://interop.test:${tlsServer.port}`,
      discovery: `static:///${tlsServer.key}`,
      members: 1,
      tls: { ca: pki.ca },
    });
    try {
      await secure.ready(AbortSignal.timeout(10_000));
      const creds = grpc.credentials.createFromMetadataGenerator((params, cb) => {
        const md = new grpc.Metadata();
        md.set("x-grpc-test-echo-initial", `token for ${params.service_url}`);
        cb(null, md);
      });
      const c = new TestService(secure.target, grpc.credentials.createInsecure(), { channelOverride: createGrpcChannel(secure) });
      clients.push(c);
      const r = await call(c, { responseSize: 8 }, new grpc.Metadata(), { credentials: creds });
      expect(r.status.code).toBe(S.OK);
      expect(r.headers?.get("x-grpc-test-echo-initial")).toEqual([`token for https://interop.test:${tlsServer.port}/grpc.testing.TestService`]);
    } finally {
      await secure.close();
    }
  }, 30_000);
});

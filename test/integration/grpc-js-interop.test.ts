/**
 * grpc's interop test cases (doc/interop-test-descriptions.md: the 14 that
 * need no credentials or compression) from a grpc-js client whose stubs come
 * from grpc-testing.proto via @grpc/proto-loader:
 * - grpc-js alone (its own channel), the reference;
 * - grpc-js on dialtone (`createGrpcChannel` as `channelOverride`), against
 *   grpc's TestService in Python and against the same service in grpc-js;
 * - the oldest grpc-js 1.x (1.0.0, "grpc-js-oldest") on dialtone.
 */
import grpcNewest from "@grpc/grpc-js";
import grpcOldest from "grpc-js-oldest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGrpcChannel } from "../../src/adapters/grpc-js.js";
import { createHttp2Channel, type Http2Channel } from "../../src/index.js";
import { eventually } from "../helpers/channel.js";
import { drain, loadTesting, reader, unary, type AnyClient, type GrpcModule } from "../helpers/grpc-js.js";
import { startGrpcJsInterop, startPythonInterop, stopRealServers, type RealServer } from "../helpers/real-servers.js";
import { CASES, DEADLINE, ECHO_INITIAL, ECHO_TRAILING, SIZES_IN, SIZES_OUT, SPECIAL_MESSAGE, STATUS_MESSAGE } from "../helpers/grpc-interop-cases.js";

const S = grpcNewest.status;

interface Payload {
  payload: { body: Buffer } | null;
}
const zeros = (n: number): { body: Buffer } => ({ body: Buffer.alloc(n) });
const opts = (): { deadline: number } => ({ deadline: Date.now() + DEADLINE });

type Case = (grpc: GrpcModule, c: AnyClient, u: AnyClient) => Promise<void>;
const cases: Record<(typeof CASES)[number], Case> = {
  empty_unary: async (g, c) => {
    const r = await unary((cb) => c.EmptyCall({}, new g.Metadata(), opts(), cb));
    expect(r.status.code).toBe(S.OK);
    expect(r.messages).toEqual([{}]);
  },
  large_unary: async (g, c) => {
    const r = await unary<Payload>((cb) => c.UnaryCall({ responseSize: 314159, payload: zeros(271828) }, new g.Metadata(), opts(), cb));
    expect(r.status.code).toBe(S.OK);
    expect(r.messages[0]?.payload?.body.length).toBe(314159);
    expect(r.messages[0]?.payload?.body.every((b) => b === 0)).toBe(true);
  },
  client_streaming: async (g, c) => {
    const r = await unary<{ aggregatedPayloadSize: number }>((cb) => {
      const call = c.StreamingInputCall(new g.Metadata(), opts(), cb);
      for (const n of SIZES_IN) call.write({ payload: zeros(n) });
      call.end();
      return call;
    });
    expect(r.status.code).toBe(S.OK);
    expect(r.messages[0]?.aggregatedPayloadSize).toBe(74922);
  },
  server_streaming: async (g, c) => {
    const r = await drain<Payload>(c.StreamingOutputCall({ responseParameters: SIZES_OUT.map((size) => ({ size })) }, new g.Metadata(), opts()));
    expect(r.status.code).toBe(S.OK);
    expect(r.messages.map((m) => m.payload?.body.length)).toEqual(SIZES_OUT);
  },
  ping_pong: async (g, c) => {
    const call = c.FullDuplexCall(new g.Metadata(), opts());
    const ended = drain(call);
    const read = reader<Payload>(call);
    const sizes: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      call.write({ responseParameters: [{ size: SIZES_OUT[i]! }], payload: zeros(SIZES_IN[i]!) });
      const m = (await read.next()) as Payload;
      sizes.push(m.payload?.body.length);
    }
    call.end();
    expect(await read.next()).toBeUndefined();
    expect(sizes).toEqual(SIZES_OUT);
    expect((await ended).status.code).toBe(S.OK);
  },
  empty_stream: async (g, c) => {
    const call = c.FullDuplexCall(new g.Metadata(), opts());
    call.end();
    const r = await drain(call);
    expect([r.status.code, r.messages.length]).toEqual([S.OK, 0]);
  },
  timeout_on_sleeping_server: async (g, c) => {
    const call = c.FullDuplexCall(new g.Metadata(), { deadline: Date.now() + 1 });
    call.write({ payload: zeros(27182) });
    const r = await drain(call);
    expect(r.status.code).toBe(S.DEADLINE_EXCEEDED);
  },
  cancel_after_begin: async (g, c) => {
    const r = unary((cb) => {
      const call = c.StreamingInputCall(new g.Metadata(), opts(), cb);
      setImmediate(() => call.cancel());
      return call;
    });
    expect((await r).status.code).toBe(S.CANCELLED);
  },
  cancel_after_first_response: async (g, c) => {
    const call = c.FullDuplexCall(new g.Metadata(), opts());
    const ended = drain(call);
    const read = reader<Payload>(call);
    call.write({ responseParameters: [{ size: 31415 }], payload: zeros(27182) });
    const first = (await read.next()) as Payload;
    expect(first.payload?.body.length).toBe(31415);
    call.cancel();
    expect((await ended).status.code).toBe(S.CANCELLED);
  },
  status_code_and_message: async (g, c) => {
    const status = { code: 2, message: STATUS_MESSAGE };
    const u = await unary((cb) => c.UnaryCall({ responseStatus: status }, new g.Metadata(), opts(), cb));
    expect([u.status.code, u.status.details]).toEqual([S.UNKNOWN, STATUS_MESSAGE]);
    const call = c.FullDuplexCall(new g.Metadata(), opts());
    call.write({ responseStatus: status });
    call.end();
    const d = await drain(call);
    expect([d.status.code, d.status.details]).toEqual([S.UNKNOWN, STATUS_MESSAGE]);
  },
  special_status_message: async (g, c) => {
    const u = await unary((cb) => c.UnaryCall({ responseStatus: { code: 2, message: SPECIAL_MESSAGE } }, new g.Metadata(), opts(), cb));
    expect([u.status.code, u.status.details]).toEqual([S.UNKNOWN, SPECIAL_MESSAGE]);
  },
  custom_metadata: async (g, c) => {
    const md = (): InstanceType<GrpcModule["Metadata"]> => {
      const m = new g.Metadata();
      m.set(ECHO_INITIAL, "test_initial_metadata_value");
      m.set(ECHO_TRAILING, Buffer.from([0xab, 0xab, 0xab]));
      return m;
    };
    const check = (r: { headers: InstanceType<GrpcModule["Metadata"]> | undefined; status: { metadata: InstanceType<GrpcModule["Metadata"]> } }): void => {
      expect(r.headers?.get(ECHO_INITIAL)).toEqual(["test_initial_metadata_value"]);
      expect(r.status.metadata.get(ECHO_TRAILING)).toEqual([Buffer.from([0xab, 0xab, 0xab])]);
    };
    const u = await unary<Payload>((cb) => c.UnaryCall({ responseSize: 314159, payload: zeros(271828) }, md(), opts(), cb));
    expect(u.messages[0]?.payload?.body.length).toBe(314159);
    check(u);
    const call = c.FullDuplexCall(md(), opts());
    call.write({ responseParameters: [{ size: 314159 }], payload: zeros(271828) });
    call.end();
    const d = await drain<Payload>(call);
    expect(d.messages.map((m) => m.payload?.body.length)).toEqual([314159]);
    check(d);
  },
  unimplemented_method: async (g, c) => {
    expect((await unary((cb) => c.UnimplementedCall({}, new g.Metadata(), opts(), cb))).status.code).toBe(S.UNIMPLEMENTED);
  },
  unimplemented_service: async (g, _c, u) => {
    expect((await unary((cb) => u.UnimplementedCall({}, new g.Metadata(), opts(), cb))).status.code).toBe(S.UNIMPLEMENTED);
  },
};

let python: RealServer;
let grpcJsServer: RealServer;
const channels: Http2Channel[] = [];
async function channelTo(server: RealServer): Promise<Http2Channel> {
  const ch = createHttp2Channel({ target: `http://interop.test:${server.port}`, discovery: `static:///${server.key}`, members: 1 });
  channels.push(ch);
  await ch.ready(AbortSignal.timeout(10_000));
  return ch;
}
beforeAll(async () => {
  [python, grpcJsServer] = await Promise.all([startPythonInterop("127.0.0.2"), startGrpcJsInterop("127.0.0.3")]);
}, 30_000);
afterAll(async () => {
  await Promise.all(channels.map((c) => c.close()));
  await stopRealServers();
});

interface Mode {
  name: string;
  grpc: GrpcModule;
  server: () => RealServer;
  dialtone: boolean;
}
const MODES: Mode[] = [
  { name: "grpc-js alone → Python TestService (the reference)", grpc: grpcNewest, server: () => python, dialtone: false },
  { name: "grpc-js on dialtone → Python TestService", grpc: grpcNewest, server: () => python, dialtone: true },
  { name: "grpc-js alone → grpc-js TestService (the reference)", grpc: grpcNewest, server: () => grpcJsServer, dialtone: false },
  { name: "grpc-js on dialtone → grpc-js TestService", grpc: grpcNewest, server: () => grpcJsServer, dialtone: true },
  { name: "oldest grpc-js 1.x (1.0.0) on dialtone → Python TestService", grpc: grpcOldest as unknown as GrpcModule, server: () => python, dialtone: true },
];

for (const mode of MODES) {
  describe(`grpc interop cases: ${mode.name}`, () => {
    let channel: Http2Channel | undefined;
    let client: AnyClient;
    let unimplemented: AnyClient;
    beforeAll(async () => {
      const { TestService, UnimplementedService } = loadTesting(mode.grpc);
      const server = mode.server();
      const creds = mode.grpc.credentials.createInsecure();
      if (mode.dialtone) {
        channel = await channelTo(server);
        const options = { channelOverride: createGrpcChannel(channel) as unknown as grpcNewest.ChannelInterface };
        client = new TestService(channel.target, creds, options);
        unimplemented = new UnimplementedService(channel.target, creds, options);
      } else {
        client = new TestService(server.key, creds);
        unimplemented = new UnimplementedService(server.key, creds);
      }
    }, 20_000);
    afterAll(() => {
      client?.close();
      unimplemented?.close();
    });
    for (const name of CASES) {
      it(name, async () => {
        await cases[name](mode.grpc, client, unimplemented);
        // Every call's stream closes, however it ended: nothing stays in flight.
        if (channel) await eventually(() => channel!.stats().members.every((m) => m.inFlight === 0), 5_000, "in-flight back to 0");
      });
    }
  });
}

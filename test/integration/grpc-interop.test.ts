/**
 * grpc's interop test cases (grpc/grpc doc/interop-test-descriptions.md: the
 * 14 that need no credentials or compression) against grpc's TestService in
 * Python (Debian's python3-grpcio, test/fixtures/grpc_interop_server.py):
 * (a) from Connect's gRPC transport over dialtone/connect's session manager,
 * (b) from a Python grpcio client through `dialtone broker`.
 * Messages and services use grpc's names and field numbers
 * (test/fixtures/grpc-testing.json), so any interop peer can talk to ours.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient, decodeBinaryHeader, encodeBinaryHeader, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSessionManager } from "../../src/adapters/connect.js";
import { createHttp2Channel, type Http2Channel } from "../../src/index.js";
import { eventually } from "../helpers/channel.js";
import { startBroker, stopAllBrokers } from "../helpers/broker.js";
import { startPythonInterop, stopRealServers, type RealServer } from "../helpers/real-servers.js";
import { CASES, DEADLINE, ECHO_INITIAL, ECHO_TRAILING, SIZES_IN, SIZES_OUT, SPECIAL_MESSAGE, STATUS_MESSAGE } from "../helpers/grpc-interop-cases.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { TestService, UnimplementedService, type StreamingInputCallRequestSchema, type StreamingOutputCallRequestSchema } from "../fixtures/grpc-testing.js";

type OutInit = MessageInitShape<typeof StreamingOutputCallRequestSchema>;
type InInit = MessageInitShape<typeof StreamingInputCallRequestSchema>;

const zeros = (n: number): { body: Uint8Array } => ({ body: new Uint8Array(n) });

/** A request stream the test feeds one message at a time (ping_pong and the cancel cases need to send, then wait). */
function feed<T>(): { stream: AsyncIterable<T>; send(m: T): void; end(): void } {
  const queue: Array<T | undefined> = [];
  let wake: (() => void) | undefined;
  const push = (m: T | undefined): void => {
    queue.push(m);
    wake?.();
  };
  return {
    stream: (async function* () {
      for (;;) {
        while (queue.length === 0) await new Promise<void>((r) => (wake = r));
        const m = queue.shift();
        if (m === undefined) return;
        yield m;
      }
    })(),
    send: (m) => push(m),
    end: () => push(undefined),
  };
}

async function failure(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should have failed").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

async function drain<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const m of it) out.push(m);
  return out;
}

type Test = Client<typeof TestService>;
const cases: Record<(typeof CASES)[number], (c: Test, u: Client<typeof UnimplementedService>) => Promise<void>> = {
  empty_unary: async (c) => {
    expect(await c.emptyCall({}, { timeoutMs: DEADLINE })).toBeDefined();
  },
  large_unary: async (c) => {
    const r = await c.unaryCall({ responseSize: 314159, payload: zeros(271828) }, { timeoutMs: DEADLINE });
    expect(r.payload?.body.length).toBe(314159);
    expect(r.payload?.body.every((b) => b === 0)).toBe(true);
  },
  client_streaming: async (c) => {
    const r = await c.streamingInputCall(
      (async function* () {
        for (const n of SIZES_IN) yield { payload: zeros(n) };
      })(),
      { timeoutMs: DEADLINE },
    );
    expect(r.aggregatedPayloadSize).toBe(74922);
  },
  server_streaming: async (c) => {
    const got = await drain(c.streamingOutputCall({ responseParameters: SIZES_OUT.map((size) => ({ size })) }, { timeoutMs: DEADLINE }));
    expect(got.map((r) => r.payload?.body.length)).toEqual(SIZES_OUT);
  },
  ping_pong: async (c) => {
    const f = feed<OutInit>();
    const res = c.fullDuplexCall(f.stream, { timeoutMs: DEADLINE })[Symbol.asyncIterator]();
    const sizes: Array<number | undefined> = [];
    for (let i = 0; i < 4; i++) {
      f.send({ responseParameters: [{ size: SIZES_OUT[i]! }], payload: zeros(SIZES_IN[i]!) });
      const r = await res.next();
      sizes.push(r.done ? undefined : r.value.payload?.body.length);
    }
    f.end();
    expect((await res.next()).done).toBe(true);
    expect(sizes).toEqual(SIZES_OUT);
  },
  empty_stream: async (c) => {
    expect(await drain(c.fullDuplexCall((async function* () {})(), { timeoutMs: DEADLINE }))).toEqual([]);
  },
  timeout_on_sleeping_server: async (c) => {
    const f = feed<OutInit>();
    f.send({ payload: zeros(27182) });
    const err = await failure(drain(c.fullDuplexCall(f.stream, { timeoutMs: 1 })));
    expect(err.code).toBe(Code.DeadlineExceeded);
  },
  cancel_after_begin: async (c) => {
    const ac = new AbortController();
    const f = feed<InInit>();
    const call = c.streamingInputCall(f.stream, { signal: ac.signal, timeoutMs: DEADLINE });
    ac.abort();
    expect((await failure(call)).code).toBe(Code.Canceled);
  },
  cancel_after_first_response: async (c) => {
    const ac = new AbortController();
    const f = feed<OutInit>();
    const res = c.fullDuplexCall(f.stream, { signal: ac.signal, timeoutMs: DEADLINE })[Symbol.asyncIterator]();
    f.send({ responseParameters: [{ size: 31415 }], payload: zeros(27182) });
    const first = await res.next();
    expect(first.done ? undefined : first.value.payload?.body.length).toBe(31415);
    ac.abort();
    expect((await failure(res.next())).code).toBe(Code.Canceled);
  },
  status_code_and_message: async (c) => {
    const status = { code: 2, message: STATUS_MESSAGE };
    const unary = await failure(c.unaryCall({ responseStatus: status }, { timeoutMs: DEADLINE }));
    expect([unary.code, unary.rawMessage]).toEqual([Code.Unknown, STATUS_MESSAGE]);
    const duplex = await failure(
      drain(
        c.fullDuplexCall(
          (async function* () {
            yield { responseStatus: status };
          })(),
          { timeoutMs: DEADLINE },
        ),
      ),
    );
    expect([duplex.code, duplex.rawMessage]).toEqual([Code.Unknown, STATUS_MESSAGE]);
  },
  special_status_message: async (c) => {
    const err = await failure(c.unaryCall({ responseStatus: { code: 2, message: SPECIAL_MESSAGE } }, { timeoutMs: DEADLINE }));
    expect([err.code, err.rawMessage]).toEqual([Code.Unknown, SPECIAL_MESSAGE]);
  },
  custom_metadata: async (c) => {
    const headers = { [ECHO_INITIAL]: "test_initial_metadata_value", [ECHO_TRAILING]: encodeBinaryHeader(new Uint8Array([0xab, 0xab, 0xab])) };
    const check = (h: Headers | undefined, t: Headers | undefined): void => {
      expect(h?.get(ECHO_INITIAL)).toBe("test_initial_metadata_value");
      expect([...decodeBinaryHeader(t?.get(ECHO_TRAILING) ?? "")]).toEqual([0xab, 0xab, 0xab]);
    };
    let h: Headers | undefined;
    let t: Headers | undefined;
    const r = await c.unaryCall(
      { responseSize: 314159, payload: zeros(271828) },
      { headers, timeoutMs: DEADLINE, onHeader: (x) => (h = x), onTrailer: (x) => (t = x) },
    );
    expect(r.payload?.body.length).toBe(314159);
    check(h, t);
    h = t = undefined;
    const got = await drain(
      c.fullDuplexCall(
        (async function* () {
          yield { responseParameters: [{ size: 314159 }], payload: zeros(271828) };
        })(),
        { headers, timeoutMs: DEADLINE, onHeader: (x) => (h = x), onTrailer: (x) => (t = x) },
      ),
    );
    expect(got.map((m) => m.payload?.body.length)).toEqual([314159]);
    check(h, t);
  },
  unimplemented_method: async (c) => {
    expect((await failure(c.unimplementedCall({}, { timeoutMs: DEADLINE }))).code).toBe(Code.Unimplemented);
  },
  unimplemented_service: async (_c, u) => {
    expect((await failure(u.unimplementedCall({}, { timeoutMs: DEADLINE }))).code).toBe(Code.Unimplemented);
  },
};

let server: RealServer;
let channel: Http2Channel;
beforeAll(async () => {
  server = await startPythonInterop("127.0.0.2");
  channel = createHttp2Channel({ target: `http://interop.test:${server.port}`, discovery: `static:///${server.key}`, members: 1 });
  await channel.ready(AbortSignal.timeout(10_000));
}, 30_000);
afterAll(async () => {
  await channel?.close();
  await stopAllBrokers();
  await stopRealServers();
});

describe("grpc interop cases: Connect's gRPC transport over dialtone/connect, against grpc's TestService in Python", () => {
  for (const name of CASES) {
    it(name, async () => {
      const transport = createGrpcTransport({ baseUrl: channel.target, sessionManager: createSessionManager(channel) });
      await cases[name](createClient(TestService, transport), createClient(UnimplementedService, transport));
      // Every call's stream closes, however it ended: nothing stays in flight.
      await eventually(() => channel.stats().members.every((m) => m.inFlight === 0), 5_000, "in-flight back to 0");
    });
  }
});

const CLIENT = fileURLToPath(new URL("../fixtures/grpc_interop_client.py", import.meta.url));

describe("grpc interop cases: a Python grpcio client through `dialtone broker` to grpc's TestService in Python", () => {
  it("all 14 cases pass through the broker", async () => {
    const broker = await startBroker(`
listen: ["http://127.0.0.1:0"]
admin: off
upstreams:
  interop:
    target: "http://interop.internal:${server.port}"
    discovery: "static:///${server.key}"
    members: 1
    hosts: ["interop.internal"]
    warm: true
`);
    const address = new URL(broker.listen[0]!).host;
    const out = await new Promise<string>((resolve, reject) => {
      execFile("/usr/bin/python3", [CLIENT, address, "interop.internal", ...CASES], { timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      );
    });
    expect(JSON.parse(out)).toEqual(Object.fromEntries(CASES.map((c) => [c, "ok"])));
  }, 90_000);
});

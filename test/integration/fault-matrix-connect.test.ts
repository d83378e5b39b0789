/**
 * The fault matrix for the HTTP/2 side (issue 21): {Connect unary, Connect
 * server-streaming, channel.stream(), channel.requestStream()} × {RST_STREAM
 * mid-body, TCP closed mid-body, body short of content-length, backend frozen
 * mid-body (member evicted), channel.close() past closeGrace, the caller's
 * abort, a deadline}. Every cell settles within its bound with the error a
 * user of that client expects, and nothing stays in flight.
 *
 * Resets, truncation and the hanging peer come from a raw-frame HTTP/2 server
 * (a mock peer: no real server misbehaves so on purpose; those tests say
 * "mock peer"); the frozen backend is grpc's TestService in Python, SIGSTOPped.
 * Where connect-node alone has an answer, the Connect cells compare with its
 * own session manager against the same peer.
 */
import type { ClientHttp2Stream } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { createSessionManager } from "../../src/adapters/connect.js";
import { DialtoneError, type Http2Channel } from "../../src/index.js";
import { eventually } from "../helpers/channel.js";
import { dataFrame, headersFrame, rstFrame, startRawH2Server, type RawH2Server } from "../helpers/raw-h2.js";
import { startPythonInterop, stopRealServers, type RealServer } from "../helpers/real-servers.js";
import { channelFixture } from "../helpers/setup.js";
import { StreamingOutputCallRequestSchema, TestService } from "../fixtures/grpc-testing.js";

const { open } = channelFixture();
const mocks: RawH2Server[] = [];
afterEach(async () => {
  await Promise.all(mocks.splice(0).map((s) => s.close()));
  await stopRealServers();
});

const NGHTTP2_INTERNAL_ERROR = 2;
const NGHTTP2_CANCEL = 8;
const GRPC_HEAD = { "content-type": "application/grpc" };
/** A gRPC message frame's 5-byte prefix announcing 100 bytes, then only 10 of them: the body is cut mid-message. */
const PARTIAL = Buffer.concat([Buffer.from([0, 0, 0, 0, 100]), Buffer.alloc(10)]);
/** How long any cell may take to settle: generous, since the machine is shared; eviction cells get more. */
const BOUND_MS = 10_000;
const EVICTION_BOUND_MS = 20_000;

type Script = (id: number, write: (b: Buffer) => void, drop: () => void) => void;
const faults = {
  "RST_STREAM mid-body": ((id, w) => (w(headersFrame(id, 200, GRPC_HEAD)), w(dataFrame(id, PARTIAL)), w(rstFrame(id, NGHTTP2_INTERNAL_ERROR)))) as Script,
  "TCP closed mid-body": ((id, w, drop) => (w(headersFrame(id, 200, GRPC_HEAD)), w(dataFrame(id, PARTIAL)), setTimeout(drop, 20))) as Script,
  "body short of content-length": ((id, w) => (w(headersFrame(id, 200, { ...GRPC_HEAD, "content-length": "40" })), w(dataFrame(id, PARTIAL, true)))) as Script,
  /** Head and part of a message, then nothing: for close(), the caller's abort and deadlines. */
  hang: ((id, w) => (w(headersFrame(id, 200, GRPC_HEAD)), w(dataFrame(id, PARTIAL)))) as Script,
};

async function mockPeer(script: Script): Promise<{ srv: RawH2Server; ch: Http2Channel }> {
  const srv = await startRawH2Server("127.0.0.2", script);
  mocks.push(srv);
  const ch = open({
    target: `http://svc.test:${srv.port}`,
    discovery: `static:///127.0.0.2:${srv.port}`,
    members: 1,
    health: { suspectAfter: 0 },
    closeGrace: 200,
  });
  await ch.ready(AbortSignal.timeout(10_000));
  return { srv, ch };
}

/** Resolves with what the operation settled with, or "pending" once `ms` pass. */
async function settle(p: Promise<unknown>, ms: number): Promise<{ ok: true } | { ok: false; error: unknown } | "pending"> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"pending">((resolve) => (timer = setTimeout(() => resolve("pending"), ms)));
  try {
    return await Promise.race([
      p.then(
        () => ({ ok: true as const }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function failsWith(p: Promise<unknown>, ms = BOUND_MS): Promise<unknown> {
  const r = await settle(p, ms);
  expect(r, "the call must settle within its bound").not.toBe("pending");
  expect(r, "the call must fail").toMatchObject({ ok: false });
  return (r as { error: unknown }).error;
}

async function noneInFlight(ch: Http2Channel): Promise<void> {
  await eventually(() => ch.stats().members.every((m) => m.inFlight === 0), 5_000, "in-flight back to 0");
}

async function sawCancel(srv: RawH2Server): Promise<void> {
  await eventually(() => srv.resets.some((r) => r.code === NGHTTP2_CANCEL), 5_000, "RST_STREAM CANCEL at the peer");
}

// ── the four clients ────────────────────────────────────────────────────────

interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Runs once the first response bytes are in (the head and, where there is one, the first message). */
  onFirst?: (backend: string | undefined) => void;
}

const STREAM_REQUEST = create(StreamingOutputCallRequestSchema, { responseParameters: [{ size: 8 }, { size: 8, intervalUs: 30_000_000 }] });
const STREAM_PATH = "/grpc.testing.TestService/StreamingOutputCall";

function grpcFrame(message: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

const connectUnary = (t: Transport, o: CallOptions): Promise<unknown> =>
  createClient(TestService, t).unaryCall({ responseSize: 8 }, { signal: o.signal, timeoutMs: o.timeoutMs });

async function connectStreaming(t: Transport, o: CallOptions): Promise<unknown> {
  let backend: string | undefined;
  const it = createClient(TestService, t).streamingOutputCall(STREAM_REQUEST, {
    signal: o.signal,
    timeoutMs: o.timeoutMs,
    onHeader: (h) => (backend = h.get("x-backend") ?? undefined),
  });
  let first = true;
  for await (const _ of it) {
    if (first) o.onFirst?.(backend);
    first = false;
  }
  return undefined;
}

/** A raw stream as a Node http2 user reads it: resolves on 'end', rejects on 'error'. */
async function rawStream(ch: Http2Channel, o: CallOptions): Promise<unknown> {
  const s: ClientHttp2Stream = await ch.stream({
    method: "POST",
    path: STREAM_PATH,
    headers: { ...GRPC_HEAD, te: "trailers" },
    endStream: false,
    signal: o.signal,
  });
  s.end(grpcFrame(toBinary(StreamingOutputCallRequestSchema, STREAM_REQUEST)));
  return await new Promise((resolve, reject) => {
    let backend: string | undefined;
    let first = true;
    s.on("response", (h) => (backend = h["x-backend"] as string | undefined));
    s.on("data", () => {
      if (first) o.onFirst?.(backend);
      first = false;
    });
    s.once("end", () => resolve(undefined));
    s.once("error", reject);
  });
}

/** requestStream()'s body read as an event-driven pump does: 'end' or 'error'. */
async function requestStream(ch: Http2Channel, o: CallOptions): Promise<unknown> {
  const res = await ch.requestStream({
    method: "POST",
    path: STREAM_PATH,
    headers: { ...GRPC_HEAD, te: "trailers" },
    body: grpcFrame(toBinary(StreamingOutputCallRequestSchema, STREAM_REQUEST)),
    signal: o.signal,
  });
  const backend = res.headers["x-backend"] as string | undefined;
  return await new Promise((resolve, reject) => {
    let first = true;
    res.body.on("data", () => {
      if (first) o.onFirst?.(backend);
      first = false;
    });
    res.body.once("end", () => resolve(undefined));
    res.body.once("error", reject);
  });
}

const viaDialtone = (ch: Http2Channel): Transport => createGrpcTransport({ baseUrl: ch.target, sessionManager: createSessionManager(ch) });
const connectAlone = (srv: RawH2Server): Transport => createGrpcTransport({ baseUrl: `http://127.0.0.2:${srv.port}` });

function connectCode(err: unknown): Code {
  expect(err).toBeInstanceOf(ConnectError);
  return (err as ConnectError).code;
}

function dialtoneCause(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  expect(cause).toBeInstanceOf(DialtoneError);
  return (cause as DialtoneError).code;
}

function dialtoneCode(err: unknown): string {
  expect(err).toBeInstanceOf(DialtoneError);
  return (err as DialtoneError).code;
}

// ── faults the peer causes ──────────────────────────────────────────────────

describe("fault matrix: faults from the peer (raw-frame HTTP/2 server: a mock peer)", () => {
  const connectRows = { "Connect unary": connectUnary, "Connect server-streaming": connectStreaming };

  for (const [row, call] of Object.entries(connectRows)) {
    it(`mock peer: ${row} × RST_STREAM mid-body and short of content-length fail INTERNAL, as with connect-node's own session manager`, async () => {
      for (const fault of ["RST_STREAM mid-body", "body short of content-length"] as const) {
        const { srv, ch } = await mockPeer(faults[fault]);
        const ours = await failsWith(call(viaDialtone(ch), {}));
        const theirs = await failsWith(call(connectAlone(srv), {}));
        expect([fault, connectCode(ours)]).toEqual([fault, Code.Internal]);
        expect([fault, connectCode(theirs)]).toEqual([fault, Code.Internal]);
        await noneInFlight(ch);
      }
    });

    it(`mock peer: ${row} × TCP closed mid-body fails UNAVAILABLE (the member is lost), where connect-node alone says CANCELED`, async () => {
      const { srv, ch } = await mockPeer(faults["TCP closed mid-body"]);
      const ours = await failsWith(call(viaDialtone(ch), {}));
      expect(connectCode(ours)).toBe(Code.Unavailable);
      expect(dialtoneCause(ours)).toBe("ERR_DIALTONE_MEMBER_LOST");
      const theirs = await failsWith(call(connectAlone(srv), {}));
      expect(connectCode(theirs)).toBe(Code.Canceled);
      await noneInFlight(ch);
    });
  }

  it("mock peer: a stream refused with RST_STREAM(REFUSED_STREAM) fails Connect UNAVAILABLE, where connect-node alone says INTERNAL (Node's stream error comes before its rstCode mapping)", async () => {
    const NGHTTP2_REFUSED_STREAM = 7;
    for (const call of [connectUnary, connectStreaming]) {
      const { srv, ch } = await mockPeer((id, w) => w(rstFrame(id, NGHTTP2_REFUSED_STREAM)));
      expect(connectCode(await failsWith(call(viaDialtone(ch), {})))).toBe(Code.Unavailable);
      expect(connectCode(await failsWith(call(connectAlone(srv), {})))).toBe(Code.Internal);
      await noneInFlight(ch);
    }
  });

  it("mock peer: channel.stream() × RST_STREAM mid-body, TCP closed mid-body, short of content-length: the stream emits 'error'", async () => {
    for (const [fault, expected] of [
      ["RST_STREAM mid-body", "ERR_HTTP2_STREAM_ERROR"],
      ["TCP closed mid-body", "ERR_DIALTONE_MEMBER_LOST"],
      ["body short of content-length", "ERR_HTTP2_STREAM_ERROR"],
    ] as const) {
      const { ch } = await mockPeer(faults[fault]);
      const err = await failsWith(rawStream(ch, {}));
      // A peer's reset is Node's own stream error, as on any Node http2 stream; a lost member is dialtone's.
      expect([fault, (err as { code?: string }).code]).toEqual([fault, expected]);
      await noneInFlight(ch);
    }
  });

  it("mock peer: channel.requestStream() × RST_STREAM mid-body, TCP closed mid-body, short of content-length: the body emits 'error' (a DialtoneError)", async () => {
    for (const [fault, expected] of [
      ["RST_STREAM mid-body", ["ERR_DIALTONE_STREAM"]],
      ["TCP closed mid-body", ["ERR_DIALTONE_MEMBER_LOST"]],
      ["body short of content-length", ["ERR_DIALTONE_STREAM", "ERR_DIALTONE_INCOMPLETE_RESPONSE"]],
    ] as const) {
      const { ch } = await mockPeer(faults[fault]);
      const err = await failsWith(requestStream(ch, {}));
      expect(expected).toContain(dialtoneCode(err));
      await noneInFlight(ch);
    }
  });
});

// ── endings dialtone or the caller cause ────────────────────────────────────

describe("fault matrix: close past closeGrace, the caller's abort, a deadline (raw-frame HTTP/2 server that stops mid-body: a mock peer)", () => {
  it("mock peer: channel.close() past closeGrace fails every row — Connect UNAVAILABLE (ClosedError cause), stream() and requestStream() ClosedError — with RST_STREAM CANCEL on the wire", async () => {
    const rows: Array<[string, (ch: Http2Channel) => Promise<unknown>, (err: unknown) => void]> = [
      [
        "Connect unary",
        (ch) => connectUnary(viaDialtone(ch), {}),
        (e) => (expect(connectCode(e)).toBe(Code.Unavailable), expect(dialtoneCause(e)).toBe("ERR_DIALTONE_CLOSED")),
      ],
      [
        "Connect server-streaming",
        (ch) => connectStreaming(viaDialtone(ch), {}),
        (e) => (expect(connectCode(e)).toBe(Code.Unavailable), expect(dialtoneCause(e)).toBe("ERR_DIALTONE_CLOSED")),
      ],
      ["channel.stream()", (ch) => rawStream(ch, {}), (e) => expect(dialtoneCode(e)).toBe("ERR_DIALTONE_CLOSED")],
      ["channel.requestStream()", (ch) => requestStream(ch, {}), (e) => expect(dialtoneCode(e)).toBe("ERR_DIALTONE_CLOSED")],
    ];
    for (const [row, call, check] of rows) {
      const { srv, ch } = await mockPeer(faults.hang);
      const pending = call(ch);
      await eventually(() => srv.requests === 1 && ch.stats().members.some((m) => m.inFlight === 1), 5_000, `${row} in flight`);
      const closing = ch.close();
      check(await failsWith(pending));
      await closing;
      await sawCancel(srv);
      expect(ch.stats().members.every((m) => m.inFlight === 0)).toBe(true);
    }
  });

  it("mock peer: the caller's abort — Connect CANCELED as with connect-node alone, stream() and requestStream() AbortedError — with RST_STREAM CANCEL on the wire", async () => {
    for (const [row, call] of Object.entries({ "Connect unary": connectUnary, "Connect server-streaming": connectStreaming })) {
      const { srv, ch } = await mockPeer(faults.hang);
      for (const t of [viaDialtone(ch), connectAlone(srv)]) {
        const ac = new AbortController();
        const pending = call(t, { signal: ac.signal });
        await eventually(() => srv.requests > srv.resets.length, 5_000, `${row} sent`);
        ac.abort();
        expect([row, connectCode(await failsWith(pending))]).toEqual([row, Code.Canceled]);
      }
      await sawCancel(srv);
      await noneInFlight(ch);
    }
    for (const [row, call] of Object.entries({ "channel.stream()": rawStream, "channel.requestStream()": requestStream })) {
      const { srv, ch } = await mockPeer(faults.hang);
      const ac = new AbortController();
      const reason = new Error("caller gave up");
      const pending = call(ch, { signal: ac.signal });
      await eventually(() => ch.stats().members.some((m) => m.inFlight === 1) && srv.requests === 1, 5_000, `${row} in flight`);
      ac.abort(reason);
      const err = await failsWith(pending);
      expect([row, dialtoneCode(err)]).toEqual([row, "ERR_DIALTONE_ABORTED"]);
      expect((err as Error).cause).toBe(reason);
      await sawCancel(srv);
      await noneInFlight(ch);
    }
  });

  it("mock peer: a deadline — Connect DEADLINE_EXCEEDED as with connect-node alone, stream() and requestStream() AbortedError from AbortSignal.timeout", async () => {
    for (const [row, call] of Object.entries({ "Connect unary": connectUnary, "Connect server-streaming": connectStreaming })) {
      const { srv, ch } = await mockPeer(faults.hang);
      for (const t of [viaDialtone(ch), connectAlone(srv)]) {
        expect([row, connectCode(await failsWith(call(t, { timeoutMs: 300 })))]).toEqual([row, Code.DeadlineExceeded]);
      }
      await noneInFlight(ch);
    }
    for (const [row, call] of Object.entries({ "channel.stream()": rawStream, "channel.requestStream()": requestStream })) {
      const { srv, ch } = await mockPeer(faults.hang);
      const err = await failsWith(call(ch, { signal: AbortSignal.timeout(300) }));
      expect([row, dialtoneCode(err)]).toEqual([row, "ERR_DIALTONE_ABORTED"]);
      expect(((err as Error).cause as Error).name).toBe("TimeoutError");
      await sawCancel(srv);
      await noneInFlight(ch);
    }
  });

  it("mock peer that never sends a head: requestStream()'s own timeout fails it with RequestTimeoutError", async () => {
    const { srv, ch } = await mockPeer(() => {});
    const err = await failsWith(ch.requestStream({ path: "/", timeout: 300 }));
    expect(dialtoneCode(err)).toBe("ERR_DIALTONE_REQUEST_TIMEOUT");
    await sawCancel(srv);
    await noneInFlight(ch);
  });
});

// ── a backend frozen mid-body ───────────────────────────────────────────────

describe("fault matrix: a backend frozen mid-body is evicted, and its calls fail (grpc's TestService in Python, SIGSTOPped)", () => {
  async function twoMembers(): Promise<{ servers: RealServer[]; ch: Http2Channel }> {
    const servers = [await startPythonInterop("127.0.0.2"), await startPythonInterop("127.0.0.3")];
    const ch = open({
      target: `http://interop.test:${servers[0]!.port}`,
      discovery: `static:///${servers.map((s) => s.key).join(",")}`,
      members: 2,
      // In-flight cost over two members: a second concurrent call always goes to the other member.
      balancer: "in-flight",
      // Timeouts generous enough that the live member never misses two PINGs on a loaded machine
      // (that would make the channel degraded, and a degraded channel evicts nobody).
      health: { interval: 500, timeout: 1000, unhealthyAfter: 2, suspectAfter: 0 },
      connectTimeout: 1000,
    });
    await ch.ready(AbortSignal.timeout(10_000));
    return { servers, ch };
  }

  const freezeOnFirst = (servers: RealServer[]) => (backend: string | undefined) => servers.find((s) => s.key === backend)?.freeze();

  it("Connect unary calls without a deadline: the one on the frozen member fails UNAVAILABLE (MemberLostError cause) once it is evicted; the other succeeds", async () => {
    const { servers, ch } = await twoMembers();
    servers[0]!.freeze();
    const t = viaDialtone(ch);
    const calls = [settle(connectUnary(t, {}), EVICTION_BOUND_MS), settle(connectUnary(t, {}), EVICTION_BOUND_MS)];
    // connect-node's own session manager, PINGing as the channel does, fails its call to the frozen backend UNAVAILABLE too ("PING timed out").
    const alone = createGrpcTransport({ baseUrl: `http://${servers[0]!.key}`, pingIntervalMs: 250, pingTimeoutMs: 500 });
    expect(connectCode(await failsWith(connectUnary(alone, {}), EVICTION_BOUND_MS))).toBe(Code.Unavailable);
    const results = await Promise.all(calls);
    const failed = results.filter((r) => r !== "pending" && !r.ok) as Array<{ error: unknown }>;
    expect(results.filter((r) => r !== "pending" && r.ok)).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(connectCode(failed[0]!.error)).toBe(Code.Unavailable);
    expect(dialtoneCause(failed[0]!.error)).toBe("ERR_DIALTONE_MEMBER_LOST");
    await noneInFlight(ch);
  }, 60_000);

  it("Connect server-streaming: the backend that sent the first message is SIGKILLed; the call fails UNAVAILABLE (MemberLostError cause), not CANCELED", async () => {
    const { servers, ch } = await twoMembers();
    const kill = (backend: string | undefined): void => void servers.find((s) => s.key === backend)?.kill();
    const err = await failsWith(connectStreaming(viaDialtone(ch), { onFirst: kill }));
    expect(connectCode(err)).toBe(Code.Unavailable);
    expect(dialtoneCause(err)).toBe("ERR_DIALTONE_MEMBER_LOST");
    await noneInFlight(ch);
  }, 60_000);

  for (const [row, call, check] of [
    [
      "Connect server-streaming",
      (ch: Http2Channel, o: CallOptions) => connectStreaming(viaDialtone(ch), o),
      (e: unknown) => (expect(connectCode(e)).toBe(Code.Unavailable), expect(dialtoneCause(e)).toBe("ERR_DIALTONE_MEMBER_LOST")),
    ],
    ["channel.stream()", rawStream, (e: unknown) => expect(dialtoneCode(e)).toBe("ERR_DIALTONE_MEMBER_LOST")],
    ["channel.requestStream()", requestStream, (e: unknown) => expect(dialtoneCode(e)).toBe("ERR_DIALTONE_MEMBER_LOST")],
  ] as const) {
    it(`${row}: the backend that sent the first message is frozen; the member is evicted and the reader gets an error, not an end`, async () => {
      const { servers, ch } = await twoMembers();
      const err = await failsWith(call(ch, { onFirst: freezeOnFirst(servers) }), EVICTION_BOUND_MS);
      check(err);
      await noneInFlight(ch);
    }, 60_000);
  }
});

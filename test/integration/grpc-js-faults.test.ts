/**
 * grpc-js on dialtone (`createGrpcChannel` as `channelOverride`) when things
 * go wrong, beside grpc-js alone where it has an answer:
 * - faults no real server produces on purpose, from a raw-frame HTTP/2
 *   server (a mock peer; those tests say so): REFUSED_STREAM (transparent
 *   retry), RST_STREAM and a TCP close mid-body, a peer that hangs (cancel,
 *   deadline: RST_STREAM CANCEL on the wire);
 * - bad metadata, no member within the acquire timeout, connectivity state;
 * - SIGKILL and SIGSTOP of one of three grpc-js TestService backends under
 *   load, and their grpc.health.v1 check saying NOT_SERVING: every call
 *   settles, and the lost member leaves rotation.
 */
import net from "node:net";
import grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { createGrpcChannel, type DialtoneGrpcChannel } from "../../src/adapters/grpc-js.js";
import type { Http2Channel, Http2ChannelOptions } from "../../src/index.js";
import { eventually } from "../helpers/channel.js";
import { drain, loadTesting, unary, type AnyClient, type Ended } from "../helpers/grpc-js.js";
import { dataFrame, headersFrame, rstFrame, startRawH2Server, trailersFrame, type RawH2Server } from "../helpers/raw-h2.js";
import { startGrpcJsInterop, stopRealServers, type GrpcServer } from "../helpers/real-servers.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();
const mocks: RawH2Server[] = [];
const clients: AnyClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(mocks.splice(0).map((s) => s.close()));
  await stopRealServers();
});

const S = grpc.status;
const { TestService } = loadTesting(grpc);
const NGHTTP2_REFUSED_STREAM = 7;
const NGHTTP2_INTERNAL_ERROR = 2;
const NGHTTP2_CANCEL = 8;
const GRPC_HEAD = { "content-type": "application/grpc" };
/** A message prefix announcing 100 bytes, then 10 of them: the body stops mid-message. */
const PARTIAL = Buffer.concat([Buffer.from([0, 0, 0, 0, 100]), Buffer.alloc(10)]);
/** One empty message (a default Empty or response), framed. */
const EMPTY_MESSAGE = Buffer.alloc(5);
const BOUND_MS = 10_000;

type Script = (id: number, write: (b: Buffer) => void, drop: () => void) => void;
const answer: Script = (id, w) => (w(headersFrame(id, 200, GRPC_HEAD)), w(dataFrame(id, EMPTY_MESSAGE)), w(trailersFrame(id, { "grpc-status": "0" })));
const hang: Script = (id, w) => (w(headersFrame(id, 200, GRPC_HEAD)), w(dataFrame(id, PARTIAL)));

function client(ch: Http2Channel, grpcChannel: DialtoneGrpcChannel = createGrpcChannel(ch)): AnyClient {
  const c = new TestService(ch.target, grpc.credentials.createInsecure(), { channelOverride: grpcChannel });
  clients.push(c);
  return c;
}

function alone(address: string): AnyClient {
  const c = new TestService(address, grpc.credentials.createInsecure());
  clients.push(c);
  return c;
}

async function mockPeer(script: Script, options: Partial<Http2ChannelOptions> = {}): Promise<{ srv: RawH2Server; ch: Http2Channel }> {
  const srv = await startRawH2Server("127.0.0.2", script);
  mocks.push(srv);
  const ch = open({ target: `http://svc.test:${srv.port}`, discovery: `static:///127.0.0.2:${srv.port}`, members: 1, health: { suspectAfter: 0 }, ...options });
  await ch.ready(AbortSignal.timeout(10_000));
  return { srv, ch };
}

/** Settles within `ms` or fails the test: no call may stay pending. */
async function within<T>(p: Promise<T>, ms = BOUND_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function noneInFlight(ch: Http2Channel): Promise<void> {
  await eventually(() => ch.stats().members.every((m) => m.inFlight === 0), 5_000, "in-flight back to 0");
}

const emptyCall = (c: AnyClient, md = new grpc.Metadata(), deadlineMs = BOUND_MS): Promise<Ended<unknown>> =>
  unary((cb) => c.EmptyCall({}, md, { deadline: Date.now() + deadlineMs }, cb));
const streamCall = (c: AnyClient, deadlineMs = BOUND_MS): grpc.ClientReadableStream<unknown> =>
  c.StreamingOutputCall({ responseParameters: [{ size: 8 }] }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs });

describe("grpc-js on dialtone: faults from the peer (raw-frame HTTP/2 server: a mock peer)", () => {
  it("mock peer: REFUSED_STREAM is retried transparently — a unary call and a streaming request both succeed, on a second stream", async () => {
    let seen = 0;
    const refuseFirst: Script = (id, w, drop) => (++seen % 2 === 1 ? w(rstFrame(id, NGHTTP2_REFUSED_STREAM)) : answer(id, w, drop));
    const { srv, ch } = await mockPeer(refuseFirst);
    const c = client(ch);
    const u = await within(emptyCall(c));
    expect(u.status.code).toBe(S.OK);
    expect(srv.requests).toBe(2);
    // A streaming request: its first message has left when the refusal comes, so dialtone replays it from the call's buffer.
    const s = await within(
      unary((cb) => {
        const call = c.StreamingInputCall(new grpc.Metadata(), { deadline: Date.now() + BOUND_MS }, cb);
        call.write({ payload: { body: Buffer.alloc(100) } });
        setTimeout(() => (call.write({ payload: { body: Buffer.alloc(100) } }), call.end()), 50);
        return call;
      }),
    );
    expect(s.status.code).toBe(S.OK);
    expect(srv.requests).toBe(4);
    await noneInFlight(ch);
  });

  it("mock peer: RST_STREAM mid-body fails INTERNAL, as grpc-js alone says", async () => {
    const { srv, ch } = await mockPeer((id, w) => (w(headersFrame(id, 200, GRPC_HEAD)), w(dataFrame(id, PARTIAL)), w(rstFrame(id, NGHTTP2_INTERNAL_ERROR))));
    const ours = await within(drain(streamCall(client(ch))));
    const theirs = await within(drain(streamCall(alone(`127.0.0.2:${srv.port}`))));
    expect([ours.status.code, theirs.status.code]).toEqual([S.INTERNAL, S.INTERNAL]);
    await noneInFlight(ch);
  });

  it("mock peer: the TCP connection closed mid-body fails UNAVAILABLE (the member is lost), as grpc-js alone says", async () => {
    const { srv, ch } = await mockPeer((id, w, drop) => (w(headersFrame(id, 200, GRPC_HEAD)), w(dataFrame(id, PARTIAL)), setTimeout(drop, 20)));
    const ours = await within(drain(streamCall(client(ch))));
    expect(ours.status.code).toBe(S.UNAVAILABLE);
    expect(ours.status.details).toMatch(/member lost|lost/i);
    const theirs = await within(drain(streamCall(alone(`127.0.0.2:${srv.port}`))));
    expect(theirs.status.code).toBe(S.UNAVAILABLE);
    await noneInFlight(ch);
  });

  it("mock peer: cancel mid-stream ends the call CANCELLED and sends RST_STREAM CANCEL", async () => {
    const { srv, ch } = await mockPeer(hang);
    const call = streamCall(client(ch));
    const ended = drain(call);
    await new Promise<void>((resolve) => call.once("metadata", () => resolve()));
    call.cancel();
    expect((await within(ended)).status.code).toBe(S.CANCELLED);
    await eventually(() => srv.resets.some((r) => r.code === NGHTTP2_CANCEL), 5_000, "RST_STREAM CANCEL at the peer");
    await noneInFlight(ch);
  });

  it("mock peer: the deadline ends the call DEADLINE_EXCEEDED and sends RST_STREAM CANCEL", async () => {
    const { srv, ch } = await mockPeer(hang);
    const r = await within(drain(streamCall(client(ch), 300)));
    expect(r.status.code).toBe(S.DEADLINE_EXCEEDED);
    await eventually(() => srv.resets.some((x) => x.code === NGHTTP2_CANCEL), 5_000, "RST_STREAM CANCEL at the peer");
    await noneInFlight(ch);
  });
});

describe("grpc-js on dialtone: refused before anything is sent, no member, connectivity", () => {
  it("metadata that names a reserved header fails INTERNAL and never reaches the peer", async () => {
    const { srv, ch } = await mockPeer(answer);
    const c = client(ch);
    for (const key of ["content-type", "te", "grpc-timeout", "grpc-custom", "connection"]) {
      const md = new grpc.Metadata();
      md.set(key, "x");
      const r = await within(emptyCall(c, md));
      expect([key, r.status.code]).toEqual([key, S.INTERNAL]);
      expect(r.status.details).toContain(key);
    }
    expect(srv.requests).toBe(0);
  });

  it("no member within acquireTimeout: UNAVAILABLE naming the last connection error; the state is TRANSIENT_FAILURE", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.2", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const ch = open({ target: `http://svc.test:${port}`, discovery: `static:///127.0.0.2:${port}`, members: 1, acquireTimeout: 300 });
    const gch = createGrpcChannel(ch);
    const r = await within(emptyCall(client(ch, gch)));
    expect(r.status.code).toBe(S.UNAVAILABLE);
    expect(r.status.details).toMatch(/last connection error: .*ECONNREFUSED/);
    expect(gch.getConnectivityState(true)).toBe(grpc.connectivityState.TRANSIENT_FAILURE);
  });

  it("connectivity: CONNECTING → READY as waitForReady sees it, SHUTDOWN after close (new calls UNAVAILABLE, the dialtone channel stays open)", async () => {
    const srv = await startRawH2Server("127.0.0.2", answer);
    mocks.push(srv);
    const ch = open({ target: `http://svc.test:${srv.port}`, discovery: `static:///127.0.0.2:${srv.port}`, members: 1 });
    const gch = createGrpcChannel(ch);
    const c = client(ch, gch);
    await within(new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + BOUND_MS, (err) => (err ? reject(err) : resolve()))));
    expect(gch.getConnectivityState(false)).toBe(grpc.connectivityState.READY);
    const watched = new Promise<void>((resolve) => gch.watchConnectivityState(grpc.connectivityState.READY, Infinity, () => resolve()));
    gch.close();
    await within(watched);
    expect(gch.getConnectivityState(false)).toBe(grpc.connectivityState.SHUTDOWN);
    const r = await within(emptyCall(c));
    expect(r.status.code).toBe(S.UNAVAILABLE);
    expect(ch.connected).toBe(true);
    // A watch whose deadline passes first is called back with an error.
    const late = await within(
      new Promise<Error | undefined>((resolve) => gch.watchConnectivityState(grpc.connectivityState.SHUTDOWN, Date.now() + 50, resolve)),
    );
    expect(late).toBeInstanceOf(Error);
  });
});

describe("grpc-js on dialtone: one of three grpc-js TestService backends killed, frozen, or NOT_SERVING", () => {
  async function three(): Promise<{ backends: GrpcServer[]; ch: Http2Channel; c: AnyClient }> {
    const backends = await Promise.all(["127.0.0.2", "127.0.0.3", "127.0.0.4"].map((h) => startGrpcJsInterop(h)));
    const ch = open({
      target: `http://interop.test:${backends[0]!.port}`,
      discovery: `static:///${backends.map((b) => b.key).join(",")}`,
      members: 3,
      health: { check: { grpc: { service: "" } } },
    });
    await ch.ready(AbortSignal.timeout(15_000));
    return { backends, ch, c: client(ch) };
  }

  /** Unary calls from `workers` loops until `stop`; every call's outcome. */
  function load(c: AnyClient, workers: number, stop: () => boolean): Promise<Array<{ code: grpc.status; backend: unknown }>> {
    const out: Array<{ code: grpc.status; backend: unknown }> = [];
    const loop = async (): Promise<void> => {
      while (!stop()) {
        const r = await within(unary((cb) => c.UnaryCall({ responseSize: 16 }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, cb)));
        out.push({ code: r.status.code, backend: r.headers?.get("x-backend")[0] });
        // A loop of calls that fail at once must still let timers and I/O run.
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    return Promise.all(Array.from({ length: workers }, loop)).then(() => out);
  }

  it("SIGKILL: every call settles (OK or UNAVAILABLE), and calls soon go only to the two live backends", async () => {
    const { backends, ch, c } = await three();
    const victim = backends[1]!;
    let stop = false;
    const running = load(c, 8, () => stop);
    await eventually(() => ch.stats().members.every((m) => m.inFlight > 0), 10_000, "every member busy");
    await victim.kill();
    await eventually(() => ch.stats().members.every((m) => m.address !== victim.key || m.state !== "ready"), 15_000, "killed member out of rotation");
    stop = true;
    const outcomes = await within(running, 20_000);
    expect(outcomes.length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.code !== S.OK && o.code !== S.UNAVAILABLE)).toEqual([]);
    const after = await within(
      load(
        c,
        1,
        (
          (n) => () =>
            n++ >= 30
        )(0),
      ),
    );
    expect(after.map((o) => [o.code, o.backend === victim.key])).toEqual(after.map(() => [S.OK, false]));
    await noneInFlight(ch);
  }, 60_000);

  it("SIGSTOP: every call settles (the ones on the frozen backend UNAVAILABLE when its member is evicted), and calls then avoid it", async () => {
    const { backends, ch, c } = await three();
    const victim = backends[2]!;
    let stop = false;
    const running = load(c, 8, () => stop);
    await eventually(() => ch.stats().members.every((m) => m.inFlight > 0), 10_000, "every member busy");
    victim.freeze();
    try {
      await eventually(() => ch.stats().members.every((m) => m.address !== victim.key || m.state !== "ready"), 15_000, "frozen member out of rotation");
      stop = true;
      const outcomes = await within(running, 20_000);
      expect(outcomes.filter((o) => o.code !== S.OK && o.code !== S.UNAVAILABLE)).toEqual([]);
      const after = await within(
        load(
          c,
          1,
          (
            (n) => () =>
              n++ >= 30
          )(0),
        ),
      );
      expect(after.map((o) => [o.code, o.backend === victim.key])).toEqual(after.map(() => [S.OK, false]));
    } finally {
      victim.thaw();
    }
    await noneInFlight(ch);
  }, 60_000);

  it("grpc.health.v1 NOT_SERVING on one backend takes its member out of rotation; grpc-js calls keep succeeding on the others", async () => {
    const { backends, ch, c } = await three();
    const victim = backends[0]!;
    victim.notServing();
    await eventually(() => ch.stats().members.every((m) => m.address !== victim.key || m.state !== "ready"), 15_000, "NOT_SERVING member out of rotation");
    const after = await within(
      load(
        c,
        2,
        (
          (n) => () =>
            n++ >= 30
        )(0),
      ),
    );
    expect(after.map((o) => [o.code, o.backend === victim.key])).toEqual(after.map(() => [S.OK, false]));
    await noneInFlight(ch);
  }, 60_000);
});

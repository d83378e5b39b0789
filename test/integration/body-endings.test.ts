/**
 * A response body that fails after its head must say so to its reader with an
 * 'error' event (a DialtoneError), not just 'close': a reader that listens for
 * 'end'/'error' only (an adapter's body pump, a pipeline) would otherwise wait
 * for good. The faults come from a raw-frame HTTP/2 server (a mock peer: no real
 * server cuts a body this way on purpose), so each test names it.
 */
import type { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { DialtoneError } from "../../src/index.js";
import { dataFrame, headersFrame, rstFrame, startRawH2Server, type RawH2Server } from "../helpers/raw-h2.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();
const servers: RawH2Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

type Script = (id: number, write: (b: Buffer) => void, cut: () => void) => void;
const NGHTTP2_INTERNAL_ERROR = 2;

const cuts: Array<{ name: string; script: Script; code: string | string[] }> = [
  {
    name: "RST_STREAM(INTERNAL_ERROR) after the head and a DATA frame",
    script: (id, w) => (w(headersFrame(id, 200)), w(dataFrame(id, "half")), w(rstFrame(id, NGHTTP2_INTERNAL_ERROR))),
    code: "ERR_DIALTONE_STREAM",
  },
  {
    name: "RST_STREAM(NO_ERROR) after the head and a DATA frame",
    script: (id, w) => (w(headersFrame(id, 200)), w(dataFrame(id, "half")), w(rstFrame(id, 0))),
    code: "ERR_DIALTONE_INCOMPLETE_RESPONSE",
  },
  {
    name: "the TCP connection closed after the head and a DATA frame",
    script: (id, w, cut) => (w(headersFrame(id, 200)), w(dataFrame(id, "half")), setTimeout(cut, 20)),
    code: "ERR_DIALTONE_MEMBER_LOST",
  },
  {
    name: "END_STREAM on a body shorter than its content-length",
    script: (id, w) => (w(headersFrame(id, 200, { "content-length": "10" })), w(dataFrame(id, "half", true))),
    // nghttp2 checks content-length itself and resets the stream (PROTOCOL_ERROR); the exchange's own check is the backstop.
    code: ["ERR_DIALTONE_STREAM", "ERR_DIALTONE_INCOMPLETE_RESPONSE"],
  },
];

/** Reads the body the way an event-driven pump does: 'data', then 'end' or 'error'; resolves with how it ended (or "pending" after 10 s). */
function pump(body: Readable): Promise<{ ended: "end" | "error" | "pending"; error?: unknown; bytes: number }> {
  return new Promise((resolve) => {
    let bytes = 0;
    setTimeout(() => resolve({ ended: "pending", bytes }), 10_000).unref();
    body.on("data", (c: Buffer) => (bytes += c.length));
    body.once("end", () => resolve({ ended: "end", bytes }));
    body.once("error", (error) => resolve({ ended: "error", error, bytes }));
  });
}

describe("a response body cut after its head emits 'error' to its reader (raw-frame HTTP/2 server: a mock peer)", () => {
  for (const c of cuts) {
    it(`mock peer: ${c.name} — requestStream()'s body emits 'error' with ${String(c.code)}, trailers reject, nothing stays in flight`, async () => {
      const srv = await startRawH2Server("127.0.0.2", c.script);
      servers.push(srv);
      const ch = open({ target: `http://svc.test:${srv.port}`, discovery: `static:///127.0.0.2:${srv.port}`, members: 1, health: { suspectAfter: 0 } });
      await ch.ready(AbortSignal.timeout(10_000));
      const res = await ch.requestStream({ path: "/" });
      expect(res.status).toBe(200);
      const outcome = await pump(res.body);
      expect(outcome.ended).toBe("error");
      expect(outcome.error).toBeInstanceOf(DialtoneError);
      expect([c.code].flat()).toContain((outcome.error as DialtoneError).code);
      await expect(res.trailers).rejects.toBe(outcome.error);
      expect(ch.stats().members.reduce((n, m) => n + m.inFlight, 0)).toBe(0);
    });
  }

  it("mock peer that completes the response, then closes the TCP connection: a reader who reads only afterwards still gets the whole body and 'end'", async () => {
    // 60000 bytes: past the body's buffer, so most of it still waits in Node's stream when the connection goes.
    const body = Buffer.alloc(60_000, 0x61);
    const srv = await startRawH2Server("127.0.0.2", (id, w, drop) => {
      w(headersFrame(id, 200, { "content-length": String(body.length) }));
      for (let at = 0; at < body.length; at += 16_384) w(dataFrame(id, body.subarray(at, Math.min(at + 16_384, body.length)), at + 16_384 >= body.length));
      setTimeout(drop, 20);
    });
    servers.push(srv);
    const ch = open({ target: `http://svc.test:${srv.port}`, discovery: `static:///127.0.0.2:${srv.port}`, members: 1, health: { suspectAfter: 0 } });
    await ch.ready(AbortSignal.timeout(10_000));
    const res = await ch.requestStream({ path: "/" });
    // The connection is gone before the reader starts: a complete response stays complete.
    await new Promise((r) => setTimeout(r, 200));
    const chunks: Buffer[] = [];
    res.body.on("data", (c: Buffer) => chunks.push(c));
    expect((await pump(res.body)).ended).toBe("end");
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
    await expect(res.trailers).resolves.toEqual({});
  });

  it("mock peer that never ends the body: a reader that destroys it with its own error gets that error, and the peer gets RST_STREAM CANCEL", async () => {
    const srv = await startRawH2Server("127.0.0.2", (id, w) => (w(headersFrame(id, 200)), w(dataFrame(id, "first"))));
    servers.push(srv);
    const ch = open({ target: `http://svc.test:${srv.port}`, discovery: `static:///127.0.0.2:${srv.port}`, members: 1, health: { suspectAfter: 0 } });
    await ch.ready(AbortSignal.timeout(10_000));
    const res = await ch.requestStream({ path: "/" });
    const ended = pump(res.body);
    const mine = new Error("reader gave up");
    res.body.destroy(mine);
    const outcome = await ended;
    expect(outcome).toMatchObject({ ended: "error", error: mine });
    await expect(res.trailers).rejects.toBe(mine);
    const deadline = Date.now() + 10_000;
    while (srv.resets.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(srv.resets).toEqual([{ streamId: 1, code: 8 }]);
    expect(ch.stats().members.reduce((n, m) => n + m.inFlight, 0)).toBe(0);
  });
});

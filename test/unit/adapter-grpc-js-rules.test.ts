/**
 * dialtone/grpc-js's pure rules, without sockets: which methods count as
 * idempotent (dialtone's setting and grpc-js's service config), grpc-timeout
 * as grpc-js writes it, metadata → headers (reserved names refused), message
 * framing, and how failures map to gRPC status codes.
 */
import grpc from "@grpc/grpc-js";
import { describe, expect, it, vi } from "vitest";
import { AbortPool } from "../../src/core/abort-pool.js";
import { timeLeft } from "../../src/adapters/grpc-js-call.js";
import { frame, FrameDecoder, FrameTooLargeError } from "../../src/adapters/grpc-js-framing.js";
import { requestHeaders, timeoutHeader } from "../../src/adapters/grpc-js-metadata.js";
import { idempotentMethods } from "../../src/adapters/grpc-js-methods.js";
import { statusFromError, statusFromHttp, statusFromTrailers } from "../../src/adapters/grpc-js-status.js";
import { BadRequestError, NoMemberError, RequestError } from "../../src/index.js";

describe("idempotent methods", () => {
  it("dialtone's setting: exact paths, whole services, or a function", () => {
    const f = idempotentMethods(["/a.S/Get", "/b.T/"], undefined);
    expect(["/a.S/Get", "/a.S/Put", "/b.T/Any", "/b.Tx/Any"].map(f)).toEqual([true, false, true, false]);
    expect(idempotentMethods((m) => m.endsWith("/Get"), undefined)("/x.Y/Get")).toBe(true);
    expect(() => idempotentMethods(["a.S/Get"], undefined)).toThrow(TypeError);
  });

  it("grpc-js's service config: methods with a retryPolicy or hedgingPolicy, by gRFC A6 name matching", () => {
    const config = JSON.stringify({
      methodConfig: [
        { name: [{ service: "a.S", method: "Get" }], retryPolicy: { maxAttempts: 2 } },
        { name: [{ service: "b.T" }], hedgingPolicy: { maxAttempts: 2 } },
        { name: [{ service: "c.U" }], timeout: "1s" },
      ],
    });
    const f = idempotentMethods(undefined, config);
    expect(["/a.S/Get", "/a.S/Put", "/b.T/Any", "/c.U/Any"].map(f)).toEqual([true, false, true, false]);
    expect(idempotentMethods(undefined, { methodConfig: [{ name: [{}], retryPolicy: {} }] })("/any.S/M")).toBe(true);
  });
});

describe("grpc-timeout", () => {
  it("at most 8 digits, in the finest unit that fits, rounded up", () => {
    expect([timeoutHeader(1), timeoutHeader(0.2), timeoutHeader(1500), timeoutHeader(99_999_999), timeoutHeader(100_000_000)]).toEqual([
      "1m",
      "1m",
      "1500m",
      "99999999m",
      "100000S",
    ]);
  });
});

describe("metadata → headers", () => {
  it("-bin values go base64; gRPC's own headers are set; reserved names are refused", () => {
    const md = new grpc.Metadata();
    md.set("x-a", "1");
    md.set("x-b-bin", Buffer.from([0xab, 0xcd]));
    const r = requestHeaders(md, "5m");
    expect(r).toMatchObject({ headers: { "x-a": "1", "x-b-bin": "q80=", "content-type": "application/grpc", te: "trailers", "grpc-timeout": "5m" } });
    for (const key of ["content-type", "te", "grpc-foo", "host", "transfer-encoding"]) {
      const bad = new grpc.Metadata();
      bad.set(key, "x");
      expect(requestHeaders(bad, undefined)).toEqual({ refused: expect.stringContaining(key) });
    }
  });
});

describe("framing", () => {
  it("splits messages across and within chunks; refuses one over the limit", () => {
    const d = new FrameDecoder(100);
    const two = Buffer.concat([frame(Buffer.from("hello")), frame(Buffer.from(""))]);
    expect(d.write(two.subarray(0, 3))).toEqual([]);
    expect(d.write(two.subarray(3)).map((m) => m.message.toString())).toEqual(["hello", ""]);
    expect(d.partial).toBe(false);
    expect(() => new FrameDecoder(4).write(frame(Buffer.from("hello")))).toThrow(FrameTooLargeError);
  });

  it("any split of a body into chunks gives the same messages (every cut point, byte by byte too)", () => {
    const messages = ["a", "", "hello world", "x".repeat(300)].map((m) => Buffer.from(m));
    const body = Buffer.concat(messages.map(frame));
    const read = (chunks: Buffer[]): string[] => {
      const d = new FrameDecoder(1000);
      const out = chunks.flatMap((c) => d.write(c).map((m) => m.message.toString()));
      expect(d.partial).toBe(false);
      return out;
    };
    const want = messages.map((m) => m.toString());
    for (let cut = 0; cut <= body.length; cut++) expect(read([body.subarray(0, cut), body.subarray(cut)])).toEqual(want);
    expect(read([...body].map((b) => Buffer.from([b])))).toEqual(want);
  });

  it("a 4 MiB message in 16 KiB chunks is copied once, after its last chunk (not once per chunk)", () => {
    const message = Buffer.alloc(4 * 1024 * 1024, 7);
    const body = frame(message);
    const d = new FrameDecoder(-1);
    const concat = vi.spyOn(Buffer, "concat");
    try {
      const out = [];
      for (let at = 0; at < body.length; at += 16_384) out.push(...d.write(body.subarray(at, at + 16_384)));
      expect(out.map((m) => m.message.equals(message))).toEqual([true]);
      const copied = concat.mock.calls.reduce((n, [list]) => n + list.reduce((k, b) => k + b.length, 0), 0);
      expect(copied).toBe(body.length);
    } finally {
      concat.mockRestore();
    }
  });
});

describe("reused AbortControllers", () => {
  it("one comes back only if it never aborted and nothing listens on it; the pool is bounded", () => {
    const pool = new AbortPool();
    const used = pool.take();
    pool.give(used);
    expect(pool.take()).toBe(used);
    const aborted = pool.take();
    aborted.abort();
    pool.give(aborted);
    const listened = new AbortController();
    listened.signal.addEventListener("abort", () => {});
    pool.give(listened);
    const next = pool.take();
    expect([next === aborted, next === listened, next.signal.aborted]).toEqual([false, false, false]);
    const many = Array.from({ length: 300 }, () => new AbortController());
    for (const ac of many) pool.give(ac);
    const back = new Set(Array.from({ length: 300 }, () => pool.take()));
    expect(many.filter((ac) => back.has(ac)).length).toBe(256);
  });
});

describe("deadlines", () => {
  it("time left by the wall clock: Infinity (or a date that is none) is no deadline; far ones are kept whole", () => {
    const now = 1_000_000;
    expect(timeLeft(Infinity, now)).toBe(Infinity);
    expect(timeLeft(new Date(Number.NaN), now)).toBe(Infinity);
    expect(timeLeft(now + 2 ** 31 + 5, now)).toBe(2 ** 31 + 5);
    expect(timeLeft(new Date(now + 1500), now)).toBe(1500);
    expect(timeLeft(now - 1, now)).toBe(-1);
    // Capped below 2^31 ms: a grpc-js server would overflow its timer on more and end the call at once.
    expect([2 ** 31 + 5, 2 ** 31 - 1, 2_147_483_001, 2_147_483_000, Infinity].map(timeoutHeader)).toEqual([
      "2147483S",
      "2147483S",
      "2147483S",
      "2147483S",
      "2147483S",
    ]);
    expect(timeoutHeader(99_999_999)).toBe("99999999m");
  });
});

describe("status mapping", () => {
  it("trailers: code, percent-decoded message, details-bin kept; HTTP status as grpc-js maps it", () => {
    const s = statusFromTrailers({ "grpc-status": "5", "grpc-message": "not%20found", "grpc-status-details-bin": "AQI=" });
    expect([s?.code, s?.details, s?.metadata.get("grpc-status-details-bin")]).toEqual([5, "not found", [Buffer.from([1, 2])]]);
    expect(statusFromTrailers({})).toBeUndefined();
    expect([400, 401, 403, 404, 429, 502, 503, 504, 500].map((h) => statusFromHttp(h).code)).toEqual([
      grpc.status.INTERNAL,
      grpc.status.UNAUTHENTICATED,
      grpc.status.PERMISSION_DENIED,
      grpc.status.UNIMPLEMENTED,
      grpc.status.UNAVAILABLE,
      grpc.status.UNAVAILABLE,
      grpc.status.UNAVAILABLE,
      grpc.status.UNAVAILABLE,
      grpc.status.UNKNOWN,
    ]);
  });

  it("dialtone failures: lost/refused/no member UNAVAILABLE (naming the last connection error), timeouts DEADLINE_EXCEEDED, bad input INTERNAL", () => {
    const lost = new RequestError("ERR_DIALTONE_MEMBER_LOST", "http://t", "10.0.0.1:1", "member lost", false);
    const none = new NoMemberError("http://t", 300, new Error("connect ECONNREFUSED 10.0.0.1:1"));
    const timeout = new RequestError("ERR_DIALTONE_REQUEST_TIMEOUT", "http://t", undefined, "timed out", false);
    const rst = new RequestError("ERR_DIALTONE_STREAM", "http://t", undefined, "Stream closed with error code NGHTTP2_ENHANCE_YOUR_CALM", false);
    expect(statusFromError(lost).code).toBe(grpc.status.UNAVAILABLE);
    expect(statusFromError(none)).toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: expect.stringContaining("last connection error: connect ECONNREFUSED"),
    });
    expect(statusFromError(timeout).code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(statusFromError(rst).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(statusFromError(new BadRequestError("http://t", "headers", "bad")).code).toBe(grpc.status.INTERNAL);
  });
});

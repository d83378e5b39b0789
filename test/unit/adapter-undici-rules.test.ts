/**
 * The pure rules of dialtone/undici, no sockets: how undici's request options
 * become a dialtone request (headers, content-length), and which undici error
 * a dialtone error becomes.
 */
import { errors } from "undici";
import { describe, expect, it } from "vitest";
import { toUndiciError } from "../../src/adapters/undici-errors.js";
import { toInit, toOutgoing } from "../../src/adapters/undici-request.js";
import { BadRequestError, ClosedError, NoMemberError, RequestError, RequestTimeoutError } from "../../src/core/errors.js";

const T = "http://svc.test:1";
const signal = new AbortController().signal;

describe("undici request options → a dialtone request", () => {
  it("headers in undici's three shapes: cookies joined by '; ', other repeated fields by ', ', HTTP/1 connection fields dropped", () => {
    expect(toOutgoing(["Cookie", ["a=b", "c=d"], "x-r", ["1", "2"], "x-r", "3", "connection", "keep-alive", "host", "h"])).toEqual({
      cookie: "a=b; c=d",
      "x-r": "1, 2, 3",
    });
    expect(
      toOutgoing([
        ["cookie", "a=b"],
        ["cookie", "c=d"],
      ]),
    ).toEqual({ cookie: "a=b; c=d" });
    expect(toOutgoing(new Map([["x-one", "v"]]))).toEqual({ "x-one": "v" });
    expect(toOutgoing({ "X-Num": 5, te: "trailers", "transfer-encoding": "chunked" })).toEqual({ "x-num": "5", te: "trailers" });
    expect(() => toOutgoing(["odd"])).toThrow(errors.InvalidArgumentError);
    expect(() => toOutgoing("nope")).toThrow(errors.InvalidArgumentError);
  });

  it("content-length as undici sends it: the length of a known body, 0 for an empty POST/PUT/PATCH, none for GET or a stream", async () => {
    const cl = async (method: string, body?: unknown, headers?: unknown): Promise<unknown> => {
      const init = await toInit({ method, path: "/", body, headers }, signal, undefined);
      return (init.headers as Record<string, unknown>)["content-length"];
    };
    expect(await cl("POST", "héllo")).toBe("6");
    expect(await cl("PUT", new Uint8Array(3))).toBe("3");
    expect(await cl("PATCH", new Blob(["ab"]))).toBe("2");
    for (const m of ["POST", "PUT", "PATCH"]) expect(await cl(m)).toBe("0");
    for (const m of ["GET", "HEAD", "DELETE"]) expect(await cl(m)).toBeUndefined();
    expect(await cl("POST", (async function* () {})(), { "content-length": "9" })).toBe("9");
    await expect(cl("POST", "four", { "content-length": "10" })).rejects.toBeInstanceOf(errors.RequestContentLengthMismatchError);
  });
});

describe("dialtone errors → undici's", () => {
  it("each becomes the class undici's HTTP/2 client raises in its place, with the dialtone error as cause", () => {
    const cases: Array<[Error, "before-head" | "after-head", unknown]> = [
      [new RequestTimeoutError(T, "127.0.0.2:1", 50), "before-head", errors.HeadersTimeoutError],
      [new NoMemberError(T, 300, undefined), "before-head", errors.ConnectTimeoutError],
      [new BadRequestError(T, "headers", "bad"), "before-head", errors.InvalidArgumentError],
      [new ClosedError(T), "before-head", errors.ClientClosedError],
      [new ClosedError(T), "after-head", errors.SocketError],
      [new RequestError("ERR_DIALTONE_MEMBER_LOST", T, "127.0.0.2:1", "member lost", false), "after-head", errors.SocketError],
      [
        new RequestError("ERR_DIALTONE_STREAM", T, "127.0.0.2:1", "stream closed before the response completed", false),
        "before-head",
        errors.InformationalError,
      ],
      [
        new RequestError("ERR_DIALTONE_INCOMPLETE_RESPONSE", T, "127.0.0.2:1", "response body of 4 bytes, but content-length said 9", false),
        "after-head",
        errors.ResponseContentLengthMismatchError,
      ],
      [new RequestError("ERR_DIALTONE_GOAWAY", T, "127.0.0.2:1", "above GOAWAY", true), "before-head", errors.InformationalError],
      [new RequestError("ERR_DIALTONE_RESPONSE_TOO_LARGE", T, "127.0.0.2:1", "too large", false), "after-head", errors.ResponseExceededMaxSizeError],
    ];
    for (const [err, phase, Cls] of cases) {
      const u = toUndiciError(err, phase);
      expect(u, `${(err as RequestError).code} ${phase}`).toBeInstanceOf(Cls as new () => Error);
      expect(u.cause).toBe(err);
    }
    expect(toUndiciError(new RequestTimeoutError(T, undefined, 50), "before-head", undefined, 50).message).toBe('HTTP/2: "headers timeout after 50"');
  });

  it("a peer's reset keeps Node's own code, as undici hands it on; a non-dialtone error passes through", () => {
    const node = Object.assign(new Error("Stream closed with error code NGHTTP2_INTERNAL_ERROR"), { code: "ERR_HTTP2_STREAM_ERROR" });
    const d = new RequestError("ERR_DIALTONE_STREAM", T, "127.0.0.2:1", node.message, false, { cause: node });
    const u = toUndiciError(d, "after-head") as Error & { code: string };
    expect(u.code).toBe("ERR_HTTP2_STREAM_ERROR");
    expect(u.message).toMatch(/^Stream closed with error code NGHTTP2_INTERNAL_ERROR/);
    expect(u.cause).toBe(d);
    const shortBody = new RequestError("ERR_DIALTONE_STREAM", T, "127.0.0.2:1", "x", false, {
      cause: Object.assign(new Error("Stream closed with error code NGHTTP2_PROTOCOL_ERROR"), { code: "ERR_HTTP2_STREAM_ERROR" }),
    });
    expect(toUndiciError(shortBody, "after-head", { declared: 100, received: 4 })).toBeInstanceOf(errors.ResponseContentLengthMismatchError);
    const mine = new Error("mine");
    expect(toUndiciError(mine, "after-head")).toBe(mine);
  });
});

/**
 * What undici's own HTTP/2 tests check (undici 8.10.0: test/http2*.js,
 * test/fetch/http2.js, test/fetch/cookies.js, test/fetch/issue-5566.js and the
 * issue-*.js files that use allowH2), for every behaviour that applies to a
 * dispatcher, written here as tests of dialtone/undici: each names the undici
 * test file it follows. The differences that are deliberate are in
 * docs/adapters.md, with the reasons.
 *
 * The peer is Node's own HTTP/2 server (node:http2) in this process, as in
 * undici's tests: it is a real HTTP/2 implementation, and the tests need to
 * see exactly what arrived (headers, content-length, sessions).
 */
import { once } from "node:events";
import { createServer, constants, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { Readable, Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import * as undici from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { createDispatcher, type ControllerHandler, type DispatchController, type LegacyHandler } from "../../src/adapters/undici.js";
import { DialtoneError, type Http2Channel } from "../../src/index.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();

/** dialtone's dispatcher typed as the installed undici's Dispatcher (its class at run time), for undici's own method types. */
function undiciDispatcher(ch: Http2Channel, options?: Parameters<typeof createDispatcher>[1]): undici.Dispatcher {
  return createDispatcher(ch, options) as unknown as undici.Dispatcher;
}

/** undici 8 runs on Node ≥ 22.19 (its engines field); on older lines its cases are not defined. */
const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
const undici8: typeof undici | undefined = major > 22 || (major === 22 && minor >= 19) ? ((await import("undici8")) as unknown as typeof undici) : undefined;
const LIBS: Array<[string, typeof undici]> = [["undici 7", undici], ...(undici8 ? ([["undici 8", undici8]] as Array<[string, typeof undici]>) : [])];

interface Peer {
  port: number;
  /** Sessions accepted so far. */
  readonly sessions: number;
  /** Request heads seen so far, in order. */
  readonly heads: IncomingHttpHeaders[];
}

const servers: Http2Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(async (s) => {
      s.close();
      await new Promise<void>((r) => setTimeout(r, 0));
    }),
  );
});

/** A node:http2 server on 127.0.0.2 whose `onStream` answers each request (with the request body collected when `collect`). */
async function peer(onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, body: Buffer) => void, collect = true): Promise<Peer> {
  const server = createServer();
  servers.push(server);
  let sessions = 0;
  const heads: IncomingHttpHeaders[] = [];
  const live = new Set<import("node:http2").ServerHttp2Session>();
  server.on("session", (s) => {
    sessions++;
    live.add(s);
    s.on("close", () => live.delete(s));
  });
  const close = server.close.bind(server);
  server.close = ((cb?: () => void) => {
    for (const s of live) s.destroy();
    return close(cb);
  }) as typeof server.close;
  server.on("stream", (stream, headers) => {
    heads.push(headers);
    stream.on("error", () => {});
    if (!collect) return onStream(stream, headers, Buffer.alloc(0));
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => onStream(stream, headers, Buffer.concat(chunks)));
  });
  server.listen(0, "127.0.0.2");
  await once(server, "listening");
  const port = (server.address() as import("node:net").AddressInfo).port;
  return {
    port,
    get sessions() {
      return sessions;
    },
    heads,
  };
}

async function channelTo(p: Peer, extra: Record<string, unknown> = {}): Promise<{ ch: Http2Channel; origin: string }> {
  const origin = `http://svc.test:${p.port}`;
  const ch = open({ target: origin, discovery: `static:///127.0.0.2:${p.port}`, members: 1, ...extra });
  await ch.ready(AbortSignal.timeout(10_000));
  return { ch, origin };
}

type FetchInit = Omit<RequestInit, "dispatcher"> & { dispatcher?: unknown; duplex?: "half" };
const globalFetch = (url: string, init: FetchInit): Promise<Response> => fetch(url, init as RequestInit);
const FETCHES: Array<[string, (url: string, init: FetchInit) => Promise<Response>]> = [
  ["Node's global fetch", globalFetch],
  ...(undici8
    ? [
        ["undici 8 fetch", (url: string, init: FetchInit) => undici8.fetch(url, init as never) as unknown as Promise<Response>] as [
          string,
          (url: string, init: FetchInit) => Promise<Response>,
        ],
      ]
    : []),
];

const echo = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, body: Buffer): void => {
  stream.respond({ ":status": 200, "x-content-length": String(headers["content-length"] ?? "none") });
  stream.end(body);
};

describe("undici's HTTP/2 request bodies through dialtone/undici (http2-body.js, http2-body-delete.js, fetch/http2.js)", () => {
  it("GET, HEAD and DELETE without a body send no content-length; an empty POST, PUT and PATCH send content-length: 0", async () => {
    const p = await peer(echo);
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    const seen: Record<string, string | undefined> = {};
    for (const method of ["GET", "HEAD", "DELETE", "POST", "PUT", "PATCH"]) {
      const r = await d.request({ origin, path: "/", method: method as undici.Dispatcher.HttpMethod });
      seen[method] = r.headers["x-content-length"] as string;
      await r.body.dump();
    }
    expect(seen).toEqual({ GET: "none", HEAD: "none", DELETE: "none", POST: "0", PUT: "0", PATCH: "0" });
    for (const [, f] of FETCHES) expect((await f(`${origin}/`, { dispatcher: d, method: "POST" })).headers.get("x-content-length")).toBe("0");
  });

  it("a string, Buffer, Uint8Array, ArrayBuffer and Blob carry their content-length; a Readable and an async or sync iterable stream whole; FormData goes as multipart with its content-length", async () => {
    const p = await peer(echo);
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    const text = "héllo dialtone";
    const bytes = Buffer.from(text);
    const known: Array<[string, unknown]> = [
      ["string", text],
      ["Buffer", bytes],
      ["Uint8Array", new Uint8Array(bytes)],
      ["ArrayBuffer", bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)],
      ["Blob", new Blob([bytes])],
    ];
    for (const [, body] of known) {
      const r = await d.request({ origin, path: "/", method: "POST", body: body as string });
      expect(r.headers["x-content-length"]).toBe(String(bytes.length));
      expect(await r.body.text()).toBe(text);
    }
    async function* parts(): AsyncGenerator<Buffer> {
      yield bytes.subarray(0, 3);
      yield bytes.subarray(3);
    }
    const syncIterable = {
      *[Symbol.iterator](): Generator<string> {
        yield text.slice(0, 4);
        yield text.slice(4);
      },
    };
    for (const body of [Readable.from([bytes.subarray(0, 5), bytes.subarray(5)]), parts(), syncIterable]) {
      const r = await d.request({ origin, path: "/", method: "PUT", body: body as Readable });
      expect(await r.body.text()).toBe(text);
    }
    const form = new FormData();
    form.set("field", "value");
    const r = await d.request({ origin, path: "/", method: "POST", body: form as unknown as string });
    expect(await r.body.text()).toMatch(/name="field"\r\n\r\nvalue/);
    expect(p.heads.at(-1)?.["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
    expect(Number(p.heads.at(-1)?.["content-length"])).toBeGreaterThan(0);
  });

  it("DELETE with a body sends it, with its content-length (http2-body-delete.js)", async () => {
    const p = await peer(echo);
    const { ch, origin } = await channelTo(p);
    const r = await undiciDispatcher(ch).request({ origin, path: "/", method: "DELETE", body: "gone" });
    expect(r.headers["x-content-length"]).toBe("4");
    expect(await r.body.text()).toBe("gone");
  });

  it("a declared content-length that differs from the body is undici's RequestContentLengthMismatchError, before anything is sent", async () => {
    const p = await peer(echo);
    const { ch, origin } = await channelTo(p);
    const err = await undiciDispatcher(ch)
      .request({ origin, path: "/", method: "POST", body: "four", headers: { "content-length": "10" } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(undici.errors.RequestContentLengthMismatchError);
    expect(p.heads).toHaveLength(0);
  });
});

describe("undici's HTTP/2 headers through dialtone/undici (http2-connection.js, http2-pseudo-headers.js, fetch/cookies.js)", () => {
  it("headers as a flat array with array values, and as pairs: cookies joined by '; ', other repeated fields by ', '", async () => {
    const p = await peer((s) => (s.respond({ ":status": 204 }), s.end()));
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    await (
      await d.request({ origin, path: "/", method: "GET", headers: ["cookie", ["a=b", "c=d"], "x-many", ["1", "2"], "x-one", "v"] as unknown as string[] })
    ).body.dump();
    await (
      await d.request({
        origin,
        path: "/",
        method: "GET",
        headers: [
          ["cookie", "e=f"],
          ["cookie", "g=h"],
          ["x-many", "3"],
          ["x-many", "4"],
        ] as unknown as string[],
      })
    ).body.dump();
    await (await d.request({ origin, path: "/", method: "GET", headers: { cookie: ["i=j", "k=l"], "x-many": ["5", "6"] } })).body.dump();
    expect(p.heads.map((h) => [h.cookie, h["x-many"]])).toEqual([
      ["a=b; c=d", "1, 2"],
      ["e=f; g=h", "3, 4"],
      ["i=j; k=l", "5, 6"],
    ]);
    expect(p.heads[0]?.["x-one"]).toBe("v");
    for (const [, f] of FETCHES)
      await (
        await f(`${origin}/`, {
          dispatcher: d,
          headers: [
            ["cookie", "m=n"],
            ["cookie", "o=p"],
          ],
        })
      ).arrayBuffer();
    for (const h of p.heads.slice(3)) expect(h.cookie).toBe("m=n; o=p");
  });

  it.each(FETCHES)(
    "%s keeps every response header: content-type, each set-cookie, repeated fields, no pseudo-headers; and follows a redirect",
    async (_name, f) => {
      const p = await peer((s, h) => {
        if (h[":path"] === "/old") return void (s.respond({ ":status": 302, location: "/new" }), s.end());
        s.respond({ ":status": 200, "content-type": "text/plain; charset=utf-8", "set-cookie": ["a=1; Path=/", "b=2; HttpOnly"], "x-multi": ["x", "y"] });
        s.end(`at ${String(h[":path"])}`);
      });
      const { ch, origin } = await channelTo(p);
      const d = undiciDispatcher(ch);
      const r = await f(`${origin}/plain`, { dispatcher: d });
      expect(r.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(r.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; HttpOnly"]);
      expect(r.headers.get("x-multi")).toBe("x, y");
      expect([...r.headers.keys()].some((k) => k.startsWith(":"))).toBe(false);
      expect(await r.text()).toBe("at /plain");
      const moved = await f(`${origin}/old`, { dispatcher: d });
      expect(moved.redirected).toBe(true);
      expect(moved.url).toBe(`${origin}/new`);
      expect(await moved.text()).toBe("at /new");
    },
  );

  it("handlers get the head as undici's HTTP/2 client gives it: controller.rawHeaders as Node's header object, Buffer pairs in a legacy onHeaders (http2-body.js)", async () => {
    const p = await peer((s) => {
      s.respond({ ":status": 200, "set-cookie": ["a=1", "b=2"], "x-k": "v" });
      s.end("ok");
    });
    const { ch, origin } = await channelTo(p);
    const d = createDispatcher(ch);
    const rawHead = await new Promise<unknown>((resolve, reject) => {
      const h: ControllerHandler = {
        onResponseStart: (c: DispatchController) => resolve(c.rawHeaders),
        onResponseError: (_c, e) => reject(e),
      };
      d.dispatch({ origin, path: "/", method: "GET" }, h);
    });
    // Node's server adds a date field: the rest must be exactly what was sent, one pair per field line.
    const withoutDate = (raw: Buffer[] | null | undefined): string[] => (raw ?? []).map(String).filter((_v, i, a) => a[i - (i % 2)] !== "date");
    expect(rawHead).toMatchObject({ "set-cookie": ["a=1", "b=2"], "x-k": "v" });
    expect(Object.keys(rawHead as object).some((k) => k.startsWith(":"))).toBe(false);
    const legacy = await new Promise<Buffer[]>((resolve, reject) => {
      let got: Buffer[] = [];
      const h: LegacyHandler = {
        onConnect: () => {},
        onHeaders: (_s, rawHeaders) => void (got = rawHeaders),
        onData: () => true,
        onComplete: () => resolve(got),
        onError: reject,
      };
      d.dispatch({ origin, path: "/", method: "GET" }, h);
    });
    expect(legacy.every((b) => Buffer.isBuffer(b))).toBe(true);
    expect(withoutDate(legacy)).toEqual(["set-cookie", "a=1", "set-cookie", "b=2", "x-k", "v"]);
  });
});

describe("undici's handler contract through dialtone/undici", () => {
  it("a handler that pauses in onResponseStart gets no data until it resumes, then the whole body", async () => {
    const p = await peer((s) => {
      s.respond({ ":status": 200 });
      s.end(Buffer.alloc(100_000, 7));
    });
    const { ch, origin } = await channelTo(p);
    const d = createDispatcher(ch);
    let beforeResume = -1;
    let bytes = 0;
    await new Promise<void>((resolve, reject) => {
      const h: ControllerHandler = {
        onResponseStart: (c: DispatchController) => {
          c.pause();
          setTimeout(() => {
            beforeResume = bytes;
            c.resume();
          }, 100);
        },
        onResponseData: (_c, chunk) => void (bytes += chunk.length),
        onResponseEnd: () => resolve(),
        onResponseError: (_c, e) => reject(e),
      };
      d.dispatch({ origin, path: "/", method: "GET" }, h);
    });
    expect(beforeResume).toBe(0);
    expect(bytes).toBe(100_000);
  });
});

describe("undici's Dispatcher API through dialtone/undici (http2-dispatcher.js, http2-trailers.js)", () => {
  it("request(), stream() and pipeline() are undici's own, trailers included", async () => {
    const p = await peer((s, _h, body) => {
      s.respond({ ":status": 200 }, { waitForTrailers: true });
      s.once("wantTrailers", () => s.sendTrailers({ "x-trailer": "t" }));
      s.end(body.length > 0 ? body : Buffer.from("payload"));
    });
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    const r = await d.request({ origin, path: "/", method: "GET" });
    expect(await r.body.text()).toBe("payload");
    expect(r.trailers).toEqual({ "x-trailer": "t" });
    const chunks: Buffer[] = [];
    const s = await d.stream(
      { origin, path: "/", method: "GET", opaque: chunks },
      ({ opaque }) => new Writable({ write: (c: Buffer, _e, cb) => ((opaque as Buffer[]).push(c), cb()) }),
    );
    expect(Buffer.concat(chunks).toString()).toBe("payload");
    expect(s.trailers).toEqual({ "x-trailer": "t" });
    const piped: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      const duplex = d.pipeline({ origin, path: "/", method: "POST" }, ({ body }) => body);
      duplex
        .on("data", (c: Buffer) => piped.push(c))
        .on("end", resolve)
        .on("error", reject);
      duplex.end("through pipeline");
    });
    expect(Buffer.concat(piped).toString()).toBe("through pipeline");
    await d.close();
  });

  it("close() right after dispatch() lets that request finish; requests after it fail with ClientClosedError", async () => {
    const p = await peer((s) => setTimeout(() => (s.respond({ ":status": 200 }), s.end("late")), 50));
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    const pending = d.request({ origin, path: "/", method: "GET" });
    const closed = d.close();
    expect((d as unknown as { closed: boolean }).closed).toBe(true);
    expect(await (await pending).body.text()).toBe("late");
    await closed;
    await expect(d.request({ origin, path: "/", method: "GET" })).rejects.toBeInstanceOf(undici.errors.ClientClosedError);
  });

  it("destroy() ends requests in flight with ClientDestroyedError (or the given error), and close() resolves", async () => {
    const p = await peer(() => {});
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    const a = d.request({ origin, path: "/", method: "GET" }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    await d.destroy();
    expect(await a).toBeInstanceOf(undici.errors.ClientDestroyedError);
    expect((d as unknown as { destroyed: boolean }).destroyed).toBe(true);
    const d2 = undiciDispatcher(ch);
    const b = d2.request({ origin, path: "/", method: "GET" }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    const mine = new Error("mine");
    await d2.destroy(mine);
    expect(await b).toBe(mine);
    await expect(d2.close()).resolves.toBeUndefined();
    expect(ch.stats().members[0]!.inFlight).toBe(0);
  });

  it("CONNECT, protocol upgrades and expectContinue are refused with undici's NotSupportedError (a deliberate difference: see docs/adapters.md)", async () => {
    const p = await peer(echo);
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    await expect(d.connect({ origin, path: "/" })).rejects.toBeInstanceOf(undici.errors.NotSupportedError);
    await expect(d.upgrade({ path: "/", protocol: "websocket" })).rejects.toBeInstanceOf(undici.errors.NotSupportedError);
    await expect(d.request({ origin, path: "/", method: "POST", body: "x", expectContinue: true })).rejects.toBeInstanceOf(undici.errors.NotSupportedError);
    expect(p.heads).toHaveLength(0);
  });

  it("a stream the server destroys before answering rejects with InformationalError 'HTTP/2: stream half-closed (remote)' (http2-stream.js)", async () => {
    const p = await peer((s) => s.close(constants.NGHTTP2_NO_ERROR), false);
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    for (let i = 0; i < 2; i++) {
      const err = (await d.request({ origin, path: "/", method: "GET" }).catch((e: unknown) => e)) as Error & { code: string; cause: unknown };
      expect(err).toBeInstanceOf(undici.errors.InformationalError);
      expect(err.message).toBe("HTTP/2: stream half-closed (remote)");
      expect(err.code).toBe("UND_ERR_INFO");
      expect(err.cause).toBeInstanceOf(DialtoneError);
    }
  });
});

describe("undici's HTTP/2 timeouts, aborts and multiplexing through dialtone/undici (issue-5087.js, issue-5137.js, http2-abort.js, fetch/issue-5566.js, issue-5390.js)", () => {
  it("headersTimeout and bodyTimeout reject with HeadersTimeoutError and BodyTimeoutError (issue-5087.js)", async () => {
    const p = await peer((s, h) => {
      if (h[":path"] === "/body") {
        s.respond({ ":status": 200 });
        s.write("first");
      }
    }, false);
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch, { headersTimeout: 200, bodyTimeout: 200 });
    const head = await d.request({ origin, path: "/head", method: "GET" }).catch((e: unknown) => e);
    expect(head).toBeInstanceOf(undici.errors.HeadersTimeoutError);
    const r = await d.request({ origin, path: "/body", method: "GET" });
    await expect(r.body.text()).rejects.toBeInstanceOf(undici.errors.BodyTimeoutError);
    // Per request, as undici's request options allow.
    const perCall = await d.request({ origin, path: "/head", method: "GET", headersTimeout: 100 }).catch((e: unknown) => e);
    expect(perCall).toBeInstanceOf(undici.errors.HeadersTimeoutError);
    await d.close();
    expect(ch.stats().members[0]!.inFlight).toBe(0);
  });

  it.each(LIBS)("%s's retry interceptor retries an HTTP/2 body timeout and then succeeds (issue-5087.js, issue-5137.js)", async (_n, lib) => {
    let calls = 0;
    const p = await peer((s) => {
      calls++;
      s.respond({ ":status": 200, "content-type": "text/plain" });
      // The first answer is a head and then silence, as in undici's issue-5087 test.
      if (calls > 1) s.end("done");
    }, false);
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch, { bodyTimeout: 200 }).compose(
      lib.interceptors.retry({ maxRetries: 2, minTimeout: 10, errorCodes: ["UND_ERR_BODY_TIMEOUT", "UND_ERR_SOCKET"] }),
    );
    const r = await lib.request(`${origin}/`, { dispatcher: d });
    expect(await r.body.text()).toBe("done");
    expect(calls).toBe(2);
  });

  it("concurrent aborts settle every request; the others complete on the same session, which stays open (http2-abort.js, fetch/issue-5566.js)", async () => {
    const p = await peer((s, h) => {
      if (h[":path"] === "/slow") return void (s.respond({ ":status": 200 }), s.write("part"));
      s.respond({ ":status": 200 });
      s.end("ok");
    }, false);
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    const acs = Array.from({ length: 6 }, () => new AbortController());
    const slow = acs.map(async (ac) => {
      const res = await globalFetch(`${origin}/slow`, { dispatcher: d, signal: ac.signal });
      const reader = res.body!.getReader();
      await reader.read();
      ac.abort();
      return reader.read().catch((e: unknown) => e);
    });
    const fast = Array.from({ length: 6 }, async () => (await globalFetch(`${origin}/fast`, { dispatcher: d })).text());
    expect(await Promise.all(fast)).toEqual(Array(6).fill("ok"));
    for (const e of await Promise.all(slow)) expect(e).toMatchObject({ name: "AbortError" });
    // Nothing aborted stays in the dispatcher (the leak undici's issue 5566 is about): close() resolves.
    await d.close();
    expect(ch.stats().members[0]!.inFlight).toBe(0);
    expect(p.sessions).toBe(1);
    // The session is still usable.
    expect((await ch.request({ path: "/fast" })).status).toBe(200);
    expect(p.sessions).toBe(1);
  });

  it("concurrent requests multiplex on one HTTP/2 session (http2-pipelining-default.js, issue-5390.js)", async () => {
    const waiting: ServerHttp2Stream[] = [];
    const p = await peer((s) => {
      waiting.push(s);
      // Every request is answered only once all five are open at once: they must share the session.
      if (waiting.length < 5) return;
      for (const w of waiting) {
        w.respond({ ":status": 200 });
        w.end("m");
      }
    });
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    const bodies = await Promise.all(Array.from({ length: 5 }, async () => (await d.request({ origin, path: "/", method: "POST", body: "x" })).body.text()));
    expect(bodies).toEqual(Array(5).fill("m"));
    expect(p.sessions).toBe(1);
  });

  it("a REFUSED_STREAM is retried, a buffered POST replayed; another stream error is not retried (http2-refused-stream.js)", async () => {
    let n = 0;
    const p = await peer((s, h, body) => {
      n++;
      if (h[":path"] === "/refuse-once" && n === 1) return void s.close(constants.NGHTTP2_REFUSED_STREAM);
      if (h[":path"] === "/internal") return void s.close(constants.NGHTTP2_INTERNAL_ERROR);
      s.respond({ ":status": 200 });
      s.end(body);
    });
    const { ch, origin } = await channelTo(p);
    const d = undiciDispatcher(ch);
    const r = await d.request({ origin, path: "/refuse-once", method: "POST", body: "replayed" });
    expect(await r.body.text()).toBe("replayed");
    expect(n).toBe(2);
    const err = (await d.request({ origin, path: "/internal", method: "POST", body: "x" }).catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe("ERR_HTTP2_STREAM_ERROR");
    expect(n).toBe(3);
  });
});

describe("undici's interceptors composed onto dialtone/undici", () => {
  it.each(LIBS)("%s: retry, redirect, dump, cache and decompress each work through compose()", async (_n, lib) => {
    let flaky = 0;
    let cached = 0;
    const p = await peer((s, h) => {
      const path = String(h[":path"]);
      if (path === "/flaky") {
        flaky++;
        if (flaky === 1) return void (s.respond({ ":status": 503, "retry-after": "0" }), s.end());
        return void (s.respond({ ":status": 200 }), s.end("recovered"));
      }
      if (path === "/from") return void (s.respond({ ":status": 301, location: "/to" }), s.end());
      if (path === "/to") return void (s.respond({ ":status": 200 }), s.end("landed"));
      if (path === "/big") return void (s.respond({ ":status": 200 }), s.end(Buffer.alloc(64 * 1024, 1)));
      if (path === "/cached") {
        cached++;
        return void (s.respond({ ":status": 200, "cache-control": "public, max-age=60", date: new Date().toUTCString() }), s.end(`copy ${cached}`));
      }
      if (path === "/gz") return void (s.respond({ ":status": 200, "content-encoding": "gzip" }), s.end(gzipSync("unzipped")));
      s.respond({ ":status": 404 });
      s.end();
    }, false);
    const { ch, origin } = await channelTo(p);
    const base = undiciDispatcher(ch);
    const get = async (d: unknown, path: string): Promise<{ status: number; text: string }> => {
      const r = await lib.request(`${origin}${path}`, { dispatcher: d as undici.Dispatcher });
      return { status: r.statusCode, text: await r.body.text() };
    };
    expect(await get(base.compose(lib.interceptors.retry({ maxRetries: 2, minTimeout: 10, statusCodes: [503] })), "/flaky")).toEqual({
      status: 200,
      text: "recovered",
    });
    expect(await get(base.compose(lib.interceptors.redirect({ maxRedirections: 2 })), "/from")).toEqual({ status: 200, text: "landed" });
    expect(await get(base.compose(lib.interceptors.dump({ maxSize: 1024 * 1024 })), "/big")).toEqual({ status: 200, text: "" });
    const caching = base.compose(lib.interceptors.cache());
    expect(await get(caching, "/cached")).toEqual({ status: 200, text: "copy 1" });
    expect(await get(caching, "/cached")).toEqual({ status: 200, text: "copy 1" });
    expect(cached).toBe(1);
    expect(await get(base.compose(lib.interceptors.decompress()), "/gz")).toEqual({ status: 200, text: "unzipped" });
    await base.close();
    expect(ch.stats().members[0]!.inFlight).toBe(0);
  });
});

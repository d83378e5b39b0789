/**
 * The fault matrix of dialtone/undici: {Node's global fetch, undici 8's fetch,
 * undici.request, undici.stream} × {RST_STREAM mid-body, TCP closed mid-body,
 * body short of its content-length, backend frozen mid-body (its member
 * evicted), channel.close() past closeGrace, bodyTimeout, headersTimeout, the
 * caller's abort}. Every cell settles within its bound with the error undici's
 * own HTTP/2 client gives its callers (the rows a raw-frame server can produce
 * are also run through undici's own H2CClient, and must agree), leaves
 * nothing in flight, and dispatcher.close() resolves.
 *
 * Resets, truncation and stalls come from a raw-frame HTTP/2 server (a mock
 * peer, named so in each row: no real server can be made to cut a response
 * this way); the frozen and closed rows use real backend processes.
 */
import { Writable } from "node:stream";
import * as undici from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { createDispatcher } from "../../src/adapters/undici.js";
import { DialtoneError, type Http2Channel } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { dataFrame, headersFrame, rstFrame, startRawH2Server, type RawH2Server } from "../helpers/raw-h2.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();
const raws: RawH2Server[] = [];
afterEach(async () => {
  await Promise.all(raws.splice(0).map((s) => s.close()));
});

/** undici 8 runs on Node ≥ 22.19 (its engines field); on older lines its rows are not defined. */
const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
const undici8: typeof undici | undefined = major > 22 || (major === 22 && minor >= 19) ? ((await import("undici8")) as unknown as typeof undici) : undefined;

type FetchInit = Omit<RequestInit, "dispatcher"> & { dispatcher?: unknown };
interface RunOpts {
  dispatcher: unknown;
  signal?: AbortSignal;
  /** Called once the response head has reached the caller. */
  afterHead?: () => void;
}
interface Client {
  name: string;
  /** fetch-like clients reject with TypeError("terminated" | "fetch failed") and the undici error as cause. */
  fetchLike: boolean;
  lib: typeof undici;
  run(url: string, o: RunOpts): Promise<string>;
}

function fetchClient(name: string, lib: typeof undici, f: (url: string, init: FetchInit) => Promise<Response>): Client {
  return {
    name,
    fetchLike: true,
    lib,
    async run(url, o) {
      const res = await f(url, { dispatcher: o.dispatcher, signal: o.signal ?? null });
      o.afterHead?.();
      return res.text();
    },
  };
}

const CLIENTS: Client[] = [
  fetchClient("Node's global fetch", undici, (url, init) => fetch(url, init as RequestInit)),
  ...(undici8 ? [fetchClient("undici 8 fetch", undici8, (url, init) => undici8.fetch(url, init as never) as unknown as Promise<Response>)] : []),
  {
    name: "undici.request",
    fetchLike: false,
    lib: undici,
    async run(url, o) {
      const res = await undici.request(url, { dispatcher: o.dispatcher as undici.Dispatcher, signal: o.signal });
      o.afterHead?.();
      return res.body.text();
    },
  },
  {
    name: "undici.stream",
    fetchLike: false,
    lib: undici,
    async run(url, o) {
      const chunks: Buffer[] = [];
      await undici.stream(url, { dispatcher: o.dispatcher as undici.Dispatcher, method: "GET", signal: o.signal }, () => {
        o.afterHead?.();
        return new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
      });
      return Buffer.concat(chunks).toString();
    },
  },
];

/** What a caller can see of an error: its class name and code, and for fetch its cause's. */
interface Shape {
  name: string;
  code?: string;
  message?: string;
  cause?: { name: string; code?: string };
}
function shapeOf(e: unknown, fetchLike: boolean): Shape {
  const err = e as Error & { code?: string; cause?: Error & { code?: string } };
  if (fetchLike && err.name === "TypeError") return { name: err.name, message: err.message, cause: { name: err.cause?.name ?? "none", code: err.cause?.code } };
  return { name: err.name, code: err.code };
}

/** The undici error a caller gets, per fault: for fetch inside TypeError(`fetchMessage`). */
interface Expected {
  name: string;
  code?: string;
  /** fetch's own message: "terminated" once the head was in, "fetch failed" before. */
  fetchMessage: "terminated" | "fetch failed";
}
function expectedShape(x: Expected, fetchLike: boolean): Shape {
  return fetchLike ? { name: "TypeError", message: x.fetchMessage, cause: { name: x.name, code: x.code } } : { name: x.name, code: x.code };
}

interface Fault {
  name: string;
  expected: Expected;
  /** Bound on how long the call may take to settle, ms. */
  boundMs: number;
  /** A raw-frame answer to every request (mock peer rows); a row without one uses real backends via `real`. */
  raw?: (id: number, write: (b: Buffer) => void, drop: () => void) => void;
  /** Dispatcher options for the row. */
  dispatcherOptions?: { headersTimeout?: number; bodyTimeout?: number };
  /** Whether undici's own H2CClient is run as the row's baseline. */
  baseline: boolean;
  /** Makes the fault happen once the head is in (abort, freeze, close). */
  afterHead?: (ctx: { ac: AbortController; channel: Http2Channel; freezeServing: () => void }) => void;
  real?: "frozen" | "closed";
}

const HEAD = (id: number, extra: Record<string, string> = {}): Buffer => headersFrame(id, 200, { "content-type": "text/plain", ...extra });

const FAULTS: Fault[] = [
  {
    name: "RST_STREAM(INTERNAL_ERROR) mid-body (raw-frame mock peer)",
    expected: { name: "Error", code: "ERR_HTTP2_STREAM_ERROR", fetchMessage: "terminated" },
    boundMs: 3000,
    baseline: true,
    raw: (id, w) => {
      w(HEAD(id));
      w(dataFrame(id, "part"));
      // A moment later, so the head has surely reached the caller (then fetch says "terminated", not "fetch failed").
      setTimeout(() => w(rstFrame(id, 2)), 20);
    },
  },
  {
    name: "TCP closed mid-body (raw-frame mock peer)",
    expected: { name: "SocketError", code: "UND_ERR_SOCKET", fetchMessage: "terminated" },
    boundMs: 3000,
    baseline: true,
    raw: (id, w, drop) => {
      w(HEAD(id));
      w(dataFrame(id, "part"));
      setTimeout(drop, 20);
    },
  },
  {
    name: "body short of its content-length (raw-frame mock peer)",
    expected: { name: "ResponseContentLengthMismatchError", code: "UND_ERR_RES_CONTENT_LENGTH_MISMATCH", fetchMessage: "terminated" },
    boundMs: 3000,
    // undici 7's client reports this as Node's PROTOCOL_ERROR stream error, undici 8's as here: dialtone answers as undici 8 does.
    baseline: false,
    raw: (id, w) => {
      w(HEAD(id, { "content-length": "100" }));
      w(dataFrame(id, "part", true));
    },
  },
  {
    name: "bodyTimeout: the body stalls (raw-frame mock peer)",
    expected: { name: "BodyTimeoutError", code: "UND_ERR_BODY_TIMEOUT", fetchMessage: "terminated" },
    boundMs: 3000,
    baseline: true,
    dispatcherOptions: { bodyTimeout: 300 },
    raw: (id, w) => {
      w(HEAD(id));
      w(dataFrame(id, "part"));
    },
  },
  {
    name: "headersTimeout: no head comes (raw-frame mock peer)",
    expected: { name: "HeadersTimeoutError", code: "UND_ERR_HEADERS_TIMEOUT", fetchMessage: "fetch failed" },
    boundMs: 3000,
    baseline: true,
    dispatcherOptions: { headersTimeout: 300 },
    raw: () => {},
  },
  {
    name: "the caller's abort mid-body (raw-frame mock peer)",
    expected: { name: "AbortError", fetchMessage: "terminated" },
    boundMs: 3000,
    baseline: true,
    raw: (id, w) => {
      w(HEAD(id));
      w(dataFrame(id, "part"));
    },
    afterHead: ({ ac }) => setTimeout(() => ac.abort(), 20),
  },
  {
    name: "backend frozen mid-body (SIGSTOP; its member evicted)",
    expected: { name: "SocketError", code: "UND_ERR_SOCKET", fetchMessage: "terminated" },
    // Health defaults find a frozen member within 2.5 s (interval 1 s + 2 × 750 ms PING timeouts).
    boundMs: 8000,
    baseline: false,
    real: "frozen",
    afterHead: ({ freezeServing }) => freezeServing(),
  },
  {
    name: "channel.close() past closeGrace",
    expected: { name: "SocketError", code: "UND_ERR_SOCKET", fetchMessage: "terminated" },
    boundMs: 3000,
    baseline: false,
    real: "closed",
    afterHead: ({ channel }) => void channel.close(),
  },
];

async function settle<T>(p: Promise<T>, boundMs: number): Promise<{ value?: T; error?: unknown; ms: number }> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`did not settle within ${boundMs} ms`)), boundMs)));
  try {
    const value = await Promise.race([p, bound]);
    return { value, ms: performance.now() - t0 };
  } catch (error) {
    if (error instanceof Error && /did not settle within/.test(error.message)) throw error;
    return { error, ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

function causeChainHasDialtone(e: unknown): boolean {
  let c: unknown = e;
  for (let i = 0; i < 5 && c instanceof Error; i++, c = c.cause) if (c instanceof DialtoneError) return true;
  return false;
}

async function eventually(check: () => boolean, ms: number, what: string): Promise<void> {
  const until = performance.now() + ms;
  while (!check()) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(CLIENTS)("dialtone/undici fault matrix: $name", (client) => {
  it.each(FAULTS)(
    "$name",
    async (fault) => {
      const ac = new AbortController();
      let channel: Http2Channel;
      let url: string;
      let baselineUrl: string | undefined;
      let freezeServing = (): void => {};
      if (fault.raw) {
        const server = await startRawH2Server("127.0.0.2", fault.raw);
        raws.push(server);
        url = `http://svc.test:${server.port}/`;
        baselineUrl = `http://127.0.0.2:${server.port}/`;
        channel = open({ target: url, discovery: `static:///127.0.0.2:${server.port}`, members: 1 });
      } else {
        // Two members, so that the frozen one is evicted (with one, degraded mode keeps it); the request's own member is frozen.
        const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
        url = `http://svc.test:${backends[0]!.port}/stream?chunks=400&size=1024&every=20`;
        channel = open({
          target: `http://svc.test:${backends[0]!.port}`,
          discovery: `static:///${backends.map((b) => b.key).join(",")}`,
          members: 2,
          closeGrace: 100,
        });
        freezeServing = () => {
          const serving = channel.stats().members.find((m) => m.inFlight > 0);
          backends.find((b) => b.key === serving?.address)?.freeze();
        };
      }
      await channel.ready(AbortSignal.timeout(10_000));
      const dispatcher = createDispatcher(channel, fault.dispatcherOptions);
      const out = await settle(
        client.run(url, { dispatcher, signal: ac.signal, afterHead: () => fault.afterHead?.({ ac, channel, freezeServing }) }),
        fault.boundMs,
      );
      expect(out.error, `resolved with ${JSON.stringify(out.value)}`).toBeDefined();
      const shape = shapeOf(out.error, client.fetchLike);
      if (fault.expected.name === "AbortError") expect(shape.name).toBe("AbortError");
      else expect(shape).toEqual(expectedShape(fault.expected, client.fetchLike));
      // The dialtone error behind it is in the cause chain (a body timeout is the adapter's own verdict, an abort the caller's).
      if (fault.expected.name !== "AbortError" && fault.expected.name !== "BodyTimeoutError") expect(causeChainHasDialtone(out.error)).toBe(true);
      // undici's own errors are its classes: instanceof works with the undici the caller has.
      const undiciErr = client.fetchLike ? (out.error as Error).cause : out.error;
      if (fault.expected.name !== "AbortError" && fault.expected.name !== "Error") expect(undiciErr).toBeInstanceOf(client.lib.errors.UndiciError);
      await expect(settle(dispatcher.close(), 3000)).resolves.toMatchObject({ ms: expect.any(Number) });
      if (fault.real !== "closed") await eventually(() => channel.stats().members.every((m) => m.inFlight === 0), 3000, "in-flight back to 0");

      if (fault.baseline && baselineUrl) {
        // The same fault through undici's own HTTP/2 client: the error a user of undici gets.
        const own = new client.lib.H2CClient(baselineUrl.replace(/\/$/, ""), {
          headersTimeout: fault.dispatcherOptions?.headersTimeout,
          bodyTimeout: fault.dispatcherOptions?.bodyTimeout,
        });
        const ac2 = new AbortController();
        const theirs = await settle(
          client.run(baselineUrl, { dispatcher: own, signal: ac2.signal, afterHead: () => fault.afterHead?.({ ac: ac2, channel, freezeServing }) }),
          fault.boundMs,
        );
        await own.destroy();
        const theirShape = shapeOf(theirs.error, client.fetchLike);
        if (fault.expected.name === "AbortError") expect(theirShape.name).toBe("AbortError");
        else expect(theirShape).toEqual(shape);
      }
    },
    20_000,
  );
});

import { Writable } from "node:stream";
import { fetch as undiciFetch, request as undiciRequest, stream as undiciStream, Dispatcher as UndiciDispatcher, type Dispatcher } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { createDispatcher, type ControllerHandler, type DispatchController } from "../../src/adapters/undici.js";
import { NoMemberError, type ChannelEvent } from "../../src/index.js";
import { makeDocroot, startH2o, startNghttpd, stopRealServers, type RealServer } from "../helpers/real-servers.js";
import { expectLossesLikeRequest, killThenFreeze, loadThroughFaults } from "../helpers/fault-load.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();
afterEach(stopRealServers);

function discoveryOf(servers: RealServer[]): string {
  return `static:///${servers.map((s) => s.key).join(",")}`;
}

async function channelOver(servers: RealServer[], extra: Record<string, unknown> = {}): Promise<ReturnType<typeof open>> {
  const ch = open({ target: `http://svc.test:${servers[0]!.port}`, discovery: discoveryOf(servers), members: servers.length, ...extra });
  await ch.ready(AbortSignal.timeout(10_000));
  return ch;
}

/** The global fetch's RequestInit types its dispatcher as its own bundled undici's; ours is structurally what it calls. */
type FetchInit = Omit<RequestInit, "dispatcher"> & { dispatcher?: unknown; duplex?: "half" };
const globalFetch = (url: string, init: FetchInit): Promise<Response> => fetch(url, init as RequestInit);

describe("dialtone/undici: fetch and undici over a channel, against nghttpd and h2o (real servers from Debian)", () => {
  it("Node's global fetch: GETs from nghttpd and h2o spread over the members; a streamed POST is echoed; 1 MiB arrives whole", async () => {
    const docroot = makeDocroot();
    const servers = [await startNghttpd("127.0.0.2", docroot), await startH2o("127.0.0.3", docroot), await startNghttpd("127.0.0.4", docroot)];
    // In-flight spreads one-at-a-time calls evenly: this test is about the adapter reaching every member.
    const ch = await channelOver(servers, { balancer: "in-flight" });
    const used = new Set<string>();
    ch.on((e: ChannelEvent) => {
      if (e.type === "request" && e.address) used.add(e.address);
    });
    const dispatcher = createDispatcher(ch);
    const base = `http://svc.test:${servers[0]!.port}`;
    for (let i = 0; i < 30; i++) {
      const res = await globalFetch(`${base}/index.html`, { dispatcher });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("hello from a real server\n");
    }
    expect(used.size).toBe(3);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("streamed "));
        c.enqueue(new TextEncoder().encode("upload"));
        c.close();
      },
    });
    // nghttpd echoes uploads (h2o here only serves files): a channel over the two nghttpd servers.
    const echoing = await channelOver([servers[0]!, servers[2]!]);
    const echoed = await globalFetch(`${base}/echo`, { dispatcher: createDispatcher(echoing), method: "POST", body, duplex: "half" });
    expect(await echoed.text()).toBe("streamed upload");
    const big = await globalFetch(`${base}/big.bin`, { dispatcher });
    expect((await big.arrayBuffer()).byteLength).toBe(1024 * 1024);
  });

  it("undici.fetch, undici.request (with trailers) and undici.stream", async () => {
    const docroot = makeDocroot();
    const servers = [await startNghttpd("127.0.0.2", docroot, { trailers: ["x-checksum: c0ffee"] })];
    const ch = await channelOver(servers);
    // undici's own types name its Dispatcher class; ours is what its functions call (dispatch).
    const dispatcher = createDispatcher(ch) as unknown as Dispatcher;
    const base = `http://svc.test:${servers[0]!.port}`;
    expect(await (await undiciFetch(`${base}/index.html`, { dispatcher })).text()).toBe("hello from a real server\n");
    const r = await undiciRequest(`${base}/echo`, { dispatcher, method: "POST", body: "over undici.request", headers: { "x-a": "1" } });
    expect(r.statusCode).toBe(200);
    expect(await r.body.text()).toBe("over undici.request");
    expect(r.trailers["x-checksum"]).toBe("c0ffee");
    const chunks: Buffer[] = [];
    await undiciStream(`${base}/big.bin`, { dispatcher, method: "GET" }, () => new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
    expect(Buffer.concat(chunks).length).toBe(1024 * 1024);
  });

  it("a controller-style handler (how undici 8 and Node 26's fetch call a dispatcher) gets head, data with pause/resume, and trailers", async () => {
    const docroot = makeDocroot();
    const servers = [await startNghttpd("127.0.0.2", docroot, { trailers: ["x-checksum: c0ffee"] })];
    const ch = await channelOver(servers);
    const dispatcher = createDispatcher(ch);
    const seen: { status?: number; bytes: number; pauses: number; trailers?: Record<string, string | string[]> } = { bytes: 0, pauses: 0 };
    await new Promise<void>((resolve, reject) => {
      const handler: ControllerHandler = {
        onRequestStart: () => {},
        onResponseStart: (_c, status) => void (seen.status = status),
        onResponseData: (c: DispatchController, chunk) => {
          seen.bytes += chunk.length;
          if (seen.pauses < 3) {
            seen.pauses++;
            c.pause();
            setTimeout(() => c.resume(), 20);
          }
        },
        onResponseEnd: (_c, trailers) => ((seen.trailers = trailers), resolve()),
        onResponseError: (_c, err) => reject(err),
      };
      dispatcher.dispatch({ origin: `http://svc.test:${servers[0]!.port}`, path: "/big.bin", method: "GET" }, handler);
    });
    expect(seen.status).toBe(200);
    expect(seen.bytes).toBe(1024 * 1024);
    expect(seen.pauses).toBe(3);
    expect(seen.trailers?.["x-checksum"]).toBe("c0ffee");
    expect(ch.stats().members[0]!.inFlight).toBe(0);
  });

  it("aborting a fetch mid-body rejects with the caller's AbortError and frees the member", async () => {
    const docroot = makeDocroot();
    const servers = [await startNghttpd("127.0.0.2", docroot)];
    const ch = await channelOver(servers);
    const dispatcher = createDispatcher(ch);
    const ac = new AbortController();
    const res = await globalFetch(`http://svc.test:${servers[0]!.port}/big.bin`, { dispatcher, signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await expect(reader.read()).rejects.toMatchObject({ name: "AbortError" });
    await expect(globalFetch(`http://svc.test:${servers[0]!.port}/`, { dispatcher, signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: "AbortError",
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(ch.stats().members[0]!.inFlight).toBe(0);
    expect(ch.stats().members[0]!.state).toBe("ready");
  });

  it("errors reach fetch and undici.request in undici's shape, with the dialtone error as cause", async () => {
    const docroot = makeDocroot();
    const servers = [await startNghttpd("127.0.0.2", docroot)];
    const port = servers[0]!.port;
    await servers[0]!.kill();
    const ch = open({ target: `http://svc.test:${port}`, discovery: discoveryOf(servers), members: 1, acquireTimeout: 300 });
    const dispatcher = createDispatcher(ch);
    const err = (await globalFetch(`http://svc.test:${port}/`, { dispatcher }).catch((e: unknown) => e)) as Error & {
      cause: Error & { code: string; cause: unknown };
    };
    expect(err).toBeInstanceOf(TypeError);
    expect(err.cause.code).toBe("UND_ERR_CONNECT_TIMEOUT");
    expect(err.cause.cause).toBeInstanceOf(NoMemberError);
    const err2 = (await undiciRequest(`http://svc.test:${port}/`, { dispatcher: dispatcher as unknown as Dispatcher }).catch((e: unknown) => e)) as Error & {
      code: string;
    };
    expect(err2.code).toBe("UND_ERR_CONNECT_TIMEOUT");
    const err3 = (await undiciRequest(`http://elsewhere.test:${port}/`, { dispatcher: dispatcher as unknown as Dispatcher }).catch(
      (e: unknown) => e,
    )) as Error & { code: string };
    expect(err3.code).toBe("UND_ERR_INVALID_ARG");
  });

  it("under load through fetch, SIGKILL and SIGSTOP of two of three nghttpd members cost no more failures than request() on the same channel", async () => {
    const docroot = makeDocroot();
    const servers = [await startNghttpd("127.0.0.2", docroot), await startNghttpd("127.0.0.3", docroot), await startNghttpd("127.0.0.4", docroot)];
    const ch = await channelOver(servers, { requestTimeout: 3000 });
    const dispatcher = createDispatcher(ch);
    const url = `http://svc.test:${servers[0]!.port}/index.html`;
    const tallies = await loadThroughFaults(
      {
        fetch: async () => (await globalFetch(url, { dispatcher, signal: AbortSignal.timeout(3000) })).text(),
        request: () => ch.request({ path: "/index.html", timeout: 3000 }),
      },
      killThenFreeze(servers),
    );
    servers[1]!.thaw();
    expectLossesLikeRequest(tallies, "fetch");
  });
});

describe("dialtone/undici: the dispatcher is undici's own kind", () => {
  it("extends undici's Dispatcher class, so its request(), compose() and the rest are undici's; CONNECT says NotSupportedError", async () => {
    const ch = open({ target: "http://svc.test:1", discovery: "static:///127.0.0.2:1", members: 1 });
    const d = createDispatcher(ch);
    expect(d).toBeInstanceOf(UndiciDispatcher);
    expect(d.request).toBe(UndiciDispatcher.prototype.request);
    expect(d.compose).toBe(UndiciDispatcher.prototype.compose);
    await expect(d.connect({ origin: "http://svc.test:1", path: "/" })).rejects.toMatchObject({ code: "UND_ERR_NOT_SUPPORTED" });
    await d.close();
  });
});

import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startBackends, stopAllBackends, type Backend } from "../helpers/backends.js";
import { eventually, startBroker, stopAllBrokers, type BrokerProcess } from "../helpers/broker.js";
import { FLAG, FRAME, frame } from "../helpers/raw-h2.js";

/**
 * The broker's ingress limits against clients that misbehave on purpose:
 * slowloris heads, more connections than allowed, more h2c streams than
 * allowed. The broker is a real child process; the backend is the demo
 * HTTP/2 backend. Every socket opened here is destroyed before its test ends.
 */

afterEach(async () => {
  await stopAllBrokers();
  await stopAllBackends();
});

async function brokerOver(backends: Backend[], limits: string): Promise<BrokerProcess> {
  return await startBroker(
    `listen: ["http://127.0.0.1:0"]\nadmin: "http://127.0.0.1:0"\nlimits: ${limits}\nupstreams:\n  api: { target: "http://api.internal:${backends[0]!.port}", discovery: "static:///${backends.map((b) => b.key).join(",")}", members: ${backends.length}, default: true, warm: true }\n`,
  );
}

function hostPort(b: BrokerProcess): { host: string; port: number } {
  const u = new URL(b.listen[0]!);
  return { host: u.hostname, port: Number(u.port) };
}

/** Connects, runs `drive` on the socket, and resolves with when (ms after connect) the broker closed it and what it sent; bounded by `maxMs`. */
function watchClose(b: BrokerProcess, drive: (s: net.Socket) => void, maxMs: number): Promise<{ closedAfter: number | undefined; received: string }> {
  const { host, port } = hostPort(b);
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    let received = "";
    let t0 = 0;
    const giveUp = setTimeout(() => {
      s.destroy();
      resolve({ closedAfter: undefined, received });
    }, maxMs);
    s.on("data", (d: Buffer) => (received += d.toString("latin1")));
    s.on("error", () => {});
    s.once("connect", () => {
      t0 = performance.now();
      drive(s);
    });
    s.once("close", () => {
      clearTimeout(giveUp);
      resolve({ closedAfter: performance.now() - t0, received });
    });
  });
}

function get(b: BrokerProcess, path = "/headers"): Promise<number> {
  const { host, port } = hostPort(b);
  return new Promise((resolve) => {
    const req = http.request({ host, port, path, agent: false, headers: { host: "api.internal" }, timeout: 5_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

describe("broker limits: slowloris", () => {
  it("cuts a client that connects and sends nothing, and one that drips its HTTP/1.1 head, at headersTimeout", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const b = await brokerOver(backends, "{ headersTimeout: 600ms }");
    const silent = watchClose(b, () => {}, 5_000);
    let drip: NodeJS.Timeout | undefined;
    const dripping = watchClose(
      b,
      (s) => {
        s.write("GET /headers HTTP/1.1\r\nHost: api.internal\r\n");
        let n = 0;
        // One header line every 100 ms, never the blank line that ends the head (at most 50 lines).
        drip = setInterval(() => {
          if (n++ < 50 && !s.destroyed) s.write(`x-drip-${n}: 1\r\n`);
        }, 100);
      },
      5_000,
    );
    // Meanwhile, a well-behaved client is served.
    expect(await get(b)).toBe(200);
    const [a, d] = await Promise.all([silent, dripping]);
    clearInterval(drip);
    expect(a.closedAfter).toBeDefined();
    expect(a.closedAfter!).toBeGreaterThanOrEqual(500);
    expect(a.closedAfter!).toBeLessThan(2_500);
    expect(d.closedAfter).toBeDefined();
    expect(d.closedAfter!).toBeLessThan(2_500);
    // Node answers an unfinished head with 408 before closing.
    expect(d.received).toMatch(/^HTTP\/1\.1 408/);
    expect(await get(b)).toBe(200);
  });

  it("cuts a client that sends only part of the h2c preface at headersTimeout", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const b = await brokerOver(backends, "{ headersTimeout: 600ms }");
    const r = await watchClose(b, (s) => s.write("PRI * HTTP/2.0\r\n"), 5_000);
    expect(r.closedAfter).toBeDefined();
    expect(r.closedAfter!).toBeLessThan(2_500);
  });
});

describe("broker limits: connections and streams", () => {
  it("maxConnections: past the limit a new connection is closed at once; once one closes, a new one is served", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const b = await brokerOver(backends, "{ maxConnections: 3 }");
    const { host, port } = hostPort(b);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 3 });
    try {
      // Three keep-alive connections, each proven open by a served request.
      const held = await Promise.all(
        Array.from(
          { length: 3 },
          () =>
            new Promise<number>((resolve) => {
              const req = http.request({ host, port, path: "/headers?delay=200", agent, headers: { host: "api.internal" }, timeout: 5_000 }, (res) => {
                res.resume();
                res.on("end", () => resolve(res.statusCode ?? 0));
              });
              req.on("error", () => resolve(0));
              req.end();
            }),
        ),
      );
      expect(held).toEqual([200, 200, 200]);
      // The fourth is accepted by the kernel and closed by the broker without a byte.
      const fourth = await watchClose(b, (s) => s.write("GET /headers HTTP/1.1\r\nHost: api.internal\r\n\r\n"), 3_000);
      expect(fourth.closedAfter).toBeDefined();
      expect(fourth.received).toBe("");
    } finally {
      agent.destroy();
    }
    expect(await eventually(async () => (await get(b)) === 200, 3_000)).toBe(true);
  });

  it("maxStreams: h2c clients are told the limit, and a well-behaved one never has more on the broker at once", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const b = await brokerOver(backends, "{ maxStreams: 4 }");
    const session = http2.connect(b.listen[0]!);
    session.on("error", () => {});
    try {
      await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
      expect(session.remoteSettings.maxConcurrentStreams).toBe(4);
      // 10 requests of 300 ms each: the client queues past 4, so they take at least three rounds.
      // The broker's own in-flight count (from /stats, polled every 50 ms) shows the limit from its side.
      let peak = 0;
      let polling = true;
      const poller = (async () => {
        for (let i = 0; i < 100 && polling; i++) {
          const body = await fetch(`${b.admin}/stats`).then((r) => r.json() as Promise<{ broker: { in_flight: number } }>);
          peak = Math.max(peak, body.broker.in_flight);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const t0 = performance.now();
      const statuses = await Promise.all(
        Array.from(
          { length: 10 },
          () =>
            new Promise<number>((resolve) => {
              const s = session.request({ ":path": "/headers?delay=300", ":authority": "api.internal" });
              let status = 0;
              s.on("response", (h) => (status = Number(h[":status"])));
              s.resume();
              s.on("close", () => resolve(status));
              s.setTimeout(5_000, () => s.close(http2.constants.NGHTTP2_CANCEL));
            }),
        ),
      );
      const elapsed = performance.now() - t0;
      polling = false;
      await poller;
      expect(statuses.every((x) => x === 200)).toBe(true);
      expect(peak).toBeGreaterThanOrEqual(2);
      expect(peak).toBeLessThanOrEqual(4);
      // A lower bound, not a speed claim: 10 calls of 300 ms, 4 at a time, cannot finish in under three rounds.
      expect(elapsed).toBeGreaterThanOrEqual(850);
    } finally {
      session.destroy();
    }
  });

  it("maxStreams: a raw-frame client that ignores the limit is refused (Node ends its connection with GOAWAY), and the broker keeps serving", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const b = await brokerOver(backends, "{ maxStreams: 2 }");
    const { host, port } = hostPort(b);
    const frames = await new Promise<Array<{ type: number; stream: number; code?: number }>>((resolve) => {
      const s = net.connect(port, host);
      const seen: Array<{ type: number; stream: number; code?: number }> = [];
      let buf = Buffer.alloc(0);
      let sent = false;
      const done = setTimeout(() => s.destroy(), 2_500);
      s.on("error", () => {});
      s.on("close", () => {
        clearTimeout(done);
        resolve(seen);
      });
      s.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 9) {
          const len = buf.readUIntBE(0, 3);
          if (buf.length < 9 + len) break;
          const type = buf[3]!;
          const flags = buf[4]!;
          const stream = buf.readUInt32BE(5) & 0x7fffffff;
          const payload = buf.subarray(9, 9 + len);
          buf = buf.subarray(9 + len);
          seen.push({
            type,
            stream,
            code: type === FRAME.RST_STREAM || type === FRAME.GOAWAY ? payload.readUInt32BE(type === FRAME.GOAWAY ? 4 : 0) : undefined,
          });
          // Once the broker's SETTINGS are acknowledged its limit is in force: then open 5 streams in one write.
          if (type === FRAME.SETTINGS && (flags & FLAG.ACK) === 0 && !sent) {
            sent = true;
            const streams = [1, 3, 5, 7, 9].map((id) =>
              frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, id, requestBlock("/headers?delay=500", "api.internal")),
            );
            s.write(Buffer.concat([frame(FRAME.SETTINGS, FLAG.ACK, 0), ...streams]));
          }
        }
      });
      s.once("connect", () => s.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(FRAME.SETTINGS, 0, 0)])));
    });
    const responses = new Set(frames.filter((f) => f.type === FRAME.HEADERS).map((f) => f.stream));
    const refused = frames.filter((f) => (f.type === FRAME.RST_STREAM && f.code === http2.constants.NGHTTP2_REFUSED_STREAM) || f.type === FRAME.GOAWAY);
    // Never more than the limit served; the excess is refused: REFUSED_STREAM, or (what Node's http2 server does once its
    // SETTINGS are acknowledged) the whole connection ended with GOAWAY. This client is a raw-frame one because no
    // HTTP/2 client library will exceed a limit its peer announced.
    expect(responses.size).toBeLessThanOrEqual(2);
    expect(refused.length).toBeGreaterThan(0);
    expect(await get(b)).toBe(200);
  });
});

/** An HPACK block for a GET, every field a literal without indexing (the simplest legal encoding). */
function requestBlock(path: string, authority: string): Buffer {
  const lit = (s: string): Buffer => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, "latin1")]);
  const fields: Array<[string, string]> = [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", path],
    [":authority", authority],
  ];
  return Buffer.concat(fields.map(([k, v]) => Buffer.concat([Buffer.from([0x00]), lit(k), lit(v)])));
}

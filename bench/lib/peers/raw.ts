import http2 from "node:http2";
import { rotatingLookup } from "./lookup.js";
import { CallError, ECHO_PATH, HOSTNAME, warmUp, type BenchClient, type Peer, type Target } from "./types.js";

/**
 * The floor: one node:http2 session, no pool, no health checks. When the
 * session closes it dials the next address on the next call (the least a
 * user would write), so it survives a killed backend but not a frozen one.
 * It collects the response body into one Buffer, as every other client here
 * returns it (dialtone's request(), undici's arrayBuffer()); until
 * 2026-11-25 it dropped the body, a floor no client that returns the body
 * can reach (at 16 KiB about 15–20 µs less CPU per request).
 */
export const rawPeer: Peer = {
  id: "raw-http2",
  label: "raw node:http2 session",
  protocol: "http2",
  namesFailedBackend: true,
  open: (t) => openRaw(t),
};

/**
 * The floor for a channel spread over every backend: one raw session per
 * backend, calls dealt round-robin. What three sockets cost (more, smaller
 * writes per event-loop turn) shows here as it does in dialtone's 3-member
 * channel, with none of dialtone's code (bench/reqpath).
 */
export const rawSpreadPeer: Peer = {
  id: "raw-http2-spread",
  label: "raw node:http2, a session per backend",
  protocol: "http2",
  namesFailedBackend: true,
  async open(t: Target): Promise<BenchClient> {
    const clients = await Promise.all(t.hosts.map((h) => openRaw({ ...t, hosts: [h] })));
    let next = 0;
    return {
      call: (body) => (clients[next++ % clients.length] as BenchClient).call(body),
      close: async () => void (await Promise.all(clients.map((c) => c.close()))),
    };
  },
};

async function openRaw(t: Target): Promise<BenchClient> {
  let session: http2.ClientHttp2Session | undefined;
  let sessionBackend = "";
  let next = 0;
  const sessions = new Set<http2.ClientHttp2Session>();
  const current = (): http2.ClientHttp2Session => {
    if (session && !session.closed && !session.destroyed) return session;
    const host = t.hosts[next++ % t.hosts.length] as string;
    sessionBackend = `${host}:${t.port}`;
    const s = http2.connect(`http://${HOSTNAME}:${t.port}`, { lookup: rotatingLookup([host]) });
    s.on("error", () => {});
    s.once("close", () => {
      sessions.delete(s);
      if (session === s) session = undefined;
    });
    sessions.add(s);
    session = s;
    return s;
  };
  const client: BenchClient = {
    call(body) {
      return new Promise((resolve, reject) => {
        let stream: http2.ClientHttp2Stream;
        let via = "";
        try {
          const s = current();
          via = sessionBackend;
          stream = s.request({ ":method": "POST", ":path": ECHO_PATH });
        } catch (err) {
          return reject(new CallError((err as Error).message, via || undefined, { cause: err }));
        }
        let backend: string | undefined;
        let status = 0;
        const timer = setTimeout(() => {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(new CallError(`timeout after ${t.timeoutMs} ms`, via));
        }, t.timeoutMs);
        stream.on("response", (h) => {
          status = Number(h[":status"]);
          backend = h["x-backend"] as string | undefined;
        });
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("error", () => {});
        stream.on("close", () => {
          clearTimeout(timer);
          if (status !== 200 || stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
            reject(new CallError(`stream closed (status ${status}, rst ${stream.rstCode})`, via));
          } else if (Buffer.concat(chunks).length !== body.length) {
            reject(new CallError("echo body of the wrong length", via));
          } else {
            resolve(backend);
          }
        });
        stream.end(body);
      });
    },
    async close() {
      for (const s of sessions) s.destroy();
    },
  };
  await warmUp(client);
  return client;
}

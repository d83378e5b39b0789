/**
 * In-process peers that misbehave in one precise way, for supervisor tests:
 * a black hole (accepts TCP, never speaks), a silent HTTP/2 peer (sends its
 * SETTINGS, never answers a PING), and a GOAWAY peer (a real node:http2
 * server that sends GOAWAY a fixed time after each handshake: 0 = at once).
 * Each counts the connections it accepted. Close them all with closeBadPeers().
 */
import { createServer as createH2Server, type ServerHttp2Session } from "node:http2";
import { createServer, type Server, type Socket } from "node:net";

export interface BadPeer {
  readonly key: string;
  /** Connections accepted so far. */
  readonly accepted: number;
}

const open = new Set<{ close(): Promise<void> }>();

async function listen(server: Server, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const a = server.address();
  if (a === null || typeof a === "string") throw new Error("no port");
  return a.port;
}

function tracked(server: Server, sockets: Set<Socket>): { close(): Promise<void> } {
  const handle = {
    close: async (): Promise<void> => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  open.add(handle);
  return handle;
}

/** Accepts TCP and never sends a byte. */
export async function blackHole(host: string): Promise<BadPeer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  const port = await listen(server, host);
  tracked(server, sockets);
  return {
    key: `${host}:${port}`,
    get accepted() {
      return accepted;
    },
  };
}

/** Sends an empty HTTP/2 SETTINGS frame, then ignores everything (no SETTINGS ACK, no PONG). */
export async function silentH2(host: string): Promise<BadPeer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    // length 0, type SETTINGS (4), flags 0, stream 0.
    s.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
  });
  const port = await listen(server, host);
  tracked(server, sockets);
  return {
    key: `${host}:${port}`,
    get accepted() {
      return accepted;
    },
  };
}

/** A real HTTP/2 server that sends GOAWAY `afterMs` after each handshake and then closes the session. */
export async function goawayPeer(host: string, afterMs: number): Promise<BadPeer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createH2Server();
  server.on("connection", (s: Socket) => {
    accepted++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("session", (session: ServerHttp2Session) => {
    session.on("error", () => {});
    // At once: GOAWAY goes out with our SETTINGS, ahead of any PING ACK.
    if (afterMs === 0) return void session.close();
    const t = setTimeout(() => {
      if (!session.destroyed) session.close();
    }, afterMs);
    session.on("close", () => clearTimeout(t));
  });
  server.on("stream", (stream) => {
    stream.respond({ ":status": 200 });
    stream.end("ok");
  });
  const port = await listen(server as unknown as Server, host);
  tracked(server as unknown as Server, sockets);
  return {
    key: `${host}:${port}`,
    get accepted() {
      return accepted;
    },
  };
}

export async function closeBadPeers(): Promise<void> {
  const all = [...open];
  open.clear();
  await Promise.all(all.map((p) => p.close()));
}

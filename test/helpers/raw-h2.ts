/**
 * A raw-frame HTTP/2 server, for faults that no well-behaved server library
 * can be made to produce (a response cut short by RST_STREAM(NO_ERROR), a body
 * shorter than its content-length). It speaks just enough HTTP/2 for a client
 * to connect, be PINGed and send requests: the preface, SETTINGS and their
 * ACKs, PING ACKs; every request's HEADERS frame is handed to `onRequest`,
 * which writes whatever frames the test wants. Tests that use it say so in
 * their names: it is a mock peer, used only where a real one cannot fail so.
 */
import net from "node:net";

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK, the simplest legal way: `:status` by static index, every other field as a literal without indexing. */
export function headerBlock(status: number, headers: Record<string, string> = {}): Buffer {
  const parts: Buffer[] = [];
  const lit = (s: string): Buffer => {
    const b = Buffer.from(s, "latin1");
    if (b.length > 126) throw new Error("raw-h2: header too long for this encoder");
    return Buffer.concat([Buffer.from([b.length]), b]);
  };
  // Literal without indexing, indexed name 8 (:status).
  parts.push(Buffer.from([0x08]), lit(String(status)));
  for (const [k, v] of Object.entries(headers)) parts.push(Buffer.from([0x00]), lit(k.toLowerCase()), lit(v));
  return Buffer.concat(parts);
}

export function headersFrame(streamId: number, status: number, headers: Record<string, string> = {}, endStream = false): Buffer {
  return frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), streamId, headerBlock(status, headers));
}

export function trailersFrame(streamId: number, trailers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(trailers)) {
    parts.push(Buffer.from([0x00, k.length]), Buffer.from(k), Buffer.from([v.length]), Buffer.from(v));
  }
  return frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, streamId, Buffer.concat(parts));
}

export function dataFrame(streamId: number, data: string | Buffer, endStream = false): Buffer {
  return frame(FRAME.DATA, endStream ? FLAG.END_STREAM : 0, streamId, Buffer.from(data));
}

export function rstFrame(streamId: number, code: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, streamId, p);
}

export interface RawH2Server {
  readonly port: number;
  /** Requests (HEADERS frames from the client) seen so far. */
  readonly requests: number;
  /** RST_STREAM frames the client sent, in order: which stream, which error code (8 = CANCEL). */
  readonly resets: ReadonlyArray<{ streamId: number; code: number }>;
  close(): Promise<void>;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Listens on `host` (loopback); `onRequest` answers each request by writing
 * frames to `write`, and may cut the TCP connection with `drop` (a peer that
 * vanishes mid-response).
 */
export async function startRawH2Server(
  host: string,
  onRequest: (streamId: number, write: (b: Buffer) => void, drop: () => void) => void,
): Promise<RawH2Server> {
  let requests = 0;
  const resets: Array<{ streamId: number; code: number }> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buf = Buffer.alloc(0);
    let prefaceSeen = false;
    const write = (b: Buffer): void => {
      if (!socket.destroyed) socket.write(b);
    };
    write(frame(FRAME.SETTINGS, 0, 0));
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!prefaceSeen) {
        if (buf.length < PREFACE.length) return;
        if (!buf.subarray(0, PREFACE.length).equals(PREFACE)) return void socket.destroy();
        prefaceSeen = true;
        buf = buf.subarray(PREFACE.length);
      }
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) return;
        const type = buf[3] as number;
        const flags = buf[4] as number;
        const id = buf.readUInt32BE(5) & 0x7fffffff;
        const payload = buf.subarray(9, 9 + len);
        buf = buf.subarray(9 + len);
        if (type === FRAME.SETTINGS && !(flags & FLAG.ACK)) write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        else if (type === FRAME.PING && !(flags & FLAG.ACK)) write(frame(FRAME.PING, FLAG.ACK, 0, Buffer.from(payload)));
        else if (type === FRAME.RST_STREAM && payload.length === 4) resets.push({ streamId: id, code: payload.readUInt32BE(0) });
        else if (type === FRAME.HEADERS) {
          requests++;
          onRequest(id, write, () => socket.destroy());
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get requests() {
      return requests;
    },
    resets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

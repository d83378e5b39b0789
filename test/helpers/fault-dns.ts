import { createSocket } from "node:dgram";
import { createServer, type Socket } from "node:net";
import dnsPacket, { type Answer, type Packet, type Question } from "dns-packet";

/**
 * A DNS server for FAULT INJECTION: it does on demand what a real server will
 * not (SERVFAIL, truncation, wrong IDs, other questions, garbage, silence,
 * zero TTLs). Each query goes to `handler`, which decides what to send back.
 */
export type FaultReply =
  | { kind: "answer"; answers?: Answer[]; additionals?: Answer[]; authorities?: Answer[]; rcode?: string; truncate?: boolean; id?: number; question?: Question }
  | { kind: "raw"; bytes: Buffer }
  | { kind: "silent" };

export interface FaultQuery {
  transport: "udp" | "tcp";
  /** The client's source port. */
  port: number;
  id: number;
  question: Question;
}

export type FaultHandler = (q: FaultQuery) => FaultReply | FaultReply[];

export interface FaultDns {
  server: string;
  port: number;
  queries: FaultQuery[];
  setHandler(h: FaultHandler): void;
  stop(): Promise<void>;
}

const RCODES: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };

function build(q: FaultQuery, r: Extract<FaultReply, { kind: "answer" }>): Packet {
  const rcode = RCODES[r.rcode ?? "NOERROR"] ?? 0;
  let flags = dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode;
  if (r.truncate) flags |= dnsPacket.TRUNCATED_RESPONSE;
  return {
    type: "response",
    id: r.id ?? q.id,
    flags,
    questions: [r.question ?? q.question],
    answers: r.truncate ? [] : (r.answers ?? []),
    additionals: r.truncate ? [] : (r.additionals ?? []),
    authorities: r.authorities ?? [],
  };
}

/**
 * Starts UDP and TCP on one port of 127.0.0.1. The UDP port is picked by the
 * OS; the same TCP port may be taken (another socket's ephemeral port), so
 * that case is retried on a new port, a bounded number of times.
 */
export async function startFaultDns(handler: FaultHandler): Promise<FaultDns> {
  let last: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      return await startOnce(handler);
    } catch (err) {
      last = err;
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    }
  }
  throw last;
}

async function startOnce(handler: FaultHandler): Promise<FaultDns> {
  let h = handler;
  const queries: FaultQuery[] = [];
  const udp = createSocket("udp4");
  await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
  const port = udp.address().port;
  const replies = (q: FaultQuery): FaultReply[] => {
    queries.push(q);
    const r = h(q);
    return Array.isArray(r) ? r : [r];
  };
  udp.on("message", (msg, rinfo) => {
    let p: Packet;
    try {
      p = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const q: FaultQuery = { transport: "udp", port: rinfo.port, id: p.id ?? 0, question: (p.questions ?? [])[0] as Question };
    for (const r of replies(q)) {
      if (r.kind === "silent") continue;
      const bytes = r.kind === "raw" ? r.bytes : dnsPacket.encode(build(q, r));
      udp.send(bytes, rinfo.port, rinfo.address);
    }
  });
  const sockets = new Set<Socket>();
  const tcp = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    s.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      const p = dnsPacket.streamDecode(buf);
      const q: FaultQuery = { transport: "tcp", port: s.remotePort ?? 0, id: p.id ?? 0, question: (p.questions ?? [])[0] as Question };
      for (const r of replies(q)) {
        if (r.kind === "silent") continue;
        if (r.kind === "raw") {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.bytes.length);
          s.write(Buffer.concat([len, r.bytes]));
        } else {
          s.write(dnsPacket.streamEncode(build(q, { ...r, truncate: false })));
        }
      }
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen(port, "127.0.0.1", () => {
        tcp.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((r) => udp.close(() => r()));
    throw err;
  }
  return {
    server: `127.0.0.1:${port}`,
    port,
    queries,
    setHandler(next) {
      h = next;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
      await new Promise<void>((r) => udp.close(() => r()));
    },
  };
}

/** An A record. */
export function a(name: string, ip: string, ttl = 30): Answer {
  return { type: "A", name, ttl, class: "IN", data: ip };
}

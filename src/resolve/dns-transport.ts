import { createSocket, type Socket } from "node:dgram";
import { connect as tcpConnect } from "node:net";
import dnsPacket from "dns-packet";
import { systemClock, type Clock } from "../core/clock.js";
import { DnsQueryError, decodeResponse, makeQuery, type DnsResponse, type QueryType } from "./dns-message.js";

export interface Nameserver {
  host: string;
  port: number;
}

/**
 * Asks one server one question: UDP first, and TCP when the UDP answer is
 * truncated. Within the timeout, UDP datagrams that fail the checks (garbage,
 * wrong ID, another question, another sender) are ignored, not believed: a
 * spoofed answer must not win a race against the real one.
 */
export async function askServer(
  server: Nameserver,
  name: string,
  type: QueryType,
  timeoutMs: number,
  target: string,
  clock: Clock = systemClock,
): Promise<DnsResponse> {
  const udp = await askUdp(server, name, type, timeoutMs, target, clock);
  if (!udp.truncated) return udp;
  return askTcp(server, name, type, timeoutMs, target, clock);
}

/** How a resolver asks one server one question (askServer; tests pass a scripted one). */
export type AskServer = typeof askServer;

function askUdp(server: Nameserver, name: string, type: QueryType, timeoutMs: number, target: string, clock: Clock): Promise<DnsResponse> {
  const query = makeQuery(name, type);
  return new Promise((resolve, reject) => {
    const socket: Socket = createSocket(server.host.includes(":") ? "udp6" : "udp4");
    let ignored = 0;
    let lastProblem = "";
    const done = (err: Error | undefined, res?: DnsResponse): void => {
      timer.cancel();
      socket.close();
      if (err) reject(err);
      else resolve(res as DnsResponse);
    };
    const timer = clock.setTimeout(() => {
      const why = ignored > 0 ? `; ignored ${ignored} bad answer(s), last: ${lastProblem}` : "";
      // Only bad datagrams came back: the answer was malformed (or cut), not missing.
      done(
        new DnsQueryError(
          target,
          `no answer from ${serverKey(server)} for ${name} ${type} within ${timeoutMs} ms${why}`,
          ignored > 0 ? "malformed" : "timeout",
          serverKey(server),
        ),
      );
    }, timeoutMs);
    socket.on("error", (err) => done(new DnsQueryError(target, `UDP to ${serverKey(server)}: ${err.message}`, "error", serverKey(server), { cause: err })));
    socket.on("message", (msg, rinfo) => {
      if (rinfo.address !== server.host || rinfo.port !== server.port) {
        ignored++;
        lastProblem = `datagram from ${rinfo.address}:${rinfo.port}`;
        return;
      }
      try {
        done(undefined, decodeResponse(msg, query, target));
      } catch (err) {
        ignored++;
        lastProblem = err instanceof Error ? err.message : String(err);
      }
    });
    socket.send(query.bytes, server.port, server.host, (err) => {
      if (err) done(new DnsQueryError(target, `UDP to ${serverKey(server)}: ${err.message}`, "error", serverKey(server), { cause: err }));
    });
  });
}

function askTcp(server: Nameserver, name: string, type: QueryType, timeoutMs: number, target: string, clock: Clock): Promise<DnsResponse> {
  const query = makeQuery(name, type);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: server.host, port: server.port });
    let buf = Buffer.alloc(0);
    let settled = false;
    const done = (err: Error | undefined, res?: DnsResponse): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      socket.destroy();
      if (err) reject(err);
      else resolve(res as DnsResponse);
    };
    const key = serverKey(server);
    const timer = clock.setTimeout(
      () => done(new DnsQueryError(target, `no TCP answer from ${key} for ${name} ${type} within ${timeoutMs} ms`, "timeout", key)),
      timeoutMs,
    );
    socket.on("error", (err) => done(new DnsQueryError(target, `TCP to ${key}: ${err.message}`, "error", key, { cause: err })));
    socket.on("close", () => done(new DnsQueryError(target, `TCP to ${key} closed before a full answer`, "malformed", key)));
    socket.on("connect", () =>
      socket.write(dnsPacket.streamEncode({ type: "query", id: query.id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: "IN" }] })),
    );
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2) return;
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) return;
      try {
        done(undefined, decodeResponse(buf.subarray(2, 2 + len), query, target));
      } catch (err) {
        // Over TCP nobody else can inject: a bad answer here is the server's, and final.
        const prefix = `resolving ${target}: `;
        const msg = (err as Error).message;
        done(
          new DnsQueryError(target, `${key} sent a bad TCP answer: ${msg.startsWith(prefix) ? msg.slice(prefix.length) : msg}`, "malformed", key, {
            cause: err,
          }),
        );
      }
    });
  });
}

export function serverKey(s: Nameserver): string {
  return s.host.includes(":") ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

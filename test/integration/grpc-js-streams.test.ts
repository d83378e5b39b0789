/**
 * Many long-lived grpc-js streams on one dialtone member, beside grpc-js
 * alone, against the grpc-js TestService (one backend, one member): every
 * stream gets its response headers and its answers, and streams whose reader
 * has stopped (their HTTP/2 stream windows full) hold back no other stream.
 *
 * Why these exist: a session saw the 9th long-lived stream get no response
 * headers. The Python interop server (grpc_interop_server.py) is grpcio's
 * synchronous server, which runs each call on a thread of its pool
 * (max_workers=16) and sends the headers from that thread: its 17th
 * concurrent long-lived call gets no headers until a call ends, through
 * grpc-js alone exactly as through dialtone (measured: 16 of 40 bidi calls
 * got headers, either way; a test whose reference calls hold threads beside
 * dialtone's reaches the limit sooner). That is the server's limit, not a
 * client's; the grpc-js server has none, so these tests use it.
 */
import grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { createGrpcChannel } from "../../src/adapters/grpc-js.js";
import { eventually } from "../helpers/channel.js";
import { loadTesting, type AnyClient } from "../helpers/grpc-js.js";
import { startGrpcJsInterop, stopRealServers, type GrpcServer } from "../helpers/real-servers.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();
const clients: AnyClient[] = [];
const calls: Array<{ cancel(): void }> = [];
afterEach(async () => {
  for (const c of calls.splice(0)) c.cancel();
  for (const c of clients.splice(0)) c.close();
  await stopRealServers();
});

const { TestService } = loadTesting(grpc);

async function onDialtone(srv: GrpcServer): Promise<AnyClient> {
  const ch = open({ target: `http://svc.test:${srv.port}`, discovery: `static:///${srv.key}`, members: 1 });
  await ch.ready(AbortSignal.timeout(10_000));
  const c = new TestService(ch.target, grpc.credentials.createInsecure(), { channelOverride: createGrpcChannel(ch) });
  clients.push(c);
  return c;
}

function alone(srv: GrpcServer): AnyClient {
  const c = new TestService(srv.key, grpc.credentials.createInsecure());
  clients.push(c);
  return c;
}

for (const via of ["dialtone", "alone"] as const) {
  describe(`many long-lived streams on one connection: grpc-js ${via === "dialtone" ? "on dialtone (1 member)" : "alone (the reference)"}`, () => {
    it("40 long-lived bidi streams each get headers and an answer", async () => {
      const srv = await startGrpcJsInterop("127.0.0.2");
      const c = via === "dialtone" ? await onDialtone(srv) : alone(srv);
      let heads = 0;
      let answers = 0;
      for (let i = 0; i < 40; i++) {
        const call = c.FullDuplexCall(new grpc.Metadata(), { deadline: Date.now() + 60_000 });
        calls.push(call);
        call.on("metadata", () => heads++);
        call.on("data", () => answers++);
        call.on("error", () => {});
        call.write({ responseParameters: [{ size: 10 }] });
      }
      await eventually(() => heads === 40 && answers === 40, 20_000, "40 heads and answers").catch((e: Error) => {
        throw new Error(`${e.message}: ${heads} heads, ${answers} answers`);
      });
      expect([heads, answers]).toEqual([40, 40]);
    }, 60_000);

    it("8 server streams nobody reads (64 KiB each: their stream windows full) hold back no 9th stream's headers or answer", async () => {
      const srv = await startGrpcJsInterop("127.0.0.2");
      const c = via === "dialtone" ? await onDialtone(srv) : alone(srv);
      let heads = 0;
      for (let i = 0; i < 8; i++) {
        const call = c.StreamingOutputCall({ responseParameters: Array.from({ length: 8 }, () => ({ size: 8192 })) }, new grpc.Metadata(), {
          deadline: Date.now() + 60_000,
        });
        calls.push(call);
        call.on("metadata", () => heads++);
        call.on("error", () => {});
      }
      await eventually(() => heads === 8, 20_000, `heads ${heads}`);
      const ninth = c.FullDuplexCall(new grpc.Metadata(), { deadline: Date.now() + 60_000 });
      calls.push(ninth);
      let head = false;
      let answer = false;
      ninth.on("metadata", () => (head = true));
      ninth.on("data", () => (answer = true));
      ninth.on("error", () => {});
      ninth.write({ responseParameters: [{ size: 10 }] });
      await eventually(() => head && answer, 20_000, "the 9th stream's head and answer").catch((e: Error) => {
        throw new Error(`${e.message}: head ${head}, answer ${answer}`);
      });
      expect([head, answer, heads]).toEqual([true, true, 8]);
    }, 60_000);
  });
}

import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { createSessionManager } from "../../src/adapters/connect.js";
import { EchoService } from "../fixtures/echo-service.js";
import { startConnectServer, startPythonGrpc, stopRealServers, type RealServer } from "../helpers/real-servers.js";
import { eventually } from "../helpers/channel.js";
import { expectLossesLikeRequest, killThenFreeze, loadThroughFaults } from "../helpers/fault-load.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();
afterEach(stopRealServers);

async function channelOver(servers: RealServer[], extra: Record<string, unknown> = {}): Promise<ReturnType<typeof open>> {
  const ch = open({
    target: `http://grpc.test:${servers[0]!.port}`,
    discovery: `static:///${servers.map((s) => s.key).join(",")}`,
    members: servers.length,
    ...extra,
  });
  await ch.ready(AbortSignal.timeout(10_000));
  return ch;
}

/** A BytesValue message as gRPC frames it: flag 0, length, then field 1 (bytes). */
function grpcFrame(value: Buffer): Buffer {
  const msg = Buffer.concat([Buffer.from([0x0a, value.length]), value]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

describe("dialtone/connect: Connect and gRPC clients over a channel (Python gRPC and connect-node servers)", () => {
  it("gRPC unary and server-streaming calls to three Python gRPC servers balance over the warm members", async () => {
    const servers = [await startPythonGrpc("127.0.0.2"), await startPythonGrpc("127.0.0.3"), await startPythonGrpc("127.0.0.4")];
    // In-flight spreads one-at-a-time calls evenly: this test is about the adapter reaching every member.
    const ch = await channelOver(servers, { balancer: "in-flight" });
    const transport = createGrpcTransport({ baseUrl: ch.target, sessionManager: createSessionManager(ch) });
    const echo = createClient(EchoService, transport);
    const backends = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const value = Buffer.from(`call ${i}`);
      const res = await echo.echo({ value }, { onHeader: (h) => void backends.add(h.get("x-backend") ?? "?") });
      expect(Buffer.from(res.value).toString()).toBe(`call ${i}`);
    }
    expect(backends).toEqual(new Set(servers.map((s) => s.key)));
    const got: string[] = [];
    for await (const m of echo.stream({ value: Buffer.from("again") })) got.push(Buffer.from(m.value).toString());
    expect(got).toEqual(["again", "again", "again"]);
    // Each stream stays in flight until it closes, a moment after its last message.
    await eventually(() => ch.stats().members.every((m) => m.inFlight === 0), 2000, "streams to close");
  });

  it("connect-node servers: the Connect protocol (httpVersion 2) and gRPC both run over the channel", async () => {
    const servers = [await startConnectServer("127.0.0.2"), await startConnectServer("127.0.0.3")];
    const ch = await channelOver(servers);
    const sessionManager = createSessionManager(ch);
    for (const transport of [
      createConnectTransport({ baseUrl: ch.target, httpVersion: "2", sessionManager }),
      createGrpcTransport({ baseUrl: ch.target, sessionManager }),
    ]) {
      const echo = createClient(EchoService, transport);
      expect(Buffer.from((await echo.echo({ value: Buffer.from("hi") })).value).toString()).toBe("hi");
      const got: number[] = [];
      for await (const m of echo.stream({ value: Buffer.from("x") })) got.push(m.value.length);
      expect(got).toEqual([1, 1, 1]);
    }
  });

  it("under load, SIGKILL and SIGSTOP of two of three Python gRPC servers cost Connect-gRPC callers no more failures than request()", async () => {
    const servers = [await startPythonGrpc("127.0.0.2"), await startPythonGrpc("127.0.0.3"), await startPythonGrpc("127.0.0.4")];
    const ch = await channelOver(servers, { requestTimeout: 3000 });
    const echo = createClient(EchoService, createGrpcTransport({ baseUrl: ch.target, sessionManager: createSessionManager(ch) }));
    const frame = grpcFrame(Buffer.from("load"));
    const tallies = await loadThroughFaults(
      {
        connect: () => echo.echo({ value: Buffer.from("load") }, { timeoutMs: 3000 }),
        request: async () => {
          const r = await ch.request({
            method: "POST",
            path: "/dialtone.test.Echo/Echo",
            headers: { "content-type": "application/grpc", te: "trailers" },
            body: frame,
            timeout: 3000,
          });
          if (r.trailers["grpc-status"] !== "0") throw new Error(`grpc-status ${String(r.trailers["grpc-status"])}`);
        },
      },
      killThenFreeze(servers),
    );
    servers[1]!.thaw();
    expectLossesLikeRequest(tallies, "connect");
  });
});

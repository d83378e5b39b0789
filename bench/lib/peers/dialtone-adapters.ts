import { createClient } from "@connectrpc/connect";
import grpc from "@grpc/grpc-js";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createDispatcher } from "../../../dist/adapters/undici.js";
import { createSessionManager } from "../../../dist/adapters/connect.js";
import { createGrpcChannel } from "../../../dist/adapters/grpc-js.js";
import { createHttp2Channel, type Http2Channel } from "../../../dist/index.js";
import { Echo } from "./connect.js";
import { EchoClient, echoCall } from "./grpcjs.js";
import { ECHO_PATH, HOSTNAME, warmUp, type BenchClient, type Peer, type Target } from "./types.js";

/** A dialtone channel over every backend, with its defaults, as the adapters' callers would make it. */
async function channelFor(t: Target): Promise<Http2Channel> {
  const channel = createHttp2Channel({
    target: `http://${HOSTNAME}:${t.port}`,
    discovery: `static:///${t.hosts.map((h) => `${h}:${t.port}`).join(",")}`,
    members: t.hosts.length,
    requestTimeout: t.timeoutMs,
  });
  await channel.ready(AbortSignal.timeout(10_000));
  return channel;
}

/** Node's global fetch with a dialtone dispatcher (dialtone/undici): POST echo. */
export const dialtoneFetchPeer: Peer = {
  id: "dialtone-fetch",
  label: "fetch via dialtone",
  protocol: "http2",
  namesFailedBackend: false,
  async open(t: Target): Promise<BenchClient> {
    const channel = await channelFor(t);
    const dispatcher = createDispatcher(channel);
    const url = `http://${HOSTNAME}:${t.port}${ECHO_PATH}`;
    const client: BenchClient = {
      async call(body) {
        const res = await fetch(url, { method: "POST", body, dispatcher, signal: AbortSignal.timeout(t.timeoutMs) });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        return res.headers.get("x-backend") ?? undefined;
      },
      close: () => channel.close(),
    };
    await warmUp(client);
    return client;
  },
};

/** connect-node's gRPC transport over a dialtone channel (dialtone/connect): unary echo. */
export const dialtoneConnectPeer: Peer = {
  id: "dialtone-connect-grpc",
  label: "Connect gRPC via dialtone",
  protocol: "grpc",
  namesFailedBackend: false,
  async open(t: Target): Promise<BenchClient> {
    const channel = await channelFor(t);
    const echo = createClient(Echo, createGrpcTransport({ baseUrl: channel.target, sessionManager: createSessionManager(channel) }));
    const client: BenchClient = {
      async call(body) {
        let backend: string | undefined;
        await echo.echo({ value: body }, { timeoutMs: t.timeoutMs, onHeader: (h) => void (backend = h.get("x-backend") ?? undefined) });
        return backend;
      },
      close: () => channel.close(),
    };
    await warmUp(client);
    return client;
  },
};

/** @grpc/grpc-js's own client with a dialtone channel as its channelOverride (dialtone/grpc-js): unary echo. */
export const dialtoneGrpcJsPeer: Peer = {
  id: "dialtone-grpc-js",
  label: "grpc-js on dialtone",
  protocol: "grpc",
  namesFailedBackend: false,
  async open(t: Target): Promise<BenchClient> {
    const channel = await channelFor(t);
    const raw = new EchoClient(channel.target, grpc.credentials.createInsecure(), { channelOverride: createGrpcChannel(channel) });
    const client: BenchClient = {
      call: (body) => echoCall(raw, body, t.timeoutMs),
      async close() {
        raw.close();
        await channel.close();
      },
    };
    await warmUp(client);
    return client;
  },
};

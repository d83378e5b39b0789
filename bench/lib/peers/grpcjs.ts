import grpc from "@grpc/grpc-js";
import { CallError, GRPC_PATH, warmUp, type BenchClient, type Peer, type Target } from "./types.js";

export const identity = (b: Buffer): Buffer => b;

/** The subchannel address a call went to ("127.0.0.3:PORT"), when grpc-js knows it. */
export function peerOf(call: grpc.ClientUnaryCall): string | undefined {
  const peer = call.getPeer();
  return /^\d+\.\d+\.\d+\.\d+:\d+$/.test(peer) ? peer : undefined;
}

/** A generic client for /dialtone.bench.Echo/Echo whose messages are raw bytes (identity serializers). */
export const EchoClient = grpc.makeGenericClientConstructor(
  {
    Echo: {
      path: GRPC_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  },
  "Echo",
);

/** Keepalive matched to dialtone's health defaults (PING every 1 s, 750 ms timeout). */
/** One unary echo on a generic grpc-js client: resolves with the backend that answered (its x-backend header). */
export function echoCall(raw: InstanceType<typeof EchoClient>, body: Uint8Array, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let backend: string | undefined;
    const call = raw.makeUnaryRequest(
      GRPC_PATH,
      identity,
      identity,
      Buffer.from(body.buffer, body.byteOffset, body.byteLength),
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err) => (err ? reject(new CallError(err.message, peerOf(call), { cause: err })) : resolve(backend)),
    );
    call.on("metadata", (md) => {
      const v = md.get("x-backend")[0];
      backend = typeof v === "string" ? v : undefined;
    });
  });
}

const TUNED: grpc.ChannelOptions = {
  "grpc.keepalive_time_ms": 1000,
  "grpc.keepalive_timeout_ms": 750,
  "grpc.keepalive_permit_without_calls": 1,
};

/**
 * @grpc/grpc-js with round_robin over a static ipv4: target, defaults or tuned
 * keepalive. `as` replaces the id, label and target (e.g. a dns:// target).
 */
export function grpcJsPeer(
  tuned: boolean,
  as?: { id: string; label: string; target: (t: Target) => string },
  /** A gRFC A6 hedgingPolicy for the Echo method: `maxAttempts` in all, one every `delayMs`. */
  hedge?: { delayMs: number; maxAttempts: number },
): Peer {
  return {
    id: as?.id ?? (tuned ? "grpc-js-keepalive" : "grpc-js"),
    label: as?.label ?? (tuned ? "grpc-js round_robin, keepalive 1 s" : "grpc-js round_robin"),
    protocol: "grpc",
    namesFailedBackend: true,
    async open(t: Target): Promise<BenchClient> {
      const target = as ? as.target(t) : `ipv4:${t.hosts.map((h) => `${h}:${t.port}`).join(",")}`;
      const options: grpc.ChannelOptions = {
        "grpc.service_config": JSON.stringify({
          loadBalancingConfig: [{ round_robin: {} }],
          ...(hedge
            ? {
                methodConfig: [
                  {
                    name: [{ service: GRPC_PATH.split("/")[1] }],
                    hedgingPolicy: { maxAttempts: hedge.maxAttempts, hedgingDelay: `${hedge.delayMs / 1000}s`, nonFatalStatusCodes: [] },
                  },
                ],
              }
            : {}),
        }),
        ...(tuned ? TUNED : {}),
      };
      const raw = new EchoClient(target, grpc.credentials.createInsecure(), options);
      const client: BenchClient = {
        call: (body) => echoCall(raw, body, t.timeoutMs),
        async close() {
          raw.close();
        },
      };
      await warmUp(client);
      return client;
    },
  };
}

import { create, createFileRegistry } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import { BytesValueSchema, FileDescriptorProtoSchema, file_google_protobuf_wrappers } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { rotatingLookup } from "./lookup.js";
import { HOSTNAME, warmUp, type BenchClient, type Peer, type Target } from "./types.js";

/** `service Echo { rpc Echo(google.protobuf.BytesValue) returns (google.protobuf.BytesValue); }`, built at run time. */
const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "dialtone/bench/echo.proto",
    package: "dialtone.bench",
    dependency: ["google/protobuf/wrappers.proto"],
    syntax: "proto3",
    service: [{ name: "Echo", method: [{ name: "Echo", inputType: ".google.protobuf.BytesValue", outputType: ".google.protobuf.BytesValue" }] }],
  }),
  (name) => (name === file_google_protobuf_wrappers.name + ".proto" ? file_google_protobuf_wrappers : undefined),
);

type EchoService = GenService<{ echo: { methodKind: "unary"; input: typeof BytesValueSchema; output: typeof BytesValueSchema } }>;
const found = registry.getService("dialtone.bench.Echo") as EchoService | undefined;
if (!found) throw new Error("dialtone.bench.Echo missing from the registry");
/** The bench Echo service, for every Connect client (connect-node alone, and over dialtone). */
export const Echo: EchoService = found;

/**
 * @connectrpc/connect-node's gRPC transport with its defaults: HTTP/2 (the
 * only version createGrpcTransport speaks in connect-node 2, so there is no
 * httpVersion option), one session, no PINGs. It dials one URL; the host name resolves to the
 * addresses in turn (rotatingLookup), so a redial moves to the next backend.
 */
export const connectPeer: Peer = {
  id: "connect-grpc",
  label: "connect-node gRPC (h2)",
  protocol: "grpc",
  namesFailedBackend: false,
  async open(t: Target): Promise<BenchClient> {
    const baseUrl = `http://${HOSTNAME}:${t.port}`;
    // What createGrpcTransport makes by itself from nodeOptions, made here only so close() can end it.
    const sessionManager = new Http2SessionManager(baseUrl, {}, { lookup: rotatingLookup(t.hosts) });
    const transport = createGrpcTransport({ baseUrl, sessionManager });
    const echo = createClient(Echo, transport);
    const client: BenchClient = {
      async call(body) {
        let backend: string | undefined;
        await echo.echo({ value: body }, { timeoutMs: t.timeoutMs, onHeader: (h) => void (backend = h.get("x-backend") ?? undefined) });
        return backend;
      },
      async close() {
        sessionManager.abort();
      },
    };
    await warmUp(client);
    return client;
  },
};

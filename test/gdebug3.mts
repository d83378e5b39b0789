import grpc from "@grpc/grpc-js";
import { createGrpcChannel } from "../src/adapters/grpc-js.js";
import { createHttp2Channel } from "../src/index.js";
import { drain, loadTesting, unary } from "./helpers/grpc-js.js";
import { startGrpcJsInterop, stopRealServers } from "./helpers/real-servers.js";
const t0 = Date.now();
const log = (...a: unknown[]) => console.log(Date.now() - t0, ...a);
const backends = await Promise.all(["127.0.0.2", "127.0.0.3", "127.0.0.4"].map((h) => startGrpcJsInterop(h)));
log("started");
const ch = createHttp2Channel({ target: `http://interop.test:${backends[0]!.port}`, discovery: `static:///${backends.map((b) => b.key).join(",")}`, members: 3, health: { check: { grpc: { service: "" } } } });
ch.on((e) => { if (e.type !== "ping" && e.type !== "request") log(e.type, JSON.stringify(e).slice(0, 200)); });
await ch.ready(AbortSignal.timeout(15_000)).catch((e) => log("ready failed", e.message));
log("ready", ch.stats().members.map((m) => [m.address, m.state]));
const { TestService } = loadTesting(grpc);
const c = new TestService(ch.target, grpc.credentials.createInsecure(), { channelOverride: createGrpcChannel(ch) });
const r = await unary((cb) => c.UnaryCall({ responseSize: 16 }, new grpc.Metadata(), { deadline: Date.now() + 5_000 }, cb));
log(r.status.code, r.headers?.get("x-backend"));
for (let i = 0; i < 5; i++) {
  const call = c.StreamingOutputCall({ responseParameters: [{ size: 8 }, { size: 8, intervalUs: 60_000_000 }] }, new grpc.Metadata(), { deadline: Date.now() + 60_000 });
  const ended = drain(call);
  const backend = await new Promise<unknown>((resolve) => call.once("metadata", (md: grpc.Metadata) => resolve(md.get("x-backend")[0])));
  log("stream on", backend);
  call.cancel();
  log("ended", (await ended).status.code);
}
c.close(); await ch.close(); await stopRealServers();

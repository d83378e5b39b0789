/**
 * Child process of the memory scenario (run with --expose-gc): warms one
 * dialtone channel of N members and prints one JSON line with the heap,
 * RSS and socket deltas, measured after garbage collection.
 *
 * argv[2]: {"port": 12345, "hosts": ["127.0.0.2", …], "members": 100}
 */
import { createHttp2Channel } from "../../dist/index.js";

interface ProbeConfig {
  port: number;
  hosts: string[];
  members: number;
}

const cfg = JSON.parse(process.argv[2] ?? "{}") as ProbeConfig;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function settle(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await sleep(20);
  }
  return process.memoryUsage();
}
const sockets = (): number => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length;

const before = await settle();
const socketsBefore = sockets();
const t0 = performance.now();
const channel = createHttp2Channel({
  target: `http://backend.test:${cfg.port}`,
  discovery: `static:///${cfg.hosts.map((h) => `${h}:${cfg.port}`).join(",")}`,
  members: cfg.members,
});
await channel.ready(AbortSignal.timeout(60_000));
const readyMs = performance.now() - t0;
await sleep(1500); // at least one PING round on every member
const after = await settle();
const stats = channel.stats();
const line = {
  members: cfg.members,
  ready: stats.members.filter((m) => m.state === "ready").length,
  readyMs: Math.round(readyMs),
  heapUsedBytes: after.heapUsed - before.heapUsed,
  externalBytes: after.external - before.external,
  rssBytes: after.rss - before.rss,
  sockets: sockets() - socketsBefore,
};
process.stdout.write(`${JSON.stringify(line)}\n`);
await channel.close();
process.exit(0);

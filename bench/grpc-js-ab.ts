/**
 * A quick A/B of grpc-js alone against grpc-js on dialtone (the two rows of
 * bench/throughput's grpc pair) without the rest of that scenario: each cell
 * alternates the two clients for ROUNDS rounds and prints the median
 * requests/s, CPU µs per request, and the ratio. For profiling the adapter
 * (`node --cpu-prof --import tsx bench/grpc-js-ab.ts`); it writes no report.
 * GRPCJS_AB_ONLY=dialtone-grpc-js runs one client only; GRPCJS_AB_CELL=64x256
 * one cell only.
 */
import { randomBytes } from "node:crypto";
import { cellsFromEnv } from "./lib/cells.js";
import { closedLoop } from "./lib/closedloop.js";
import { loopbackHosts, startBackends, stopAll } from "./lib/backends.js";
import { dialtoneGrpcJsPeer, grpcJs } from "./lib/peers/index.js";
import type { BenchClient } from "./lib/peers/types.js";
import { orderFor, roundsFromEnv } from "./lib/rounds.js";

const ROUNDS = roundsFromEnv(3);
const only = process.env.GRPCJS_AB_ONLY;
const PEERS = [grpcJs, dialtoneGrpcJsPeer].filter((p) => !only || p.id === only);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const backends = await startBackends(loopbackHosts(3));
const target = { hosts: backends.map((b) => b.host), port: backends[0]!.port, timeoutMs: 2000 };
try {
  const clients = new Map<string, BenchClient>();
  for (const p of PEERS) clients.set(p.id, await p.open(target));
  try {
    for (const cell of cellsFromEnv("GRPCJS_AB_CELL")) {
      const body = new Uint8Array(randomBytes(cell.bytes));
      const rps = new Map<string, number[]>();
      const cpu = new Map<string, number[]>();
      for (let r = 0; r < ROUNDS; r++) {
        for (const p of orderFor(r, PEERS)) {
          const c = clients.get(p.id)!;
          const res = await closedLoop({ concurrency: cell.concurrency, warmupMs: 200, measureMs: 600, call: () => c.call(body) });
          rps.set(p.id, [...(rps.get(p.id) ?? []), res.requests / res.seconds]);
          cpu.set(p.id, [...(cpu.get(p.id) ?? []), res.cpuMicros / Math.max(1, res.requests)]);
        }
      }
      const line = PEERS.map((p) => `${p.id} ${Math.round(median(rps.get(p.id)!))}/s ${median(cpu.get(p.id)!).toFixed(1)}µs`).join("  ");
      const ratio = PEERS.length === 2 ? (median(rps.get(PEERS[1]!.id)!) / median(rps.get(PEERS[0]!.id)!)).toFixed(2) : "-";
      console.log(`${String(cell.bytes).padStart(5)} B × ${String(cell.concurrency).padStart(3)}  ${line}  ratio ${ratio}`);
    }
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
  }
} finally {
  await stopAll(backends);
}

/**
 * Scenario 2: unary request/response throughput over 3 backends. Each cell
 * (body size × concurrency) runs every client closed-loop for a short
 * window: requests/s, latency p50/p99 of those requests, and this process's
 * CPU per request. Ratios are against the raw node:http2 session.
 */
import { randomBytes } from "node:crypto";
import { CHART_CONFIG, renderSvg } from "./lib/chart.js";
import { closedLoop } from "./lib/closedloop.js";
import { loopbackHosts, startBackends, stopAll } from "./lib/backends.js";
import { machine } from "./lib/machine.js";
import {
  connectPeer,
  dialtoneConnectPeer,
  dialtoneFetchPeer,
  dialtoneGrpcJsPeer,
  dialtone,
  dialtoneOneMember,
  dialtoneOneMemberMetered,
  grpcJs,
  rawPeer,
  undiciBalancedIdempotent,
  undiciBalancedPeer,
  undiciFetchPeer,
  undiciPoolPeer,
} from "./lib/peers/index.js";
import type { BenchClient, Peer } from "./lib/peers/types.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, roundsFromEnv } from "./lib/rounds.js";
import { CELLS, cellName } from "./lib/cells.js";
import { medianOf, quantile, ratio, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

/**
 * grpc-js with tuned keepalive is left out (keepalive changes nothing in steady
 * state); dialtone with 1 member and undici with idempotent POSTs are controls.
 */
const PEERS: Peer[] = [
  dialtone,
  dialtoneOneMember,
  dialtoneOneMemberMetered,
  dialtoneFetchPeer,
  dialtoneConnectPeer,
  rawPeer,
  undiciPoolPeer,
  undiciFetchPeer,
  undiciBalancedPeer,
  undiciBalancedIdempotent,
  connectPeer,
  grpcJs,
  dialtoneGrpcJsPeer,
];
const WARMUP_MS = 200;
const MEASURE_MS = 600;
const TIMEOUT_MS = 2000;
const ROUNDS = roundsFromEnv(3);
const BASELINE = rawPeer.id;

interface RoundResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuMicrosPerRequest: number;
  errors: number;
}

const t0 = performance.now();
const host = machine();
const backends = await startBackends(loopbackHosts(3));
const target = { hosts: backends.map((b) => b.host), port: (backends[0] as (typeof backends)[number]).port, timeoutMs: TIMEOUT_MS };
const runs = new Map<string, RoundResult[]>(); // `${cell}|${peer}` → one result per round
try {
  for (let r = 0; r < ROUNDS; r++) {
    const clients = new Map<string, BenchClient>();
    for (const peer of PEERS) clients.set(peer.id, await peer.open(target));
    try {
      for (const [ci, cell] of CELLS.entries()) {
        const body = new Uint8Array(randomBytes(cell.bytes));
        for (const peer of orderFor(r + ci, PEERS)) {
          const client = clients.get(peer.id) as BenchClient;
          const res = await closedLoop({ concurrency: cell.concurrency, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, call: () => client.call(body) });
          const key = `${cellName(cell)}|${peer.id}`;
          runs.set(key, [
            ...(runs.get(key) ?? []),
            {
              rps: res.requests / res.seconds,
              p50Ms: quantile(res.latencies, 0.5),
              p99Ms: quantile(res.latencies, 0.99),
              cpuMicrosPerRequest: res.cpuMicros / Math.max(1, res.requests),
              errors: res.errors,
            },
          ]);
          console.log(`round ${r + 1}/${ROUNDS} ${cellName(cell).padEnd(12)} ${peer.label.padEnd(34)} ${Math.round(res.requests / res.seconds)} req/s`);
        }
      }
    } finally {
      await Promise.all([...clients.values()].map((c) => c.close()));
    }
  }
} finally {
  await stopAll(backends);
}

const KEYS = ["rps", "p50Ms", "p99Ms", "cpuMicrosPerRequest", "errors"] as const;
const results = CELLS.map((cell) => {
  const name = cellName(cell);
  const base = medianOf(runs.get(`${name}|${BASELINE}`) ?? [], KEYS);
  return {
    cell: name,
    bytes: cell.bytes,
    concurrency: cell.concurrency,
    clients: PEERS.map((peer) => {
      const m = medianOf(runs.get(`${name}|${peer.id}`) ?? [], KEYS);
      return {
        id: peer.id,
        label: peer.label,
        protocol: peer.protocol,
        rps: Math.round(m.rps),
        p50Ms: round(m.p50Ms, 3),
        p99Ms: round(m.p99Ms, 3),
        cpuMicrosPerRequest: round(m.cpuMicrosPerRequest, 1),
        errors: m.errors,
        rpsVsRaw: ratio(m.rps, base.rps),
        cpuVsRaw: ratio(m.cpuMicrosPerRequest, base.cpuMicrosPerRequest),
      };
    }),
  };
});

const HEAD_CELL = cellName(CELLS[2]!);
const head = results.find((c) => c.cell === HEAD_CELL);
const dt = head?.clients.find((c) => c.id === dialtone.id);
const headline = {
  cell: HEAD_CELL,
  dialtoneRps: dt?.rps ?? null,
  dialtoneRpsVsRaw: dt?.rpsVsRaw ?? null,
  dialtoneCpuVsRaw: dt?.cpuVsRaw ?? null,
  /** dialtone's requests/s ÷ each other client's, in the headline cell (>1: dialtone faster). */
  dialtoneRpsOver: Object.fromEntries((head?.clients ?? []).filter((c) => c.id !== dialtone.id).map((c) => [c.id, ratio(dt?.rps ?? NaN, c.rps)])),
  /** The same for CPU per request (<1: dialtone cheaper). */
  dialtoneCpuOver: Object.fromEntries(
    (head?.clients ?? []).filter((c) => c.id !== dialtone.id).map((c) => [c.id, ratio(dt?.cpuMicrosPerRequest ?? NaN, c.cpuMicrosPerRequest)]),
  ),
};

const markdown = [
  markdownTable(
    ["body × concurrency", "client", "req/s", "× raw", "p50 ms", "p99 ms", "CPU µs/req", "CPU × raw", "errors"],
    results.flatMap((c) =>
      c.clients.map((x) => [
        c.cell,
        x.id === dialtone.id ? `**${x.label}**` : x.label,
        x.rps,
        x.rpsVsRaw,
        x.p50Ms,
        x.p99Ms,
        x.cpuMicrosPerRequest,
        x.cpuVsRaw,
        x.errors,
      ]),
    ),
  ),
  "",
  `Medians of ${ROUNDS} rounds; each cell ${WARMUP_MS} ms warm-up + ${MEASURE_MS} ms measured, closed-loop. Latencies here are service times at that concurrency (closed-loop), not open-loop latencies.`,
].join("\n");

const svg = await renderSvg({
  $schema: "https://vega.github.io/schema/vega-lite/v5.json",
  title: "Requests/s over 3 backends (higher is better)",
  config: CHART_CONFIG,
  data: { values: results.flatMap((c) => c.clients.map((x) => ({ cell: c.cell, client: x.label, rps: x.rps }))) },
  width: 560,
  height: 260,
  mark: "bar",
  encoding: {
    x: { field: "cell", type: "nominal", title: "body × concurrency", sort: results.map((c) => c.cell), axis: { labelAngle: 0 } },
    xOffset: { field: "client", type: "nominal", sort: PEERS.map((p) => p.label) },
    y: { field: "rps", type: "quantitative", title: "requests/s" },
    color: { field: "client", type: "nominal", sort: PEERS.map((p) => p.label), title: null, legend: { orient: "bottom", columns: 2, labelLimit: 400 } },
  },
});

writeReport({
  file: {
    scenario: "throughput",
    title: "Scenario 2 — throughput",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: { cells: CELLS, warmupMs: WARMUP_MS, measureMs: MEASURE_MS, rounds: ROUNDS, timeoutMs: TIMEOUT_MS, backends: 3, baseline: BASELINE },
    headline,
    results,
  },
  markdown,
  svg,
});

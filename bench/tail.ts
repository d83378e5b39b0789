/**
 * HTTP/2 tail (issue 17): 3 backends, one of which answers 5 % of its
 * requests 300 ms late. Open-loop load per client: p99 and p99.9, and the
 * extra requests each client sent (backend-counted requests ÷ calls − 1).
 * dialtone without hedging, with `hedge: { delay: "p95" }` and with a fixed
 * 20 ms delay, against grpc-js with a gRFC A6 hedging service config; plus
 * dialtone over three healthy backends as the baseline the goal is set
 * against (p99.9 ≤ 1.5 × the all-healthy p99.9 with ≤ 5 % extra requests).
 */
import { withClient } from "./lib/client-run.js";
import { loopbackHosts, startBackends, stopAll, type Backend } from "./lib/backends.js";
import { machine } from "./lib/machine.js";
import { openLoop } from "./lib/openloop.js";
import { dialtone } from "./lib/peers/index.js";
import { dialtoneWith } from "./lib/peers/dialtone.js";
import { grpcJsPeer } from "./lib/peers/grpcjs.js";
import { HOSTNAME, type Peer, type Target } from "./lib/peers/types.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, roundsFromEnv } from "./lib/rounds.js";
import { ascending, median, quantile, ratio, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const RATE = 500;
const DURATION_MS = 6000;
const TIMEOUT_MS = 2000;
const STALL = { percent: 5, ms: 300 };
const HEDGE_MS = 20;
const ROUNDS = roundsFromEnv(2);

const options = (t: Target) => ({
  target: `http://${HOSTNAME}:${t.port}`,
  discovery: `static:///${t.hosts.map((h) => `${h}:${t.port}`).join(",")}`,
  members: t.hosts.length,
});
const PEERS: { peer: Peer; stalled: boolean }[] = [
  { peer: { ...dialtone, id: "dialtone-healthy", label: "dialtone, all backends healthy" }, stalled: false },
  { peer: dialtone, stalled: true },
  {
    peer: dialtoneWith("dialtone-hedge-p95", 'dialtone, hedge { delay: "p95" }', (t) => ({ ...options(t), hedge: { delay: "p95", max: 1 } }), true),
    stalled: true,
  },
  {
    peer: dialtoneWith("dialtone-hedge-20", `dialtone, hedge { delay: ${HEDGE_MS} }`, (t) => ({ ...options(t), hedge: { delay: HEDGE_MS, max: 1 } }), true),
    stalled: true,
  },
  { peer: grpcJsPeer(false), stalled: true },
  {
    peer: grpcJsPeer(
      false,
      { id: "grpc-js-hedge", label: `grpc-js, hedgingPolicy ${HEDGE_MS} ms × 2`, target: (t) => `ipv4:${t.hosts.map((h) => `${h}:${t.port}`).join(",")}` },
      { delayMs: HEDGE_MS, maxAttempts: 2 },
    ),
    stalled: true,
  },
];

interface RunResult {
  latencies: number[];
  errors: number;
  calls: number;
  /** Requests the backends counted ÷ calls − 1. */
  extra: number;
}

const t0 = performance.now();
const host = machine();
const runs = new Map<string, RunResult[]>();
const totalRequests = async (bs: Backend[]): Promise<number> => (await Promise.all(bs.map((b) => b.stats()))).reduce((n, s) => n + s.requests, 0);

for (let r = 0; r < ROUNDS; r++) {
  for (const { peer, stalled } of orderFor(r, PEERS)) {
    const backends = await startBackends(loopbackHosts(3));
    try {
      if (stalled) await backends[0]!.command({ cmd: "stall", ...STALL });
      const target = { hosts: backends.map((b) => b.host), port: backends[0]!.port, timeoutMs: TIMEOUT_MS };
      const body = new Uint8Array(64);
      const res = await withClient(peer, target, async (client) => {
        const before = await totalRequests(backends);
        const out = await openLoop({ rate: RATE, durationMs: DURATION_MS, timeoutMs: TIMEOUT_MS, call: () => client.call(body) });
        // Let cancelled or late hedges land before counting.
        await new Promise((resolve) => setTimeout(resolve, 400));
        return { out, sent: (await totalRequests(backends)) - before };
      });
      const calls = res.out.samples.length;
      const run: RunResult = {
        latencies: res.out.samples.map((s) => s.ms),
        errors: res.out.samples.filter((s) => !s.ok).length,
        calls,
        extra: res.sent / calls - 1,
      };
      runs.set(peer.id, [...(runs.get(peer.id) ?? []), run]);
      const lat = ascending(run.latencies);
      console.log(
        `round ${r + 1}/${ROUNDS} ${peer.label.padEnd(40)} p99 ${quantile(lat, 0.99).toFixed(2)} ms, p99.9 ${quantile(lat, 0.999).toFixed(2)} ms, extra ${(run.extra * 100).toFixed(1)} %`,
      );
    } finally {
      await stopAll(backends);
    }
  }
}

const results = PEERS.map(({ peer, stalled }) => {
  const rs = runs.get(peer.id) ?? [];
  // Quantiles over every round's calls together, so one bad round shows; the worst round beside it.
  const all = ascending(rs.flatMap((x) => x.latencies));
  const perRound = rs.map((x) => {
    const l = ascending(x.latencies);
    return { p99Ms: round(quantile(l, 0.99), 2), p999Ms: round(quantile(l, 0.999), 2), extraPercent: round(x.extra * 100, 1), errors: x.errors };
  });
  return {
    id: peer.id,
    label: peer.label,
    stalled,
    calls: rs.reduce((n, x) => n + x.calls, 0),
    p50Ms: round(quantile(all, 0.5), 3),
    p99Ms: round(quantile(all, 0.99), 2),
    p999Ms: round(quantile(all, 0.999), 2),
    extraPercent: round(median(rs.map((x) => x.extra * 100)), 1),
    errors: rs.reduce((n, x) => n + x.errors, 0),
    perRound,
  };
});

const healthy = results.find((x) => x.id === "dialtone-healthy");
const headline = {
  healthyP999Ms: healthy?.p999Ms ?? null,
  /** Each client's p99.9 ÷ dialtone's all-healthy p99.9 (goal for hedged dialtone: ≤ 1.5). */
  p999OverHealthy: Object.fromEntries(results.map((x) => [x.id, ratio(x.p999Ms, healthy?.p999Ms ?? NaN)])),
  extraPercent: Object.fromEntries(results.map((x) => [x.id, x.extraPercent])),
};

const markdown = [
  markdownTable(
    ["client", "backends", "p50 ms", "p99 ms", "p99.9 ms", "p99.9 ÷ all-healthy", "p99.9 each round", "extra requests", "errors"],
    results.map((x) => [
      x.id.startsWith("dialtone-hedge") ? `**${x.label}**` : x.label,
      x.stalled ? `one stalls ${STALL.percent} % for ${STALL.ms} ms` : "all healthy",
      x.p50Ms,
      x.p99Ms,
      x.p999Ms,
      ratio(x.p999Ms, healthy?.p999Ms ?? NaN),
      x.perRound.map((p) => p.p999Ms).join(" / "),
      `${x.extraPercent} %`,
      x.errors,
    ]),
  ),
  "",
  `${RATE} req/s open-loop for ${DURATION_MS / 1000} s per client and round (64 B, deadline ${TIMEOUT_MS} ms), fresh backends for every run; 127.0.0.2 answers ${STALL.percent} % of its requests (evenly spread) ${STALL.ms} ms late. Quantiles over the calls of all ${ROUNDS} rounds together; extra requests = requests the backends counted ÷ calls − 1 (median of rounds). dialtone's calls are marked idempotent only in the hedged rows.`,
].join("\n");

writeReport({
  file: {
    scenario: "tail",
    title: "Scenario 9 — HTTP/2 tail: hedged requests",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: { rate: RATE, durationMs: DURATION_MS, timeoutMs: TIMEOUT_MS, stall: STALL, hedgeMs: HEDGE_MS, rounds: ROUNDS },
    headline,
    results,
  },
  markdown,
});

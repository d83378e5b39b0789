/**
 * Scenario 4: one of 3 backends answers 20 ms late. Open-loop load per
 * client: p50/p99 latency and each backend's share of the requests (from
 * the x-backend header of successes).
 */
import { CHART_CONFIG, renderSvg } from "./lib/chart.js";
import { withClient } from "./lib/client-run.js";
import { loopbackHosts, startBackends, stopAll, type Backend } from "./lib/backends.js";
import { machine } from "./lib/machine.js";
import { openLoop } from "./lib/openloop.js";
import { ALL_PEERS, dialtoneInFlight } from "./lib/peers/index.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, roundsFromEnv } from "./lib/rounds.js";
import { ascending, median, quantile, ratio, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const RATE = 300;
const DURATION_MS = 1500;
const TIMEOUT_MS = 2000;
const DELAY_MS = 20;
const ROUNDS = roundsFromEnv(3);
const PEERS = [...ALL_PEERS.slice(0, 1), dialtoneInFlight, ...ALL_PEERS.slice(1)];

interface RunResult {
  p50Ms: number;
  p99Ms: number;
  errors: number;
  maxSendLagMs: number;
  /** backend key → fraction of successes. */
  share: Record<string, number>;
}

const t0 = performance.now();
const host = machine();
const backends = await startBackends(loopbackHosts(3));
const [slow] = backends as [Backend, Backend, Backend];
const runs = new Map<string, RunResult[]>();
try {
  const reply = await slow.command({ cmd: "delay", ms: DELAY_MS });
  if (reply.error) throw new Error(reply.error);
  const target = { hosts: backends.map((b) => b.host), port: slow.port, timeoutMs: TIMEOUT_MS };
  const body = new Uint8Array(64);
  for (let r = 0; r < ROUNDS; r++) {
    for (const peer of orderFor(r, PEERS)) {
      const res = await withClient(peer, target, (client) =>
        openLoop({ rate: RATE, durationMs: DURATION_MS, timeoutMs: TIMEOUT_MS, call: () => client.call(body) }),
      );
      const lat = ascending(res.samples.map((s) => s.ms));
      const ok = res.samples.filter((s) => s.ok);
      const share = Object.fromEntries(backends.map((b) => [b.key, ok.filter((s) => s.backend === b.key).length / Math.max(1, ok.length)]));
      const run = { p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99), errors: res.samples.length - ok.length, maxSendLagMs: res.maxSendLagMs, share };
      runs.set(peer.id, [...(runs.get(peer.id) ?? []), run]);
      console.log(
        `round ${r + 1}/${ROUNDS} ${peer.label.padEnd(36)} p50 ${run.p50Ms.toFixed(2)} ms, p99 ${run.p99Ms.toFixed(2)} ms, slow share ${(share[slow.key] ?? 0).toFixed(3)}`,
      );
    }
  }
} finally {
  await stopAll(backends);
}

const label = (key: string): string => `${key.split(":")[0]}${key === slow.key ? ` (+${DELAY_MS} ms)` : ""}`;
const results = PEERS.map((peer) => {
  const rs = runs.get(peer.id) ?? [];
  return {
    id: peer.id,
    label: peer.label,
    protocol: peer.protocol,
    p50Ms: round(median(rs.map((x) => x.p50Ms)), 3),
    p99Ms: round(median(rs.map((x) => x.p99Ms)), 3),
    errors: median(rs.map((x) => x.errors)),
    /** Worst lag of the open-loop scheduler behind its clock, ms (median over rounds). */
    maxSendLagMs: round(median(rs.map((x) => x.maxSendLagMs)), 1),
    /** Median share of successes per backend address. */
    share: Object.fromEntries(backends.map((b) => [label(b.key), round(median(rs.map((x) => x.share[b.key] ?? 0)), 3)])),
    slowShare: round(median(rs.map((x) => x.share[slow.key] ?? 0)), 3),
  };
});

const dt = results.find((x) => x.id === "dialtone");
const headline = {
  dialtoneSlowShare: dt?.slowShare ?? null,
  dialtoneP99Ms: dt?.p99Ms ?? null,
  /** Each client's p99 ÷ dialtone's (>1: dialtone steadier). */
  p99OverDialtone: Object.fromEntries(results.filter((x) => x.id !== "dialtone").map((x) => [x.id, ratio(x.p99Ms, dt?.p99Ms ?? NaN)])),
  slowShare: Object.fromEntries(results.map((x) => [x.id, x.slowShare])),
};

const markdown = [
  markdownTable(
    ["client", "p50 ms", "p99 ms", "p99 ÷ dialtone", ...backends.map((b) => `share ${label(b.key)}`), "errors"],
    results.map((x) => [
      x.id === "dialtone" ? `**${x.label}**` : x.label,
      x.p50Ms,
      x.p99Ms,
      ratio(x.p99Ms, dt?.p99Ms ?? NaN),
      ...backends.map((b) => `${round((x.share[label(b.key)] ?? 0) * 100, 1)} %`),
      x.errors,
    ]),
  ),
  "",
  `${RATE} req/s open-loop for ${DURATION_MS / 1000} s per client (64 B, deadline ${TIMEOUT_MS} ms), 127.0.0.2 answering ${DELAY_MS} ms late; medians of ${ROUNDS} rounds.`,
].join("\n");

const svg = await renderSvg({
  $schema: "https://vega.github.io/schema/vega-lite/v5.json",
  title: `Share of requests per backend, one ${DELAY_MS} ms slower (less red is better)`,
  config: CHART_CONFIG,
  width: 460,
  height: { step: 22 },
  data: { values: results.flatMap((x) => Object.entries(x.share).map(([backend, share]) => ({ client: x.label, backend, share }))) },
  mark: "bar",
  encoding: {
    y: { field: "client", type: "nominal", sort: PEERS.map((p) => p.label), title: null, axis: { labelLimit: 300 } },
    x: { field: "share", type: "quantitative", stack: "normalize", axis: { format: "%" }, title: "share of requests" },
    color: {
      field: "backend",
      type: "nominal",
      title: null,
      scale: { domain: backends.map((b) => label(b.key)), range: ["#d62728", "#1f77b4", "#9ecae1"] },
      legend: { orient: "bottom" },
    },
    order: { field: "backend", type: "ordinal" },
  },
});

writeReport({
  file: {
    scenario: "slow",
    title: "Scenario 4 — one slow backend",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: { rate: RATE, durationMs: DURATION_MS, timeoutMs: TIMEOUT_MS, slowBackend: "127.0.0.2", delayMs: DELAY_MS, bodyBytes: 64, rounds: ROUNDS },
    headline,
    results,
  },
  markdown,
  svg,
});

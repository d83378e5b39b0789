/**
 * Scenario 3: steady open-loop load over 3 fresh backends while one is
 * SIGKILLed, then another SIGSTOPped and later SIGCONTed. Per client: errors,
 * requests slower than 1 s, p99 per 250 ms window, and how long the frozen
 * backend kept getting new requests after SIGSTOP.
 */
import { CHART_CONFIG, renderSvg } from "./lib/chart.js";
import { withClient } from "./lib/client-run.js";
import { loopbackHosts, startBackends, stopAll, type Backend } from "./lib/backends.js";
import { machine } from "./lib/machine.js";
import { openLoop, type Sample } from "./lib/openloop.js";
import { ALL_PEERS } from "./lib/peers/index.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, roundsFromEnv } from "./lib/rounds.js";
import { median, ratio, round, windowQuantiles } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const RATE = 300;
const TIMEOUT_MS = 2000;
const SLOW_MS = 1000;
const WINDOW_MS = 250;
/** Fault times, ms from the start of the load. */
const AT = { kill: 3000, stop: 6000, cont: 9000, end: 12_000 };
const ROUNDS = roundsFromEnv(2);
const PEERS = ALL_PEERS;

interface RunResult {
  errors: number;
  timeouts: number;
  hung: number;
  errorsAfterKill: number;
  errorsDuringFreeze: number;
  slow: number;
  /** Last due time of a request that went to the frozen backend, minus the SIGSTOP time, s (0: none after SIGSTOP). */
  frozenStillPickedS: number;
  p99ByWindow: number[];
}

function analyze(samples: Sample[], faults: Record<string, number>, frozen: Backend): RunResult {
  const stopAt = faults.stop ?? AT.stop;
  const contAt = faults.cont ?? AT.cont;
  const killAt = faults.kill ?? AT.kill;
  const failed = samples.filter((s) => !s.ok);
  // Routed to the frozen backend: a success it answered (after SIGCONT), or a timeout while it was frozen.
  const toFrozen = samples.filter((s) => s.at >= stopAt && s.at < contAt && ((s.ok && s.backend === frozen.key) || s.timeout));
  const lastAt = toFrozen.reduce((m, s) => Math.max(m, s.at), stopAt);
  return {
    errors: failed.length,
    timeouts: failed.filter((s) => s.timeout).length,
    hung: failed.filter((s) => s.hung).length,
    errorsAfterKill: failed.filter((s) => s.at >= killAt && s.at < stopAt).length,
    errorsDuringFreeze: failed.filter((s) => s.at >= stopAt && s.at < contAt).length,
    slow: samples.filter((s) => s.ms > SLOW_MS).length,
    frozenStillPickedS: round((lastAt - stopAt) / 1000, 2),
    p99ByWindow: windowQuantiles(samples, (s) => s.ms, WINDOW_MS, AT.end, 0.99),
  };
}

async function runOnce(peer: (typeof PEERS)[number]): Promise<RunResult> {
  const backends = await startBackends(loopbackHosts(3));
  try {
    const [killed, frozen] = backends as [Backend, Backend, Backend];
    const target = { hosts: backends.map((b) => b.host), port: killed.port, timeoutMs: TIMEOUT_MS };
    return await withClient(peer, target, async (client) => {
      const body = new Uint8Array(64);
      const res = await openLoop({
        rate: RATE,
        durationMs: AT.end,
        timeoutMs: TIMEOUT_MS,
        call: () => client.call(body),
        faults: [
          { atMs: AT.kill, name: "kill", run: () => void killed.kill() },
          { atMs: AT.stop, name: "stop", run: () => frozen.freeze() },
          { atMs: AT.cont, name: "cont", run: () => frozen.thaw() },
        ],
      });
      return analyze(res.samples, res.faults, frozen);
    });
  } finally {
    await stopAll(backends);
  }
}

const t0 = performance.now();
const host = machine();
const runs = new Map<string, RunResult[]>();
for (let r = 0; r < ROUNDS; r++) {
  for (const peer of orderFor(r, PEERS)) {
    const res = await runOnce(peer);
    runs.set(peer.id, [...(runs.get(peer.id) ?? []), res]);
    console.log(`round ${r + 1}/${ROUNDS} ${peer.label.padEnd(34)} errors ${res.errors} (timeouts ${res.timeouts}), slow ${res.slow}, frozen still picked ${res.frozenStillPickedS} s`);
  }
}

const windows = Math.ceil(AT.end / WINDOW_MS);
const freezeS = (AT.cont - AT.stop) / 1000;
const results = PEERS.map((peer) => {
  const rs = runs.get(peer.id) ?? [];
  const m = (f: (x: RunResult) => number): number => median(rs.map(f));
  const stillPicked = m((x) => x.frozenStillPickedS);
  return {
    id: peer.id,
    label: peer.label,
    protocol: peer.protocol,
    requests: Math.floor((RATE * AT.end) / 1000),
    errors: m((x) => x.errors),
    timeouts: m((x) => x.timeouts),
    hung: m((x) => x.hung),
    errorsAfterKill: m((x) => x.errorsAfterKill),
    errorsDuringFreeze: m((x) => x.errorsDuringFreeze),
    slowerThan1s: m((x) => x.slow),
    frozenStillPickedS: stillPicked,
    /** True when the frozen backend got new requests until (within 2 windows of) SIGCONT. */
    frozenPickedUntilThaw: stillPicked >= freezeS - (2 * WINDOW_MS) / 1000,
    perRound: rs.map((x) => ({ errors: x.errors, slowerThan1s: x.slow, frozenStillPickedS: x.frozenStillPickedS })),
    p99MsByWindow: Array.from({ length: windows }, (_, w) => round(median(rs.map((x) => x.p99ByWindow[w] ?? Number.NaN)), 2)),
  };
});

const dt = results.find((x) => x.id === "dialtone");
const others = results.filter((x) => x.id !== "dialtone");
const headline = {
  dialtoneErrors: dt?.errors ?? null,
  dialtoneSlowerThan1s: dt?.slowerThan1s ?? null,
  dialtoneFrozenStillPickedS: dt?.frozenStillPickedS ?? null,
  /** Each client's requests slower than 1 s ÷ dialtone's (NaN/null when dialtone had none). */
  slowerThan1sOverDialtone: Object.fromEntries(others.map((x) => [x.id, ratio(x.slowerThan1s, dt?.slowerThan1s ?? 0)])),
  frozenStillPickedS: Object.fromEntries(results.map((x) => [x.id, x.frozenStillPickedS])),
};

const markdown = [
  markdownTable(
    ["client", "errors", "of which timeouts", "errors after SIGKILL", "errors while frozen", "slower than 1 s", "frozen backend still picked for"],
    results.map((x) => [
      x.id === "dialtone" ? `**${x.label}**` : x.label,
      x.errors,
      x.timeouts,
      x.errorsAfterKill,
      x.errorsDuringFreeze,
      x.slowerThan1s,
      x.frozenPickedUntilThaw ? `${x.frozenStillPickedS} s (until SIGCONT)` : `${x.frozenStillPickedS} s`,
    ]),
  ),
  "",
  `${RATE} req/s open-loop for ${AT.end / 1000} s (${Math.floor((RATE * AT.end) / 1000)} requests, 64 B, deadline ${TIMEOUT_MS} ms) per client; SIGKILL of ${"127.0.0.2"} at ${AT.kill / 1000} s, SIGSTOP of 127.0.0.3 at ${AT.stop / 1000} s, SIGCONT at ${AT.cont / 1000} s. Medians of ${ROUNDS} rounds, fresh backends for every run.`,
].join("\n");

const timeline = results.flatMap((x) => x.p99MsByWindow.map((p99, w) => ({ t: ((w + 0.5) * WINDOW_MS) / 1000, p99: Number.isFinite(p99) ? Math.max(p99, 0.1) : null, client: x.label })));
const svg = await renderSvg({
  $schema: "https://vega.github.io/schema/vega-lite/v5.json",
  title: `p99 latency per ${WINDOW_MS} ms window (log scale, lower is better)`,
  config: CHART_CONFIG,
  width: 620,
  height: 300,
  layer: [
    {
      data: { values: [
        { t: AT.kill / 1000, what: "SIGKILL .2" },
        { t: AT.stop / 1000, what: "SIGSTOP .3" },
        { t: AT.cont / 1000, what: "SIGCONT .3" },
      ] },
      layer: [
        { mark: { type: "rule", strokeDash: [4, 4], color: "#888" }, encoding: { x: { field: "t", type: "quantitative" } } },
        { mark: { type: "text", align: "left", dx: 3, dy: -140, color: "#555" }, encoding: { x: { field: "t", type: "quantitative" }, text: { field: "what" } } },
      ],
    },
    {
      data: { values: timeline },
      mark: { type: "line", interpolate: "step-after", strokeWidth: 1.5 },
      encoding: {
        x: { field: "t", type: "quantitative", title: "seconds", scale: { domain: [0, AT.end / 1000] } },
        y: { field: "p99", type: "quantitative", title: "p99 ms", scale: { type: "log" } },
        color: { field: "client", type: "nominal", sort: PEERS.map((p) => p.label), title: null, legend: { orient: "bottom", columns: 3 } },
      },
    },
  ],
});

writeReport({
  file: {
    scenario: "failover",
    title: "Scenario 3 — failover",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: { rate: RATE, durationMs: AT.end, faultsAtMs: AT, killed: "127.0.0.2", frozen: "127.0.0.3", timeoutMs: TIMEOUT_MS, slowMs: SLOW_MS, windowMs: WINDOW_MS, bodyBytes: 64, rounds: ROUNDS },
    headline,
    results,
  },
  markdown,
  svg,
});

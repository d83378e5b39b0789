/**
 * Scenario 3: steady open-loop load over 3 fresh backends while one is
 * SIGKILLed, then another SIGSTOPped and later SIGCONTed. Per client: errors,
 * requests slower than 1 s, p99 per 250 ms window, and how long the frozen
 * backend kept getting new requests after SIGSTOP.
 */
import { faultTimelineSvg } from "./lib/chart.js";
import { withClient } from "./lib/client-run.js";
import { loopbackHosts, startBackends, stopAll, type Backend } from "./lib/backends.js";
import { machine } from "./lib/machine.js";
import { openLoop, type OpenLoopResult } from "./lib/openloop.js";
import { ALL_PEERS } from "./lib/peers/index.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, peersFromEnv, roundsFromEnv } from "./lib/rounds.js";
import { ascending, byWindow, median, quantile, ratio, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const RATE = 300;
const TIMEOUT_MS = 2000;
const SLOW_MS = 1000;
const WINDOW_MS = 250;
/**
 * Fault times, ms from the start of the load: the 3/6/9/12 s,
 * compressed so three rounds fit the time budget. The freeze still lasts 3 s
 * (longer than the 2 s deadline and dialtone's 2.5 s detection bound).
 */
const AT = { kill: 2000, stop: 4000, cont: 7000, end: 8500 };
const ROUNDS = roundsFromEnv(3);
const { peers: PEERS, filtered: FILTERED } = peersFromEnv(ALL_PEERS);

interface RunResult {
  errors: number;
  timeouts: number;
  hung: number;
  errorsAfterKill: number;
  errorsDuringFreeze: number;
  slow: number;
  /** Requests sent after SIGSTOP that went to the frozen backend (see analyze). */
  toFrozen: number;
  /** Last due time of a request that went to the frozen backend, minus the SIGSTOP time, s (0: none after SIGSTOP). */
  frozenStillPickedS: number;
  /** How far the open-loop scheduler fell behind its clock at worst, ms. */
  maxSendLagMs: number;
  /** Latencies (ms from due time) per window, to pool across rounds. */
  latencyByWindow: number[][];
}

function analyze({ samples, faults, maxSendLagMs }: OpenLoopResult, frozen: Backend): RunResult {
  const stopAt = faults.stop ?? AT.stop;
  const contAt = faults.cont ?? AT.cont;
  const killAt = faults.kill ?? AT.kill;
  const failed = samples.filter((s) => !s.ok);
  // Routed to the frozen backend: the backend a call names is the frozen one (a success it answered after
  // SIGCONT, or a failure the client attributes to it), or a timeout the client cannot attribute.
  const toFrozen = samples.filter((s) => s.at >= stopAt && s.at < contAt && (s.backend === frozen.key || (s.backend === undefined && s.timeout)));
  const lastAt = toFrozen.reduce((m, s) => Math.max(m, s.at), stopAt);
  return {
    errors: failed.length,
    timeouts: failed.filter((s) => s.timeout).length,
    hung: failed.filter((s) => s.hung).length,
    errorsAfterKill: failed.filter((s) => s.at >= killAt && s.at < stopAt).length,
    errorsDuringFreeze: failed.filter((s) => s.at >= stopAt && s.at < contAt).length,
    slow: samples.filter((s) => s.ms > SLOW_MS).length,
    toFrozen: toFrozen.length,
    maxSendLagMs: round(maxSendLagMs, 1),
    frozenStillPickedS: round((lastAt - stopAt) / 1000, 2),
    latencyByWindow: byWindow(samples, (s) => s.ms, WINDOW_MS, AT.end),
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
      return analyze(res, frozen);
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
    console.log(
      `round ${r + 1}/${ROUNDS} ${peer.label.padEnd(34)} errors ${res.errors} (timeouts ${res.timeouts}, after kill ${res.errorsAfterKill}, frozen ${res.errorsDuringFreeze}, sent to frozen ${res.toFrozen}, max send lag ${res.maxSendLagMs} ms), slow ${res.slow}, frozen still picked ${res.frozenStillPickedS} s`,
    );
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
    sentToFrozen: m((x) => x.toFrozen),
    namesFailedBackend: peer.namesFailedBackend,
    frozenStillPickedS: stillPicked,
    /** True when the frozen backend got new requests until (within 2 windows of) SIGCONT. */
    frozenPickedUntilThaw: stillPicked >= freezeS - (2 * WINDOW_MS) / 1000,
    perRound: rs.map((x) => ({
      errors: x.errors,
      slowerThan1s: x.slow,
      sentToFrozen: x.toFrozen,
      frozenStillPickedS: x.frozenStillPickedS,
      maxSendLagMs: x.maxSendLagMs,
    })),
    /** p99 per window over the calls of all rounds together, so one bad round shows. */
    p99MsByWindow: Array.from({ length: windows }, (_, w) => round(quantile(ascending(rs.flatMap((x) => x.latencyByWindow[w] ?? [])), 0.99), 2)),
  };
});

const dt = results.find((x) => x.id === "dialtone");
const others = results.filter((x) => x.id !== "dialtone");
const dtWorst = Math.max(...(dt?.perRound ?? []).map((p) => p.slowerThan1s));
const headline = {
  dialtoneErrors: dt?.errors ?? null,
  dialtoneErrorsEachRound: dt?.perRound.map((p) => p.errors) ?? [],
  dialtoneSlowerThan1s: dt?.slowerThan1s ?? null,
  dialtoneSlowerThan1sEachRound: dt?.perRound.map((p) => p.slowerThan1s) ?? [],
  dialtoneFrozenStillPickedS: dt?.frozenStillPickedS ?? null,
  /** Each client's calls slower than 1 s (median) ÷ dialtone's median (null when dialtone had none). */
  slowerThan1sOverDialtone: Object.fromEntries(others.map((x) => [x.id, ratio(x.slowerThan1s, dt?.slowerThan1s ?? 0)])),
  /** The same against dialtone's worst round. */
  slowerThan1sOverDialtoneWorstRound: Object.fromEntries(others.map((x) => [x.id, ratio(x.slowerThan1s, dtWorst)])),
  frozenStillPickedS: Object.fromEntries(results.map((x) => [x.id, x.frozenStillPickedS])),
};

const markdown = [
  markdownTable(
    [
      "client",
      "errors",
      "errors in each round",
      "of which timeouts",
      "errors after SIGKILL",
      "errors while frozen",
      "slower than 1 s",
      "sent to the frozen backend",
      "frozen backend still picked for",
    ],
    results.map((x) => [
      x.id === "dialtone" ? `**${x.label}**` : x.label,
      x.errors,
      x.perRound.map((p) => p.errors).join(" / "),
      x.timeouts,
      x.errorsAfterKill,
      x.errorsDuringFreeze,
      x.slowerThan1s,
      x.namesFailedBackend ? x.sentToFrozen : `${x.sentToFrozen}\\*`,
      x.frozenPickedUntilThaw ? `${x.frozenStillPickedS} s (until SIGCONT)` : `${x.frozenStillPickedS} s`,
    ]),
  ),
  "",
  `${RATE} req/s open-loop for ${AT.end / 1000} s (${Math.floor((RATE * AT.end) / 1000)} requests, 64 B, deadline ${TIMEOUT_MS} ms) per client; SIGKILL of 127.0.0.2 at ${AT.kill / 1000} s, SIGSTOP of 127.0.0.3 at ${AT.stop / 1000} s, SIGCONT at ${AT.cont / 1000} s. Medians of ${ROUNDS} rounds (the chart pools every round's calls per window), fresh backends for every run. \\* the client does not say where a failed call went: successes count by their x-backend header and every timeout while frozen counts as sent to the frozen backend.`,
].join("\n");

if (FILTERED) {
  console.log("BENCH_PEERS set: report not written");
  process.exit(0);
}

const svg = await faultTimelineSvg({
  title: `p99 latency per ${WINDOW_MS} ms window (log scale, lower is better)`,
  windowMs: WINDOW_MS,
  endMs: AT.end,
  faults: [
    { atMs: AT.kill, what: "SIGKILL .2" },
    { atMs: AT.stop, what: "SIGSTOP .3" },
    { atMs: AT.cont, what: "SIGCONT .3" },
  ],
  results,
  clientOrder: PEERS.map((p) => p.label),
  yDomain: [0.5, 4000],
  legendColumns: 2,
});

writeReport({
  file: {
    scenario: "failover",
    title: "Scenario 3 — failover",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: {
      rate: RATE,
      durationMs: AT.end,
      faultsAtMs: AT,
      killed: "127.0.0.2",
      frozen: "127.0.0.3",
      timeoutMs: TIMEOUT_MS,
      slowMs: SLOW_MS,
      windowMs: WINDOW_MS,
      bodyBytes: 64,
      rounds: ROUNDS,
    },
    headline,
    results,
  },
  markdown,
  svg,
});

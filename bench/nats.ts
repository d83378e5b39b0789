/**
 * Scenario 6: NATS request/reply against a real 3-node nats-server cluster.
 * dialtone's NATS channel (one member per server) against the official
 * client with one connection, with its defaults and tuned. (a) closed-loop
 * rate at concurrency 64; (b) open-loop load while the server the official
 * client is on is SIGKILLed, another SIGSTOPped and later SIGCONTed. Every
 * other request of (b) is marked idempotent (dialtone's default hedge may ask
 * it again elsewhere; the official client has no such notion), and failures
 * are counted for each half.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { faultTimelineSvg } from "./lib/chart.js";
import { closedLoop } from "./lib/closedloop.js";
import { machine } from "./lib/machine.js";
import { NATS_PEERS, type NatsBenchClient, type NatsPeer } from "./lib/nats-clients.js";
import { startNatsCluster, type NatsNode } from "./lib/nats-cluster.js";
import { startResponders } from "./lib/nats-responders.js";
import { openLoop, type OpenLoopResult } from "./lib/openloop.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, roundsFromEnv, sleep } from "./lib/rounds.js";
import { ascending, byWindow, median, quantile, ratio, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const CONCURRENCY = 64;
const RATE_WARMUP_MS = 300;
const RATE_MEASURE_MS = 1500;
const RATE = 200;
const TIMEOUT_MS = 1000;
const SLOW_MS = 1000;
const WINDOW_MS = 250;
const AT = { kill: 2000, stop: 4500, cont: 6500, end: 8000 };
const CLOSE_LIMIT_MS = 3000;
/** After the extra responders close: time for the loss of interest to reach every server over the routes. */
const SETTLE_MS = 300;
const ROUNDS = roundsFromEnv(3);
const PEERS = NATS_PEERS;

/** Clock ticks per second for /proc/<pid>/stat (Linux); NaN elsewhere. */
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim() || NaN);

/** CPU µs the cluster's nats-server processes have used so far (NaN without /proc). */
function serversCpuMicros(nodes: NatsNode[]): number {
  try {
    let ticks = 0;
    for (const n of nodes) {
      const f = (readFileSync(`/proc/${n.pid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    }
    return (ticks * 1e6) / CLK_TCK;
  } catch {
    return NaN;
  }
}

interface RunResult {
  rps: number;
  /** CPU of this process (client and the in-process responders) per request in the rate window, µs. */
  cpuUsPerReq: number;
  /** CPU of the three nats-server processes per request over the rate run (warm-up included, so approximate), µs. */
  serversCpuUsPerReq: number;
  p50Ms: number;
  p99Ms: number;
  rateErrors: number;
  errors: number;
  timeouts: number;
  hung: number;
  errorsAfterKill: number;
  errorsDuringFreeze: number;
  /** Failed requests not marked idempotent that were sent from TIMEOUT_MS before the SIGSTOP until the SIGCONT. */
  freezeFailed: number;
  /** The same, for the requests marked idempotent. */
  freezeFailedIdempotent: number;
  /** dialtone: the last request (not marked idempotent) placed on the frozen server's member after the SIGSTOP, ms after it; null: none, or not dialtone. */
  outOfRotationMs: number | null;
  /** dialtone: requests (not marked idempotent) placed on the frozen server's member while it was frozen. */
  placedOnFrozen: number | null;
  slow: number;
  /** Last due time of a failed call minus the SIGKILL time, s (0: none failed after it). */
  lastErrorS: number;
  /** The server a single-connection client was on at SIGSTOP: "frozen", "other" (the responder's) or null (dialtone). */
  onAtStop: "frozen" | "other" | null;
  maxSendLagMs: number;
  latencyByWindow: number[][];
}

function analyze({
  samples,
  faults,
  maxSendLagMs,
}: OpenLoopResult): Omit<
  RunResult,
  "rps" | "cpuUsPerReq" | "serversCpuUsPerReq" | "p50Ms" | "p99Ms" | "rateErrors" | "onAtStop" | "outOfRotationMs" | "placedOnFrozen"
> {
  const killAt = faults.kill ?? AT.kill;
  const stopAt = faults.stop ?? AT.stop;
  const contAt = faults.cont ?? AT.cont;
  const failed = samples.filter((s) => !s.ok);
  // Request i is the i-th call, and the odd ones were marked idempotent.
  const freezeFailed = (idempotent: boolean): number =>
    samples.filter((s, i) => !s.ok && i % 2 === (idempotent ? 1 : 0) && s.at >= stopAt - TIMEOUT_MS && s.at < contAt).length;
  const lastFailed = failed.reduce((m, s) => Math.max(m, s.at), killAt);
  return {
    errors: failed.length,
    timeouts: failed.filter((s) => s.timeout).length,
    hung: failed.filter((s) => s.hung).length,
    errorsAfterKill: failed.filter((s) => s.at >= killAt && s.at < stopAt).length,
    errorsDuringFreeze: failed.filter((s) => s.at >= stopAt && s.at < contAt).length,
    freezeFailed: freezeFailed(false),
    freezeFailedIdempotent: freezeFailed(true),
    slow: samples.filter((s) => s.ms > SLOW_MS).length,
    lastErrorS: round((lastFailed - killAt) / 1000, 2),
    maxSendLagMs: round(maxSendLagMs, 1),
    latencyByWindow: byWindow(samples, (s) => s.ms, WINDOW_MS, AT.end),
  };
}

async function warm(client: NatsBenchClient): Promise<void> {
  const body = new Uint8Array(8);
  for (let i = 0; i < 10; i++) await Promise.all([client.call(body), client.call(body), client.call(body)]);
}

async function runOnce(peer: NatsPeer): Promise<RunResult> {
  const cluster = await startNatsCluster();
  try {
    const client = await peer.open(cluster.nodes, TIMEOUT_MS);
    try {
      // The killed node: the one a single-connection client is on; for dialtone (on every node) the first.
      const on = client.server();
      const killed = cluster.nodes.find((n) => n.name === on) ?? (cluster.nodes[0] as NatsNode);
      const [frozen] = cluster.nodes.filter((n) => n !== killed) as [NatsNode, NatsNode];
      const responders = await startResponders(cluster.nodes);
      try {
        const body = new Uint8Array(64);
        // (a) rate: responders on every node.
        await warm(client);
        const s0 = { t: performance.now(), cpu: serversCpuMicros(cluster.nodes) };
        const rate = await closedLoop({ concurrency: CONCURRENCY, warmupMs: RATE_WARMUP_MS, measureMs: RATE_MEASURE_MS, call: () => client.call(body) });
        const serversCpu = serversCpuMicros(cluster.nodes) - s0.cpu;
        const rateRequests = (rate.requests / rate.seconds) * ((performance.now() - s0.t) / 1000);
        // (b) failover: only the node that is neither killed nor frozen keeps a responder (see docs/nats.md).
        await responders.stop([killed, frozen]);
        await sleep(SETTLE_MS);
        await warm(client);
        let onAtStop: RunResult["onAtStop"] = null;
        let stoppedAt = Number.NaN;
        let n = 0;
        const placements = client.placements?.();
        const res = await openLoop({
          rate: RATE,
          durationMs: AT.end,
          timeoutMs: TIMEOUT_MS,
          call: () => client.call(body, (n++ & 1) === 1),
          faults: [
            { atMs: AT.kill, name: "kill", run: () => void killed.kill() },
            {
              atMs: AT.stop,
              name: "stop",
              run: () => {
                const s = client.server();
                onAtStop = s === undefined ? null : s === frozen.name ? "frozen" : "other";
                frozen.freeze();
                stoppedAt = performance.now();
              },
            },
            { atMs: AT.cont, name: "cont", run: () => frozen.thaw() },
          ],
        });
        const onFrozen = (placements?.stop() ?? []).filter(
          (p) => p.address === frozen.key && p.start >= stoppedAt && p.start < stoppedAt + (AT.cont - AT.stop),
        );
        // 0 when none was placed on it after the SIGSTOP.
        const outOfRotationMs = placements ? round(Math.max(0, ...onFrozen.map((p) => p.start - stoppedAt)), 1) : null;
        const placedOnFrozen = placements ? onFrozen.length : null;
        return {
          rps: round(rate.requests / rate.seconds, 0),
          cpuUsPerReq: round(rate.cpuMicros / rate.requests, 1),
          serversCpuUsPerReq: round(serversCpu / rateRequests, 1),
          p50Ms: round(quantile(rate.latencies, 0.5), 3),
          p99Ms: round(quantile(rate.latencies, 0.99), 3),
          rateErrors: rate.errors,
          onAtStop,
          outOfRotationMs,
          placedOnFrozen,
          ...analyze(res),
        };
      } finally {
        await responders.stop();
      }
    } finally {
      await Promise.race([client.close().catch(() => {}), sleep(CLOSE_LIMIT_MS)]);
    }
  } finally {
    await cluster.stop();
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
      `round ${r + 1}/${ROUNDS} ${peer.label.padEnd(34)} ${res.rps} req/s (p99 ${res.p99Ms} ms, CPU ${res.cpuUsPerReq} + servers ${res.serversCpuUsPerReq} µs/req); failover errors ${res.errors} (timeouts ${res.timeouts}), slow ${res.slow}, on at SIGSTOP ${res.onAtStop ?? "-"}`,
    );
  }
}

const windows = Math.ceil(AT.end / WINDOW_MS);
const official = PEERS[1] as NatsPeer;
const results = PEERS.map((peer) => {
  const rs = runs.get(peer.id) ?? [];
  const m = (f: (x: RunResult) => number): number => median(rs.map(f));
  return {
    id: peer.id,
    label: peer.label,
    rps: round(
      m((x) => x.rps),
      0,
    ),
    cpuUsPerReq: round(
      m((x) => x.cpuUsPerReq),
      1,
    ),
    serversCpuUsPerReq: round(
      m((x) => x.serversCpuUsPerReq),
      1,
    ),
    p50Ms: round(
      m((x) => x.p50Ms),
      3,
    ),
    p99Ms: round(
      m((x) => x.p99Ms),
      3,
    ),
    rateErrors: m((x) => x.rateErrors),
    requests: Math.floor((RATE * AT.end) / 1000),
    errors: m((x) => x.errors),
    timeouts: m((x) => x.timeouts),
    hung: m((x) => x.hung),
    errorsAfterKill: m((x) => x.errorsAfterKill),
    errorsDuringFreeze: m((x) => x.errorsDuringFreeze),
    freezeFailed: m((x) => x.freezeFailed),
    freezeFailedIdempotent: m((x) => x.freezeFailedIdempotent),
    outOfRotationMs: rs.some((x) => x.outOfRotationMs !== null) ? m((x) => x.outOfRotationMs ?? NaN) : null,
    slowerThan1s: m((x) => x.slow),
    lastErrorAfterKillS: round(
      m((x) => x.lastErrorS),
      2,
    ),
    /** Single-connection clients: median errors over the rounds in which they were on the server that froze (NaN: none), and the others. */
    errorsWhenOnFrozen: median(rs.filter((x) => x.onAtStop === "frozen").map((x) => x.errors)),
    errorsWhenOnOther: median(rs.filter((x) => x.onAtStop === "other").map((x) => x.errors)),
    perRound: rs.map((x) => ({
      rps: x.rps,
      cpuUsPerReq: x.cpuUsPerReq,
      serversCpuUsPerReq: x.serversCpuUsPerReq,
      errors: x.errors,
      errorsAfterKill: x.errorsAfterKill,
      errorsDuringFreeze: x.errorsDuringFreeze,
      freezeFailed: x.freezeFailed,
      freezeFailedIdempotent: x.freezeFailedIdempotent,
      outOfRotationMs: x.outOfRotationMs,
      placedOnFrozen: x.placedOnFrozen,
      slowerThan1s: x.slow,
      onAtStop: x.onAtStop,
      maxSendLagMs: x.maxSendLagMs,
    })),
    /** p99 per window over the calls of all rounds together, so one bad round shows. */
    p99MsByWindow: Array.from({ length: windows }, (_, w) => round(quantile(ascending(rs.flatMap((x) => x.latencyByWindow[w] ?? [])), 0.99), 2)),
  };
});

const dt = results.find((x) => x.id === "dialtone");
const base = results.find((x) => x.id === official.id);
const others = results.filter((x) => x.id !== "dialtone");
const headline = {
  dialtoneRps: dt?.rps ?? null,
  /** dialtone's requests/s ÷ each official-client variant's (concurrency 64). */
  dialtoneRpsOver: Object.fromEntries(others.map((x) => [x.id, ratio(dt?.rps ?? NaN, x.rps)])),
  /** The same ratio round by round (each round runs every client once, one after the other): the spread the median hides. */
  dialtoneRpsOverEachRound: Object.fromEntries(others.map((x) => [x.id, (dt?.perRound ?? []).map((p, i) => ratio(p.rps, x.perRound[i]?.rps ?? NaN))])),
  dialtoneErrors: dt?.errors ?? null,
  dialtoneErrorsEachRound: dt?.perRound.map((p) => p.errors) ?? [],
  errors: Object.fromEntries(results.map((x) => [x.id, x.errors])),
  slowerThan1s: Object.fromEntries(results.map((x) => [x.id, x.slowerThan1s])),
  /** Each client's failover errors (median) ÷ dialtone's (null when dialtone had none). */
  errorsOverDialtone: Object.fromEntries(others.map((x) => [x.id, ratio(x.errors, dt?.errors ?? 0)])),
  /** The official client's errors in the rounds where it had reconnected to the server that then froze (null: no such round), and in the others. */
  errorsWhenOnFrozenServer: Object.fromEntries(others.map((x) => [x.id, Number.isFinite(x.errorsWhenOnFrozen) ? x.errorsWhenOnFrozen : null])),
  errorsWhenOnOtherServer: Object.fromEntries(others.map((x) => [x.id, Number.isFinite(x.errorsWhenOnOther) ? x.errorsWhenOnOther : null])),
  /** Issue 24: failed requests per freeze (median of rounds), not marked idempotent and marked idempotent, and when dialtone last picked the frozen member. */
  freezeFailed: Object.fromEntries(results.map((x) => [x.id, x.freezeFailed])),
  freezeFailedIdempotent: Object.fromEntries(results.map((x) => [x.id, x.freezeFailedIdempotent])),
  dialtoneOutOfRotationMs: dt?.outOfRotationMs ?? null,
};

const rateTable = markdownTable(
  ["client", "req/s", "× nats.js defaults", "req/s in each round", "process CPU µs/req", "servers' CPU µs/req", "p50 ms", "p99 ms", "errors"],
  results.map((x) => [
    x.id === "dialtone" ? `**${x.label}**` : x.label,
    x.rps,
    ratio(x.rps, base?.rps ?? NaN),
    x.perRound.map((p) => p.rps).join(" / "),
    x.cpuUsPerReq,
    x.serversCpuUsPerReq,
    x.p50Ms,
    x.p99Ms,
    x.rateErrors,
  ]),
);
const freezeTable = markdownTable(
  [
    "client",
    "failed per freeze, not idempotent (each round)",
    "failed per freeze, idempotent (each round)",
    "frozen member last picked, ms after SIGSTOP (each round)",
    "requests placed on it while frozen (each round)",
    "on the frozen server at SIGSTOP",
  ],
  results.map((x) => [
    x.id === "dialtone" ? `**${x.label}**` : x.label,
    `${x.freezeFailed} (${x.perRound.map((p) => p.freezeFailed).join(" / ")})`,
    `${x.freezeFailedIdempotent} (${x.perRound.map((p) => p.freezeFailedIdempotent).join(" / ")})`,
    x.outOfRotationMs === null ? "—" : `${x.outOfRotationMs} (${x.perRound.map((p) => p.outOfRotationMs).join(" / ")})`,
    x.outOfRotationMs === null ? "—" : x.perRound.map((p) => p.placedOnFrozen).join(" / "),
    x.id.startsWith("dialtone") ? "(on every server)" : x.perRound.map((p) => (p.onAtStop === "frozen" ? "yes" : "no")).join(" / "),
  ]),
);
const failTable = markdownTable(
  [
    "client",
    "errors",
    "errors in each round",
    "of which timeouts",
    "errors after SIGKILL",
    "errors while frozen",
    "slower than 1 s",
    "last error after SIGKILL",
    "on the frozen server at SIGSTOP",
  ],
  results.map((x) => [
    x.id === "dialtone" ? `**${x.label}**` : x.label,
    x.errors,
    x.perRound.map((p) => p.errors).join(" / "),
    x.timeouts,
    x.errorsAfterKill,
    x.errorsDuringFreeze,
    x.slowerThan1s,
    `${x.lastErrorAfterKillS} s`,
    x.id.startsWith("dialtone") ? "(on every server)" : x.perRound.map((p) => (p.onAtStop === "frozen" ? "yes" : "no")).join(" / "),
  ]),
);
const markdown = [
  "**(a) Request/reply rate**",
  "",
  rateTable,
  "",
  `Closed loop at concurrency ${CONCURRENCY}, ${RATE_WARMUP_MS} ms warm-up + ${RATE_MEASURE_MS} ms measured, 64 B requests, one responder per server; latencies are service times at that concurrency. Process CPU: this process (the client and the three in-process responders) in the measured window ÷ requests; servers' CPU: the three nats-server processes over warm-up and window ÷ the requests at the measured rate (approximate).`,
  "",
  "**(b) Failover**",
  "",
  failTable,
  "",
  `${RATE} req/s open-loop for ${AT.end / 1000} s (${Math.floor((RATE * AT.end) / 1000)} requests, 64 B, deadline ${TIMEOUT_MS} ms, every other one marked idempotent) per client, one responder, on the server that is neither killed nor frozen; SIGKILL at ${AT.kill / 1000} s of the server the official client is on (dialtone: the first), SIGSTOP of another at ${AT.stop / 1000} s, SIGCONT at ${AT.cont / 1000} s. Medians of ${ROUNDS} rounds (the chart pools every round's calls per window), a fresh cluster for every run, client order alternating across rounds.`,
  "",
  "**(c) The freeze**",
  "",
  freezeTable,
  "",
  `Requests sent from ${TIMEOUT_MS / 1000} s before the SIGSTOP until the SIGCONT that failed, for each half of the load: not marked idempotent, and marked idempotent (dialtone hedges those by default at its running p95; the official client treats both alike). "Last picked": the latest start of a request not marked idempotent placed on the frozen server's member while it was frozen, from the channel's request events (the time it stayed in rotation; 0 when none was placed on it), and how many were.`,
].join("\n");

const svg = await faultTimelineSvg({
  title: `NATS failover: p99 latency per ${WINDOW_MS} ms window (log scale, lower is better)`,
  windowMs: WINDOW_MS,
  endMs: AT.end,
  faults: [
    { atMs: AT.kill, what: "SIGKILL" },
    { atMs: AT.stop, what: "SIGSTOP" },
    { atMs: AT.cont, what: "SIGCONT" },
  ],
  results,
  clientOrder: PEERS.map((p) => p.label),
  yDomain: [0.1, 3000],
  legendColumns: 3,
});

writeReport({
  file: {
    scenario: "nats",
    title: "Scenario 6 — NATS",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: {
      concurrency: CONCURRENCY,
      rateWarmupMs: RATE_WARMUP_MS,
      rateMeasureMs: RATE_MEASURE_MS,
      rate: RATE,
      durationMs: AT.end,
      faultsAtMs: AT,
      timeoutMs: TIMEOUT_MS,
      slowMs: SLOW_MS,
      windowMs: WINDOW_MS,
      bodyBytes: 64,
      rounds: ROUNDS,
      servers: 3,
      tuned: { reconnectTimeWait: 250, pingInterval: 1000, maxPingOut: 2 },
    },
    headline,
    results,
  },
  markdown,
  svg,
});
process.exit(0);

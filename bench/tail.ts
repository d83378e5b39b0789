/**
 * HTTP/2 tail (issues 17 and 25): 3 backends, open-loop load per client,
 * p50, p99 and p99.9, and the extra requests each client sent
 * (backend-counted requests ÷ calls − 1), in three scenarios:
 *
 * - all backends healthy: what hedging must not make worse;
 * - one backend answers 5 % of its requests (evenly spread) 300 ms late:
 *   a slow backend the balancer can learn and steer around;
 * - every backend answers a random 1 % of its requests 100 ms late (seeded):
 *   the tail of "The Tail at Scale" (Dean & Barroso), which no balancer can
 *   learn, and which hedging exists for.
 *
 * dialtone without hedging, with `hedge: { delay: "p95" }` and with a fixed
 * 20 ms delay, against grpc-js with a gRFC A6 hedging service config.
 *
 * The clients of a scenario are compared in one run, interleaved: all are
 * open over the same fresh backends, and the load goes to one at a time in
 * 1 s slices, their order rotating from slice group to slice group. The
 * machine's other work (this is a shared 2-core host) then falls on every
 * client alike instead of on whichever ran while it peaked: run back to back
 * for 5 s each, one round's p99.9 moved 2 to 5× with the load average.
 *
 * The noise of a run is measured, not guessed: "dialtone (A/A control)",
 * the unhedged client again, runs beside it where the hedged clients must
 * not be worse (all healthy, one stalls), and a hedged client's ratio is
 * read against the control's. One process holds every client, so its GC
 * pauses (5–35 ms here) land in whichever slice is running: each slice
 * records them, and each call's latency less the pause time it waited
 * through gives a client's tail without the collector's.
 *
 * BENCH_PEERS=one-stalls:dialtone,one-stalls:dialtone-hedge-p95 (rows named
 * `scenario:client`) runs only those rows, and only their scenarios, for a
 * quick look: each round's line is printed, the report is not rewritten.
 */
import { PerformanceObserver, constants as perfConstants, type PerformanceEntry } from "node:perf_hooks";
import { loopbackHosts, startBackends, stopAll, type Backend } from "./lib/backends.js";
import { machine } from "./lib/machine.js";
import { openLoop } from "./lib/openloop.js";
import { dialtoneWith } from "./lib/peers/dialtone.js";
import { grpcJsPeer } from "./lib/peers/grpcjs.js";
import type { Http2Channel } from "../dist/index.js";
import { HOSTNAME, type BenchClient, type Peer, type Target } from "./lib/peers/types.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, peersFromEnv, roundsFromEnv, sleep } from "./lib/rounds.js";
import { ascending, median, quantile, ratio, round } from "./lib/stats.js";
import { noiseBand, type NoiseBand } from "./lib/slice-permutation.js";
import { markdownTable } from "./lib/table.js";

const RATE = 500;
/** Each client gets one slice per group, GROUPS groups per round. */
const SLICE_MS = 1000;
const GROUPS = 4;
const TIMEOUT_MS = 2000;
const ONE_STALLS = { percent: 5, ms: 300 };
const ALL_RANDOM = { percent: 1, ms: 100 };
const HEDGE_MS = 20;
/** Each slice's worst calls kept, to say whether the round's tail waited through a GC pause. */
const WORST_PER_SLICE = 3;
/** Each slice's slowest calls kept for the noise band: the pooled p99.9 of up to 31,000 calls is among them. */
const TOP_PER_SLICE = 32;
/** Random deals of the slices for the noise band (slice-permutation.ts). */
const DEALS = 2000;
/** GC pause time (ms) overlapping [from, from + ms]. */
const gcWithin = (pauses: ReadonlyArray<{ start: number; ms: number }>, from: number, ms: number): number => {
  let sum = 0;
  for (const p of pauses) sum += Math.max(0, Math.min(from + ms, p.start + p.ms) - Math.max(from, p.start));
  return sum;
};
const worstCalls = (w: Array<{ ms: number; gcMs: number }>): string =>
  [...w]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 4)
    .map((c) => `${c.ms.toFixed(1)}${c.gcMs > 0 ? ` (GC ${c.gcMs.toFixed(1)})` : ""}`)
    .join(", ");
const ROUNDS = roundsFromEnv(5);

type ScenarioId = "healthy" | "one-stalls" | "all-random";
const SCENARIOS: Record<ScenarioId, { label: string; setUp: (bs: Backend[], round: number) => Promise<unknown> }> = {
  healthy: { label: "all healthy", setUp: async () => {} },
  "one-stalls": {
    label: `one stalls ${ONE_STALLS.percent} % for ${ONE_STALLS.ms} ms`,
    setUp: (bs) => bs[0]!.command({ cmd: "stall", ...ONE_STALLS }),
  },
  "all-random": {
    label: `each slow at random ${ALL_RANDOM.percent} % for ${ALL_RANDOM.ms} ms`,
    // A seed per backend and round: reproducible, and no two backends stall in step.
    setUp: (bs, r) => Promise.all(bs.map((b, i) => b.command({ cmd: "stall", ...ALL_RANDOM, seed: 1000 * (r + 1) + i }))),
  },
};

const options = (t: Target) => ({
  target: `http://${HOSTNAME}:${t.port}`,
  discovery: `static:///${t.hosts.map((h) => `${h}:${t.port}`).join(",")}`,
  members: t.hosts.length,
});
/** Hedges sent and won by each dialtone client's calls so far (its channel's request events), by client id. */
const hedgeCounts = new Map<string, { hedged: number; won: number }>();
const countHedges = (id: string) => (channel: Http2Channel) => {
  const n = { hedged: 0, won: 0 };
  hedgeCounts.set(id, n);
  channel.on((e) => {
    if (e.type !== "request") return;
    if (e.hedges > 0) n.hedged++;
    if (e.hedgeWon) n.won++;
  });
};
// Every dialtone client with the same listener, so that its cost falls on all alike.
const dialtone = dialtoneWith("dialtone", "dialtone", options, false, countHedges("dialtone"));
/** The same client again (A/A control): its ratio to `dialtone` is what the bench's noise alone gives. */
const control = dialtoneWith("dialtone-aa", "dialtone (A/A control)", options, false, countHedges("dialtone-aa"));
const hedgeP95 = dialtoneWith(
  "dialtone-hedge-p95",
  'dialtone, hedge { delay: "p95" }',
  (t) => ({ ...options(t), hedge: { delay: "p95", max: 1 } }),
  true,
  countHedges("dialtone-hedge-p95"),
);
const hedge20 = dialtoneWith(
  "dialtone-hedge-20",
  `dialtone, hedge { delay: ${HEDGE_MS} }`,
  (t) => ({ ...options(t), hedge: { delay: HEDGE_MS, max: 1 } }),
  true,
  countHedges("dialtone-hedge-20"),
);
const grpcRr = grpcJsPeer(false);
const grpcHedge = grpcJsPeer(
  false,
  { id: "grpc-js-hedge", label: `grpc-js, hedgingPolicy ${HEDGE_MS} ms × 2`, target: (t) => `ipv4:${t.hosts.map((h) => `${h}:${t.port}`).join(",")}` },
  { delayMs: HEDGE_MS, maxAttempts: 2 },
);

interface Row {
  /** `scenario:client`, what BENCH_PEERS names. */
  id: string;
  scenario: ScenarioId;
  peer: Peer;
}
const row = (scenario: ScenarioId, peer: Peer): Row => ({ id: `${scenario}:${peer.id}`, scenario, peer });
const ALL_ROWS: Row[] = [
  row("healthy", dialtone),
  row("healthy", control),
  row("healthy", hedgeP95),
  row("healthy", hedge20),
  row("one-stalls", dialtone),
  row("one-stalls", control),
  row("one-stalls", hedgeP95),
  row("one-stalls", hedge20),
  row("one-stalls", grpcRr),
  row("one-stalls", grpcHedge),
  row("all-random", dialtone),
  row("all-random", hedgeP95),
  row("all-random", hedge20),
  row("all-random", grpcRr),
  row("all-random", grpcHedge),
];
const { peers: ROWS, filtered: FILTERED } = peersFromEnv(ALL_ROWS);

interface RunResult {
  latencies: number[];
  /** Each call's latency less the GC pause time of this process that fell while it waited. */
  latenciesLessGc: number[];
  /** GC pause time during the client's slices, ms. */
  gcMs: number;
  /** Each 1 s slice's p99.9 (its second-worst call of 500): one stall of the shared machine spoils one slice, not the median. */
  sliceP999: number[];
  /** Each slice's slowest calls (ms, slowest first): all the pooled p99.9 of any set of slices needs (noiseBand). */
  sliceTops: number[][];
  errors: number;
  calls: number;
  /** Requests the backends counted ÷ calls − 1. */
  extra: number;
  /** dialtone: calls that sent a hedge, and those a hedge answered (undefined for other clients). */
  hedged?: number;
  won?: number;
}

/**
 * Every GC pause of this process (all clients share it), so that each
 * slice can say how many ran during it, and whether its worst calls waited
 * through one.
 */
const GC_KINDS: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: "scavenge",
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: "mark-compact",
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental marking",
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: "weak callbacks",
};
const gcPauses: Array<{ start: number; ms: number; kind: string }> = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries() as Array<PerformanceEntry & { detail?: { kind?: number } }>) {
    gcPauses.push({ start: e.startTime, ms: e.duration, kind: GC_KINDS[e.detail?.kind ?? 0] ?? "other" });
  }
});
gcObserver.observe({ entryTypes: ["gc"] });

const t0 = performance.now();
const host = machine();
const runs = new Map<string, RunResult[]>();
const totalRequests = async (bs: Backend[]): Promise<number> => (await Promise.all(bs.map((b) => b.stats()))).reduce((n, s) => n + s.requests, 0);

/** Opens every client (fresh channels over `target`), runs `fn`, closes them all. */
async function withClients<T>(peers: Peer[], target: Target, fn: (clients: BenchClient[]) => Promise<T>): Promise<T> {
  const clients: BenchClient[] = [];
  try {
    for (const p of peers) clients.push(await p.open(target));
    return await fn(clients);
  } finally {
    await Promise.race([Promise.all(clients.map((c) => c.close().catch(() => {}))), sleep(3000)]);
  }
}

const scenarios = [...new Set(ROWS.map((x) => x.scenario))];
for (let r = 0; r < ROUNDS; r++) {
  for (const scenario of orderFor(r, scenarios)) {
    const rows = ROWS.filter((x) => x.scenario === scenario);
    const backends = await startBackends(loopbackHosts(3));
    try {
      await SCENARIOS[scenario].setUp(backends, r);
      const target = { hosts: backends.map((b) => b.host), port: backends[0]!.port, timeoutMs: TIMEOUT_MS };
      const body = new Uint8Array(64);
      const got = rows.map(() => ({
        latencies: [] as number[],
        latenciesLessGc: [] as number[],
        sliceP999: [] as number[],
        sliceTops: [] as number[][],
        errors: 0,
        calls: 0,
        sent: 0,
        maxSendLagMs: 0,
        hedged: 0,
        won: 0,
        gcs: 0,
        gcMs: 0,
        gcMaxMs: 0,
        gcByKind: {} as Record<string, { n: number; ms: number }>,
        worst: [] as Array<{ ms: number; gcMs: number }>,
      }));
      await withClients(
        rows.map((x) => x.peer),
        target,
        async (clients) => {
          for (let g = 0; g < GROUPS; g++) {
            // Rotate who goes first, so that no client always follows the same one.
            for (let k = 0; k < rows.length; k++) {
              const i = (g + k) % rows.length;
              const client = clients[i]!;
              const before = await totalRequests(backends);
              const counts = hedgeCounts.get(rows[i]!.peer.id);
              const [hedgedBefore, wonBefore] = [counts?.hedged ?? 0, counts?.won ?? 0];
              const gcFrom = gcPauses.length;
              const sliceStart = performance.now();
              const out = await openLoop({ rate: RATE, durationMs: SLICE_MS, timeoutMs: TIMEOUT_MS, call: () => client.call(body) });
              // Let cancelled or late hedges land before counting (and the GC entries be delivered).
              await sleep(100);
              const into = got[i]!;
              const pauses = gcPauses.slice(gcFrom).filter((p) => p.start >= sliceStart && p.start < sliceStart + SLICE_MS + TIMEOUT_MS);
              into.gcs += pauses.length;
              into.gcMs += pauses.reduce((n, p) => n + p.ms, 0);
              into.gcMaxMs = Math.max(into.gcMaxMs, ...pauses.map((p) => p.ms));
              for (const p of pauses) {
                const k = (into.gcByKind[p.kind] ??= { n: 0, ms: 0 });
                k.n++;
                k.ms += p.ms;
              }
              // Each call's wait through GC pauses (a call is due at x.at and ends x.ms later).
              const waited = out.samples.map((x) => gcWithin(pauses, sliceStart + x.at, x.ms));
              out.samples.forEach((x, j) => into.latenciesLessGc.push(x.ms - waited[j]!));
              for (const j of out.samples
                .map((_, j) => j)
                .sort((a, b) => out.samples[b]!.ms - out.samples[a]!.ms)
                .slice(0, WORST_PER_SLICE)) {
                into.worst.push({ ms: out.samples[j]!.ms, gcMs: waited[j]! });
              }
              into.sent += (await totalRequests(backends)) - before;
              into.hedged += (counts?.hedged ?? 0) - hedgedBefore;
              into.won += (counts?.won ?? 0) - wonBefore;
              into.calls += out.samples.length;
              into.errors += out.samples.filter((x) => !x.ok).length;
              into.maxSendLagMs = Math.max(into.maxSendLagMs, out.maxSendLagMs);
              for (const x of out.samples) into.latencies.push(x.ms);
              into.sliceP999.push(quantile(ascending(out.samples.map((x) => x.ms)), 0.999));
              into.sliceTops.push(
                out.samples
                  .map((x) => x.ms)
                  .sort((a, b) => b - a)
                  .slice(0, TOP_PER_SLICE),
              );
            }
          }
        },
      );
      rows.forEach(({ id, peer }, i) => {
        const x = got[i]!;
        const counted = hedgeCounts.has(peer.id);
        const run: RunResult = {
          latencies: x.latencies,
          latenciesLessGc: x.latenciesLessGc,
          gcMs: x.gcMs,
          sliceP999: x.sliceP999,
          sliceTops: x.sliceTops,
          errors: x.errors,
          calls: x.calls,
          extra: x.sent / x.calls - 1,
          hedged: counted ? x.hedged : undefined,
          won: counted ? x.won : undefined,
        };
        runs.set(id, [...(runs.get(id) ?? []), run]);
        const lat = ascending(run.latencies);
        console.log(
          `round ${r + 1}/${ROUNDS} ${scenario.padEnd(10)} ${peer.label.padEnd(36)} p50 ${quantile(lat, 0.5).toFixed(2)} ms, p99 ${quantile(lat, 0.99).toFixed(2)} ms, p99.9 ${quantile(lat, 0.999).toFixed(2)} ms (median slice ${median(x.sliceP999).toFixed(2)} ms, less GC ${quantile(ascending(x.latenciesLessGc), 0.999).toFixed(2)} ms), extra ${(run.extra * 100).toFixed(1)} %${counted ? ` (hedged ${x.hedged}, won ${x.won})` : ""}, max send lag ${x.maxSendLagMs.toFixed(1)} ms, GC ${x.gcs} pauses ${x.gcMs.toFixed(1)} ms (longest ${x.gcMaxMs.toFixed(1)}; ${Object.entries(
            x.gcByKind,
          )
            .map(([k, v]) => `${k} ${v.n}: ${v.ms.toFixed(1)} ms`)
            .join(", ")}), worst calls ${worstCalls(x.worst)}`,
        );
      });
    } finally {
      await stopAll(backends);
    }
  }
}

const sliced = (rs: RunResult[]) => rs.map((x) => ({ tops: x.sliceTops, calls: x.sliceTops.map(() => (RATE * SLICE_MS) / 1000) }));
const bandOf = (rs: RunResult[], base: RunResult[]): NoiseBand => {
  const b = noiseBand(sliced(rs), sliced(base), 0.999, DEALS);
  return { ratio: round(b.ratio, 2), low: round(b.low, 2), high: round(b.high, 2), p: round(b.p, 3) };
};
const results = ROWS.map(({ id, scenario, peer }) => {
  const rs = runs.get(id) ?? [];
  const unhedgedRuns = runs.get(`${scenario}:${dialtone.id}`) ?? [];
  // Quantiles over every round's calls together, so one bad round shows; each round's beside it.
  const all = ascending(rs.flatMap((x) => x.latencies));
  const perRound = rs.map((x, r) => {
    const l = ascending(x.latencies);
    const p999Ms = quantile(l, 0.999);
    const base = unhedgedRuns[r];
    return {
      p99Ms: round(quantile(l, 0.99), 2),
      p999Ms: round(p999Ms, 2),
      /** Against unhedged dialtone's p99.9 in the same round: same backends, slices interleaved. */
      p999OverUnhedged: base ? ratio(p999Ms, quantile(ascending(base.latencies), 0.999)) : Number.NaN,
      extraPercent: round(x.extra * 100, 1),
      errors: x.errors,
    };
  });
  const calls = rs.reduce((n, x) => n + x.calls, 0);
  const hedged = rs.some((x) => x.hedged !== undefined) ? rs.reduce((n, x) => n + (x.hedged ?? 0), 0) : undefined;
  const won = rs.reduce((n, x) => n + (x.won ?? 0), 0);
  return {
    id,
    scenario,
    client: peer.id,
    label: peer.label,
    calls,
    p50Ms: round(quantile(all, 0.5), 3),
    p99Ms: round(quantile(all, 0.99), 2),
    p999Ms: round(quantile(all, 0.999), 2),
    /** The median over every 1 s slice (all rounds) of the slice's p99.9. */
    sliceP999Ms: round(median(rs.flatMap((x) => x.sliceP999)), 2),
    /** p99.9 of the calls' latencies less the GC pauses each waited through: the client's own tail, without the collector's. */
    p999LessGcMs: round(quantile(ascending(rs.flatMap((x) => x.latenciesLessGc)), 0.999), 2),
    /** GC pause time during this client's slices, ms per second of load: what its calls cost the collector (all clients share one heap). */
    gcMsPerSecond: round(rs.reduce((n, x) => n + x.gcMs, 0) / (calls / RATE), 1),
    extraPercent: round(median(rs.map((x) => x.extra * 100)), 1),
    /** dialtone: calls that sent a hedge, % of calls; and of those, the share a hedge answered. */
    hedgedPercent: hedged === undefined ? undefined : round((hedged / calls) * 100, 2),
    hedgesWonPercent: hedged === undefined || hedged === 0 ? undefined : round((won / hedged) * 100, 0),
    errors: rs.reduce((n, x) => n + x.errors, 0),
    perRound,
    /** Against unhedged dialtone: the pooled p99.9 ratio and the band random deals of the two clients' slices give. */
    noise: peer.id === dialtone.id || unhedgedRuns.length !== rs.length ? undefined : bandOf(rs, unhedgedRuns),
  };
});

const unhedged = (s: ScenarioId) => results.find((x) => x.scenario === s && x.client === dialtone.id);
const overUnhedged = (x: (typeof results)[number]): number => ratio(x.p999Ms, unhedged(x.scenario)?.p999Ms ?? Number.NaN);
const sliceOverUnhedged = (x: (typeof results)[number]): number => ratio(x.sliceP999Ms, unhedged(x.scenario)?.sliceP999Ms ?? Number.NaN);
const roundRatios = (x: (typeof results)[number]): number[] => x.perRound.map((p) => p.p999OverUnhedged);
const lessGcOverUnhedged = (x: (typeof results)[number]): number => ratio(x.p999LessGcMs, unhedged(x.scenario)?.p999LessGcMs ?? Number.NaN);
const headline = {
  /** Per scenario, each client's p99.9 ÷ unhedged dialtone's p99.9 in that scenario (hedged dialtone's goal: ≤ 1 everywhere, < 1 in all-random). */
  p999OverUnhedged: Object.fromEntries(results.map((x) => [x.id, overUnhedged(x)])),
  /** The same for the median 1 s slice's p99.9. */
  sliceP999OverUnhedged: Object.fromEntries(results.map((x) => [x.id, sliceOverUnhedged(x)])),
  /** Each round's p99.9 ÷ unhedged dialtone's in the same round: the spread of rounds is the noise. */
  roundP999OverUnhedged: Object.fromEntries(results.map((x) => [x.id, roundRatios(x)])),
  /** p99.9 less the GC pauses each call waited through, ÷ unhedged dialtone's. */
  p999LessGcOverUnhedged: Object.fromEntries(results.map((x) => [x.id, lessGcOverUnhedged(x)])),
  /** GC pause ms per second of each client's load. */
  gcMsPerSecond: Object.fromEntries(results.map((x) => [x.id, x.gcMsPerSecond])),
  /**
   * Each row's pooled p99.9 ÷ unhedged dialtone's, with the 95 % band that
   * random deals of the two clients' slices (within each round) give, and
   * the share of deals at or above the ratio measured (one-sided p).
   */
  p999NoiseBand: Object.fromEntries(results.filter((x) => x.noise).map((x) => [x.id, x.noise])),
  /** Hedged rows worse than no hedging beyond the noise (p < 0.05): the goal is none. */
  worseBeyondNoise: results.filter((x) => x.client.startsWith("dialtone-hedge") && x.noise && x.noise.p < 0.05).map((x) => x.id),
  /** The worst round's ratio of each. */
  worstRoundP999OverUnhedged: Object.fromEntries(results.map((x) => [x.id, Math.max(...roundRatios(x))])),
  extraPercent: Object.fromEntries(results.map((x) => [x.id, x.extraPercent])),
  hedgedPercent: Object.fromEntries(results.filter((x) => x.hedgedPercent !== undefined).map((x) => [x.id, x.hedgedPercent])),
  hedgesWonPercent: Object.fromEntries(results.filter((x) => x.hedgesWonPercent !== undefined).map((x) => [x.id, x.hedgesWonPercent])),
};

for (const x of results) {
  console.log(
    `${x.id.padEnd(32)} p99.9 ${x.p999Ms} ms, ÷ unhedged ${overUnhedged(x)}${x.noise ? ` (noise band ${x.noise.low}–${x.noise.high}, p ${x.noise.p})` : ""}, less GC ${x.p999LessGcMs} ms, GC ${x.gcMsPerSecond} ms/s`,
  );
}
if (FILTERED) {
  console.log("BENCH_PEERS set: report not written");
  process.exit(0);
}

const callsPerClient = (ROUNDS * GROUPS * SLICE_MS * RATE) / 1000;
const markdown = [
  markdownTable(
    [
      "backends",
      "client",
      "p50 ms",
      "p99 ms",
      "p99.9 ms",
      "p99.9 ÷ unhedged",
      "noise band (95 %), p",
      "each round ÷ unhedged",
      "median 1 s slice p99.9 ms",
      "÷ unhedged",
      "p99.9 less GC pauses ms",
      "÷ unhedged",
      "GC pause ms/s",
      "extra requests",
      "hedges won",
      "errors",
    ],
    results.map((x) => [
      SCENARIOS[x.scenario].label,
      x.client.startsWith("dialtone-hedge") ? `**${x.label}**` : x.label,
      x.p50Ms,
      x.p99Ms,
      x.p999Ms,
      overUnhedged(x),
      x.noise ? `${x.noise.low}–${x.noise.high}, p ${x.noise.p}` : "",
      x.client === dialtone.id ? x.perRound.map((p) => p.p999Ms).join(" / ") + " ms" : roundRatios(x).join(" / "),
      x.sliceP999Ms,
      sliceOverUnhedged(x),
      x.p999LessGcMs,
      lessGcOverUnhedged(x),
      x.gcMsPerSecond,
      `${x.extraPercent} %`,
      x.hedgesWonPercent === undefined ? "" : `${x.hedgesWonPercent} %`,
      x.errors,
    ]),
  ),
  "",
  [
    `${RATE} req/s open-loop (64 B, deadline ${TIMEOUT_MS} ms), ${(GROUPS * SLICE_MS) / 1000} s per client, scenario and round, in ${SLICE_MS / 1000} s slices interleaved with the other clients of the scenario (order rotating), all over the same fresh backends each round.`,
    `"one stalls": 127.0.0.2 answers ${ONE_STALLS.percent} % of its requests (evenly spread) ${ONE_STALLS.ms} ms late; "each slow at random": every backend answers each request with probability ${ALL_RANDOM.percent} % ${ALL_RANDOM.ms} ms late (seeded per backend and round).`,
    `Quantiles over the calls of all ${ROUNDS} rounds together (${callsPerClient} per client: the p99.9 is its ${callsPerClient - Math.ceil(0.999 * callsPerClient) + 1}th-slowest call); "p99.9 ÷ unhedged": against dialtone without hedging in the same scenario;`,
    `"noise band": the 2.5th to 97.5th percentile of that ratio when, in each round, the two clients' slices are pooled and dealt out again at random (${DEALS} deals), and p the share of deals at or above the ratio measured — p < 0.05 would be worse than no hedging beyond the noise (this run: ${headline.worseBeyondNoise.length === 0 ? "no hedged row" : headline.worseBeyondNoise.join(", ")});`,
    `"dialtone (A/A control)" is the unhedged client again, whose ratios are noise alone; "each round ÷ unhedged": each round's p99.9 against unhedged dialtone's in that round (its own row: its p99.9 each round);`,
    `"median 1 s slice p99.9": each slice's p99.9 (500 calls: its second-worst), the median over the client's slices;`,
    `"p99.9 less GC pauses": of each call's latency less the pause time of this process's garbage collector that fell while it waited (all clients share one process, whose pauses, alone or in clusters, last 5–35 ms on this host); "GC pause ms/s": the pauses during the client's slices per second of its load;`,
    `extra requests = requests the backends counted ÷ calls − 1 (median of rounds); hedges won: of dialtone's calls that sent a hedge, the share the hedge answered. dialtone's calls are marked idempotent only in the hedged rows.`,
  ].join(" "),
].join("\n");

writeReport({
  file: {
    scenario: "tail",
    title: "Scenario 9 — HTTP/2 tail: hedged requests",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: {
      rate: RATE,
      sliceMs: SLICE_MS,
      groups: GROUPS,
      timeoutMs: TIMEOUT_MS,
      oneStalls: ONE_STALLS,
      allRandom: ALL_RANDOM,
      hedgeMs: HEDGE_MS,
      rounds: ROUNDS,
    },
    headline,
    results,
  },
  markdown,
});

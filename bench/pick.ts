/**
 * Scenario 1: the cost of one pick + release in dialtone's pool (P2C over
 * the usable set) at 3 … 4096 ready members, with each load object (the
 * default peak-EWMA and in-flight), beside a plain round-robin index over an
 * array of the same members. P2C should stay flat: O(1).
 *
 * Picks and releases are called as the dispatch pipeline calls them: with
 * the clock reading the pipeline already took for the call (its budget,
 * deadline and latency need it anyway), and each release carrying a latency
 * sample. The pool then reads no clock of its own.
 *
 * Each load class is measured in a process of its own, as in a service whose
 * channels share one balancer: in one process the two classes would make
 * every load call site polymorphic, a cost of mixing balancers, not of
 * either.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Pool, type PoolMemberRef } from "../dist/pool/pool.js";
import { CHART_CONFIG, renderSvg } from "./lib/chart.js";
import { machine } from "./lib/machine.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, roundsFromEnv } from "./lib/rounds.js";
import { median, ratio, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const SIZES = [3, 16, 256, 4096];
const OPS = 2_000_000;
const WARMUP_OPS = 300_000;
const ROUNDS = roundsFromEnv(3);

type Method = "p2c-peak-ewma" | "p2c-in-flight" | "rr";
const METHODS: readonly Method[] = ["p2c-peak-ewma", "p2c-in-flight", "rr"];

function members(pool: Pool<null>, n: number): Array<PoolMemberRef<null>> {
  return Array.from({ length: n }, (_, i) => {
    const m = pool.admit(i, `m${i}`, null);
    pool.setPickable(m, true);
    return m;
  });
}

function p2cLoop(pool: Pool<null>, ops: number): number {
  let sink = 0;
  // The pipeline's clock readings: a request of ~1 ms every 10 µs.
  let now = performance.now();
  for (let i = 0; i < ops; i++) {
    const m = pool.pick(undefined, now) as PoolMemberRef<null>;
    sink += m.id;
    pool.release(m, 1, false, now + 1);
    now += 0.01;
  }
  return sink;
}

function rrLoop(list: Array<PoolMemberRef<null>>, ops: number): number {
  let sink = 0;
  let next = 0;
  // The baseline keeps its own in-flight counters: a member's count lives in its pool-owned load object.
  const inFlight = new Uint32Array(list.length);
  for (let i = 0; i < ops; i++) {
    const m = list[next] as PoolMemberRef<null>;
    inFlight[next]!++;
    sink += m.id;
    inFlight[next]!--;
    next = next + 1 === list.length ? 0 : next + 1;
  }
  return sink;
}

/** ns per pick + release. */
function measure(method: Method, n: number): number {
  const pool = new Pool<null>({ balancer: method === "p2c-in-flight" ? "in-flight" : "peak-ewma" });
  const list = members(pool, n);
  const run = (ops: number): number => (method === "rr" ? rrLoop(list, ops) : p2cLoop(pool, ops));
  run(WARMUP_OPS);
  const t0 = process.hrtime.bigint();
  const sink = run(OPS);
  const ns = Number(process.hrtime.bigint() - t0) / OPS;
  if (sink < 0) console.log(sink); // keeps the loop's result alive
  return ns;
}

/** A child process: one method, every size in the round's order; prints ns per op by size as JSON. */
if (process.argv[2] === "--child") {
  const method = process.argv[3] as Method;
  const round = Number(process.argv[4]);
  const out: Record<string, number> = {};
  for (const n of orderFor(round, SIZES)) out[n] = measure(method, n);
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

const t0 = performance.now();
const host = machine();
const samples = new Map<string, number[]>();
const self = fileURLToPath(import.meta.url);
for (let r = 0; r < ROUNDS; r++) {
  for (const method of orderFor(r, METHODS)) {
    const out = JSON.parse(execFileSync(process.execPath, [...process.execArgv, self, "--child", method, String(r)], { encoding: "utf8" })) as Record<
      string,
      number
    >;
    for (const n of SIZES) {
      const key = `${method}:${n}`;
      samples.set(key, [...(samples.get(key) ?? []), out[n] as number]);
    }
  }
}

const rows = SIZES.map((members) => {
  const p2cNsPerOp = round(median(samples.get(`p2c-peak-ewma:${members}`) ?? []), 1);
  const p2cInFlightNsPerOp = round(median(samples.get(`p2c-in-flight:${members}`) ?? []), 1);
  const rrNsPerOp = round(median(samples.get(`rr:${members}`) ?? []), 1);
  return { members, p2cNsPerOp, p2cInFlightNsPerOp, rrNsPerOp, p2cOverRr: ratio(p2cNsPerOp, rrNsPerOp) };
});
const first = rows[0] as (typeof rows)[number];
const last = rows[rows.length - 1] as (typeof rows)[number];
const headline = {
  p2cNsPerOpAt3: first.p2cNsPerOp,
  p2cNsPerOpAt4096: last.p2cNsPerOp,
  /** P2C cost at 4096 members ÷ at 3: 1.0 means flat (O(1)). */
  p2cGrowth3To4096: ratio(last.p2cNsPerOp, first.p2cNsPerOp),
  p2cInFlightNsPerOpAt3: first.p2cInFlightNsPerOp,
  p2cInFlightNsPerOpAt4096: last.p2cInFlightNsPerOp,
  p2cOverRrAt4096: last.p2cOverRr,
};

const markdown = [
  markdownTable(
    ["members", "P2C pick+release, peak-EWMA (default) (ns/op)", "P2C pick+release, in-flight (ns/op)", "round-robin (ns/op)", "P2C ÷ RR"],
    rows.map((r) => [r.members, r.p2cNsPerOp, r.p2cInFlightNsPerOp, r.rrNsPerOp, r.p2cOverRr]),
  ),
  "",
  `P2C (peak-EWMA) at 4096 members costs **${headline.p2cGrowth3To4096}×** what it costs at 3 (1.0 = flat). Medians of ${ROUNDS} rounds of ${OPS.toLocaleString("en")} ops, each load class in a process of its own; picks and releases get the pipeline's clock reading, as in dispatch, so the pool reads no clock itself.`,
].join("\n");

const svg = await renderSvg({
  $schema: "https://vega.github.io/schema/vega-lite/v5.json",
  title: "Pick cost vs members (lower is better)",
  width: 420,
  height: 240,
  config: CHART_CONFIG,
  data: {
    values: rows.flatMap((r) => [
      { members: r.members, picker: "dialtone P2C, peak-EWMA (pick + release)", ns: r.p2cNsPerOp },
      { members: r.members, picker: "dialtone P2C, in-flight (pick + release)", ns: r.p2cInFlightNsPerOp },
      { members: r.members, picker: "round-robin index", ns: r.rrNsPerOp },
    ]),
  },
  mark: { type: "line", point: true },
  encoding: {
    x: { field: "members", type: "quantitative", scale: { type: "log", base: 2 }, axis: { values: SIZES }, title: "members" },
    y: { field: "ns", type: "quantitative", title: "ns per op", scale: { zero: true } },
    color: { field: "picker", type: "nominal", title: null, legend: { orient: "bottom" } },
  },
});

writeReport({
  file: {
    scenario: "pick",
    title: "Scenario 1 — pick cost",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: { sizes: SIZES, opsPerMeasurement: OPS, warmupOps: WARMUP_OPS, rounds: ROUNDS, balancers: ["peak-ewma", "in-flight"] },
    headline,
    results: rows,
  },
  markdown,
  svg,
});

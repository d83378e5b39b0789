/**
 * The request path's CPU as instructions (issue 25 item 8), counted by
 * valgrind's callgrind: each client in a process of its own, the same
 * requests every run, whatever else the shared machine does. CPU seconds
 * on this 2-core host move ±20 % from one half-second to the next (other
 * tenants, SMT siblings, the collector's timing), so bench/reqpath's
 * same-process A/B needs many rounds to tell 5 % apart. Here V8 runs on
 * one thread (`--single-threaded`: its collector and compilers on the main
 * thread, so their work cannot fall in or out of a count by timing), and
 * each count starts from a collected heap, re-warmed (that collection drops
 * optimized code whose maps it frees, and V8 recompiles it on the next
 * calls: outside the count). Two runs side by side repeat within 0.3 %
 * (SQLite measures its speed the same way, with cachegrind). Not counted:
 * the kernel's share (system time, ~7 % of this path's CPU) and cycles lost
 * to cache misses.
 *
 * Under valgrind a process runs ~50× slower, so its event loop finds more
 * responses ready per turn than at full speed, and how many depends on how
 * much of the machine it gets: at concurrency 16 and 256 a count moves with
 * the machine's load (up to ~7 % between runs at different loads), at
 * concurrency 1 it does not batch. The channel runs on a clock slowed as
 * much (reqpath-child.ts), so that its PINGs come as often per request as
 * at full speed.
 *
 * For each cell and round: the raw node:http2 session, dialtone with one
 * member without and with metrics and a listener, raw sessions to three
 * backends (calls dealt round-robin) and dialtone's default 3-member
 * channel (metrics and a listener), each warmed up with WARM_REQUESTS (3000)
 * requests, then counted over N requests (REQPATH_N, 2048). Ratios are
 * taken within a round and the table gives their median (min–max over
 * rounds, BENCH_ROUNDS, default 3). Runs two processes at a time.
 * REQPATH_CELLS narrows the cells, BENCH_PEERS the clients. Needs valgrind
 * (Debian: `apt-get install valgrind`). Writes
 * bench/results/reqpath-instructions-node<major>.json for a full run.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import { CELLS as ALL_CELLS, cellName, cellsFromEnv, type Cell } from "./lib/cells.js";
import { machine } from "./lib/machine.js";
import { REQPATH_CHILD_CLIENTS } from "./lib/reqpath-child.js";
import { peersFromEnv, roundsFromEnv } from "./lib/rounds.js";
import { median, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const N = Number(process.env.REQPATH_N ?? 2048);
const ROUNDS = roundsFromEnv(3);
/**
 * V8 on one thread (its collector and compilers on the main thread) and the
 * heap collected before each count: background threads' work would
 * otherwise land in or out of a count by timing.
 */
const NODE_FLAGS = ["--expose-gc", "--single-threaded"];
const CELLS = cellsFromEnv("REQPATH_CELLS");
const ALL = Object.entries(REQPATH_CHILD_CLIENTS).map(([id, c]) => ({ id, label: c.peer.label }));
const { peers: CLIENTS, filtered } = peersFromEnv(ALL);
const RATIOS: Array<[of: string, over: string]> = [
  ["dialtone-1-member", "raw-http2"],
  ["dialtone-1-member-metrics-+-listener", "raw-http2"],
  ["dialtone-metrics-+-listener", "raw-http2"],
  ["dialtone-metrics-+-listener", "raw-http2-spread"],
  ["raw-http2-spread", "raw-http2"],
];

try {
  execFileSync("valgrind", ["--version"], { stdio: "ignore" });
} catch {
  throw new Error("bench:reqpath-instructions needs valgrind (Debian: apt-get install valgrind)");
}

const root = fileURLToPath(new URL("..", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "dialtone-reqpath-instr-"));
// Bundled two levels under the root, as its sources are (packages resolve from node_modules, and the test
// helpers find the backend's build at ../../.build); removed at the end.
const child = join(root, "bench", ".cache", `reqpath-child-${process.pid}.mjs`);
await build({
  entryPoints: [join(root, "bench/lib/reqpath-child.ts")],
  bundle: true,
  platform: "node",
  format: "esm",
  packages: "external",
  outfile: child,
  logLevel: "warning",
});

/** Instructions per request of one client in one cell, one process under callgrind. */
async function count(id: string, cell: Cell): Promise<number> {
  const n = Math.ceil(N / cell.concurrency) * cell.concurrency;
  const dir = mkdtempSync(join(work, "run-"));
  await promisify(execFile)(
    "valgrind",
    [
      "--tool=callgrind",
      `--callgrind-out-file=${join(dir, "cg.%p")}`,
      process.execPath,
      ...NODE_FLAGS,
      child,
      id,
      String(n),
      String(cell.concurrency),
      String(cell.bytes),
    ],
    { cwd: root, maxBuffer: 64 * 1024 * 1024, timeout: 30 * 60_000 },
  );
  // callgrind_control -d wrote <file>.1: the n requests' counts alone.
  const dump = readdirSync(dir).find((f) => f.endsWith(".1"));
  if (!dump) throw new Error(`${id} at ${cellName(cell)}: no callgrind dump`);
  const summary = /^summary: (\d+)$/m.exec(readFileSync(join(dir, dump), "utf8"));
  if (!summary) throw new Error(`${id} at ${cellName(cell)}: no summary line in the dump`);
  return Number(summary[1]) / n;
}

const host = machine();
console.log(`node ${host.node}, load average ${host.loadAvg1m}, ${ROUNDS} rounds of ${N} requests per client and cell`);
/** `${cell}|${client}` → instructions per request, one per round. */
const counts = new Map<string, number[]>();
try {
  const jobs = CELLS.flatMap((cell) => Array.from({ length: ROUNDS }, (_, r) => CLIENTS.map((c) => ({ cell, r, id: c.id })))).flat();
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let job = jobs[next++]; job; job = jobs[next++]) {
      const per = await count(job.id, job.cell);
      const key = `${cellName(job.cell)}|${job.id}`;
      const list = counts.get(key) ?? [];
      list[job.r] = per;
      counts.set(key, list);
      console.log(`${cellName(job.cell)} round ${job.r + 1} ${job.id}: ${Math.round(per)} instructions per request`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(2, availableParallelism()) }, worker));
} finally {
  rmSync(work, { recursive: true, force: true });
  rmSync(child, { force: true });
}

const rows = CELLS.map((cell) => {
  const name = cellName(cell);
  const of = (id: string): number[] => counts.get(`${name}|${id}`) ?? [];
  return {
    cell: name,
    instructionsPerRequest: Object.fromEntries(CLIENTS.map((c) => [c.id, Math.round(median(of(c.id)))])),
    ratios: Object.fromEntries(
      RATIOS.filter(([a, b]) => of(a).length && of(b).length).map(([a, b]) => {
        const perRound = of(a).map((v, i) => v / (of(b)[i] as number));
        return [`${a}/${b}`, { median: round(median(perRound), 2), min: round(Math.min(...perRound), 2), max: round(Math.max(...perRound), 2) }];
      }),
    ),
  };
});
const ratioKeys = Object.keys(rows[0]?.ratios ?? {});
console.log(
  markdownTable(
    ["cell", ...CLIENTS.map((c) => `${c.label} (instructions)`), ...ratioKeys],
    rows.map((r) => [
      r.cell,
      ...CLIENTS.map((c) => r.instructionsPerRequest[c.id] as number),
      ...ratioKeys.map((k) => {
        const x = r.ratios[k] as { median: number; min: number; max: number };
        return `${x.median} (${x.min}–${x.max})`;
      }),
    ]),
  ),
);
if (!filtered && CELLS.length === ALL_CELLS.length) {
  const file = fileURLToPath(new URL(`./results/reqpath-instructions-node${process.versions.node.split(".")[0]}.json`, import.meta.url));
  const result = {
    scenario: "reqpath-instructions",
    generatedAt: new Date().toISOString(),
    machine: host,
    config: { requests: N, rounds: ROUNDS, clients: CLIENTS },
    results: rows,
  };
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

/**
 * The request path's CPU, A/B in one process (issue 25 item 8): dialtone's
 * channel against the raw node:http2 session over the same backends, the
 * clients taking turns cell by cell, round after round, so that what else
 * the shared machine does lands on both sides alike. Each round gives a
 * ratio per cell (dialtone's CPU µs per request ÷ its floor's in that same
 * round); the table is the median of those ratios.
 *
 * - "dialtone (1 member, metrics + listener)" ÷ the raw session: the goal is
 *   ≤ 1.10× in every cell.
 * - "dialtone (metrics + listener)", the default 3-member channel, ÷ the raw
 *   session (goal ≤ 1.25×), and ÷ raw sessions to all three backends, calls
 *   dealt round-robin: what three sockets cost without any of dialtone.
 *
 * REQPATH_CELLS=64x16,16384x1 and BENCH_PEERS=id,… narrow a run (to profile
 * one client in one cell with `node --cpu-prof`); BENCH_ROUNDS sets rounds.
 * REQPATH_BASE=<a checkout with a built dist/> adds that build's dialtone
 * clients, so a change is measured against the code before it in the same
 * process (ratios "…/…-base").
 * Writes bench/results/reqpath-node<major>.json for a full run.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { closedLoop } from "./lib/closedloop.js";
import { loopbackHosts, startBackends, stopAll } from "./lib/backends.js";
import { machine } from "./lib/machine.js";
import { dialtoneOneMember, dialtoneOneMemberMetered, rawPeer, rawSpreadPeer } from "./lib/peers/index.js";
import { dialtonePeer, type DialtoneBuild } from "./lib/peers/dialtone.js";
import type { BenchClient, Peer } from "./lib/peers/types.js";
import { orderFor, peersFromEnv, roundsFromEnv } from "./lib/rounds.js";
import { CELLS as ALL_CELLS, cellName, cellsFromEnv } from "./lib/cells.js";
import { median, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const dialtoneMetered = dialtonePeer("peak-ewma", undefined, true);
const ALL: Peer[] = [rawPeer, dialtoneOneMember, dialtoneOneMemberMetered, rawSpreadPeer, dialtoneMetered];
/** Ratio rows: client ÷ its floor. */
const RATIOS: Array<{ of: Peer; over: Peer }> = [
  { of: dialtoneOneMember, over: rawPeer },
  { of: dialtoneOneMemberMetered, over: rawPeer },
  { of: dialtoneMetered, over: rawPeer },
  { of: dialtoneMetered, over: rawSpreadPeer },
  { of: rawSpreadPeer, over: rawPeer },
];
const baseDir = process.env.REQPATH_BASE;
if (baseDir) {
  const base = (await import(pathToFileURL(resolve(baseDir, "dist/index.js")).href)) as DialtoneBuild;
  const oneBase = dialtonePeer("peak-ewma", 1, true, base, "base");
  const threeBase = dialtonePeer("peak-ewma", undefined, true, base, "base");
  ALL.push(oneBase, threeBase);
  RATIOS.push({ of: oneBase, over: rawPeer }, { of: dialtoneOneMemberMetered, over: oneBase }, { of: dialtoneMetered, over: threeBase });
}
const WARMUP_MS = Number(process.env.REQPATH_WARMUP_MS ?? 150);
const MEASURE_MS = 500;
/** Turns each client's measured time per round is cut into. */
const SLICES = Number(process.env.REQPATH_SLICES ?? 1);
const TIMEOUT_MS = 2000;
const ROUNDS = roundsFromEnv(7);

const CELLS = cellsFromEnv("REQPATH_CELLS");
const { peers: PEERS, filtered } = peersFromEnv(ALL);

const host = machine();
console.log(`node ${host.node}, load average ${host.loadAvg1m}, ${ROUNDS} rounds`);
const backends = await startBackends(loopbackHosts(3));
const target = { hosts: backends.map((b) => b.host), port: (backends[0] as (typeof backends)[number]).port, timeoutMs: TIMEOUT_MS };
/** `${cell}|${peer}` → CPU µs per request, one per round. */
const cpu = new Map<string, number[]>();
try {
  const clients = new Map<string, BenchClient>();
  for (const peer of PEERS) clients.set(peer.id, await peer.open(target));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const [ci, cell] of CELLS.entries()) {
        const body = new Uint8Array(randomBytes(cell.bytes));
        // The round's measured time per client, in SLICES short turns taken in rotating order: the shared
        // machine's load changes within a second, and short turns spread it over every client alike.
        const sums = new Map<string, { cpu: number; requests: number }>();
        for (let s = 0; s < SLICES; s++) {
          for (const peer of orderFor(r + ci + s, PEERS)) {
            const client = clients.get(peer.id) as BenchClient;
            const run = () => closedLoop({ concurrency: cell.concurrency, warmupMs: WARMUP_MS, measureMs: MEASURE_MS / SLICES, call: () => client.call(body) });
            // A stall of the shared machine can leave a window without a completion: run that window again, once.
            const res = await run().catch((err: Error) => {
              console.log(`${peer.label} at ${cellName(cell)}: ${err.message}; again`);
              return run();
            });
            if (res.errors > 0) throw new Error(`${peer.label} at ${cellName(cell)}: ${res.errors} errors`);
            const sum = sums.get(peer.id) ?? { cpu: 0, requests: 0 };
            sum.cpu += res.cpuMicros;
            sum.requests += res.requests;
            sums.set(peer.id, sum);
          }
        }
        for (const [id, sum] of sums) {
          const key = `${cellName(cell)}|${id}`;
          cpu.set(key, [...(cpu.get(key) ?? []), sum.cpu / Math.max(1, sum.requests)]);
        }
      }
      console.log(`round ${r + 1}/${ROUNDS} done`);
    }
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
  }
} finally {
  await stopAll(backends);
}

const rows = CELLS.map((cell) => {
  const name = cellName(cell);
  const of = (p: Peer): number[] => cpu.get(`${name}|${p.id}`) ?? [];
  return {
    cell: name,
    cpuMicrosPerRequest: Object.fromEntries(PEERS.map((p) => [p.id, round(median(of(p)), 1)])),
    ratios: Object.fromEntries(
      RATIOS.filter((x) => PEERS.includes(x.of) && PEERS.includes(x.over)).map((x) => {
        const a = of(x.of);
        const b = of(x.over);
        const perRound = a.map((v, i) => v / (b[i] as number));
        return [`${x.of.id}/${x.over.id}`, { median: round(median(perRound), 2), min: round(Math.min(...perRound), 2), max: round(Math.max(...perRound), 2) }];
      }),
    ),
  };
});

const ratioKeys = Object.keys(rows[0]?.ratios ?? {});
console.log(
  markdownTable(
    ["cell", ...PEERS.map((p) => `${p.label} µs`), ...ratioKeys],
    rows.map((r) => [
      r.cell,
      ...PEERS.map((p) => r.cpuMicrosPerRequest[p.id] as number),
      ...ratioKeys.map((k) => {
        const x = r.ratios[k] as { median: number; min: number; max: number };
        return `${x.median} (${x.min}–${x.max})`;
      }),
    ]),
  ),
);
console.log(`medians of ${ROUNDS} rounds (per-round ratio: min–max); load average at the end ${machine().loadAvg1m}`);

if (!filtered && !baseDir && CELLS.length === ALL_CELLS.length) {
  const file = fileURLToPath(new URL(`./results/reqpath-node${process.versions.node.split(".")[0]}.json`, import.meta.url));
  const loadAtEnd = machine().loadAvg1m;
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        scenario: "reqpath",
        generatedAt: new Date().toISOString(),
        machine: host,
        loadAvg1mAtEnd: loadAtEnd,
        config: { warmupMs: WARMUP_MS, measureMs: MEASURE_MS, rounds: ROUNDS, clients: PEERS.map((p) => ({ id: p.id, label: p.label })) },
        results: rows,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${file}`);
}

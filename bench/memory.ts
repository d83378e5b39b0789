/**
 * Scenario 7: memory and sockets per warm member, dialtone only, at 10, 100
 * and 1000 members spread over 10 backends (127.0.0.2 … 127.0.0.11, one
 * port). Each size is measured in a fresh child process with --expose-gc.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CHART_CONFIG, renderSvg } from "./lib/chart.js";
import { loopbackHosts, startBackends, stopAll, type Backend } from "./lib/backends.js";
import { machine } from "./lib/machine.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, roundsFromEnv } from "./lib/rounds.js";
import { median, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const PROBE = fileURLToPath(new URL("./lib/memory-probe.ts", import.meta.url));
const WANTED = [10, 100, 1000];
const BACKENDS = 10;
const PROBE_LIMIT_MS = 90_000;
const ROUNDS = roundsFromEnv(2);
/** File descriptors the probe needs beyond its sockets (stdio, loader, epoll, …), kept generously. */
const FD_HEADROOM = 200;

interface ProbeLine {
  members: number;
  ready: number;
  readyMs: number;
  heapUsedBytes: number;
  externalBytes: number;
  rssBytes: number;
  sockets: number;
}

function openFileLimit(): number {
  try {
    const n = Number(execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim());
    return Number.isFinite(n) && n > 0 ? n : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY; // "unlimited" or no shell
  }
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

function probe(port: number, hosts: string[], members: number): Promise<ProbeLine> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", PROBE, JSON.stringify({ port, hosts, members })], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    live.add(child);
    let out = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), PROBE_LIMIT_MS);
    child.stdout?.on("data", (d: Buffer) => (out += d.toString("utf8")));
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (code === 0 && line) resolve(JSON.parse(line) as ProbeLine);
      else reject(new Error(`memory probe (${members} members) exited with ${code ?? signal}: ${out}`));
    });
  });
}

async function sessionsOpened(backends: Backend[]): Promise<number> {
  const all = await Promise.all(backends.map((b) => b.stats()));
  return all.reduce((n, s) => n + s.sessions, 0);
}

const t0 = performance.now();
const host = machine();
const fdLimit = openFileLimit();
const maxMembers = fdLimit - FD_HEADROOM;
const SIZES = WANTED.map((n) => Math.min(n, maxMembers));
const capped = SIZES.some((n, i) => n !== WANTED[i]);
const backends = await startBackends(loopbackHosts(BACKENDS));
const hosts = backends.map((b) => b.host);
const port = (backends[0] as Backend).port;
const runs = new Map<number, Array<ProbeLine & { backendSessions: number }>>();
try {
  for (let r = 0; r < ROUNDS; r++) {
    for (const n of orderFor(r, SIZES)) {
      const sessions0 = await sessionsOpened(backends);
      const line = await probe(port, hosts, n);
      const backendSessions = (await sessionsOpened(backends)) - sessions0;
      runs.set(n, [...(runs.get(n) ?? []), { ...line, backendSessions }]);
      console.log(
        `round ${r + 1}/${ROUNDS} ${n} members: ${line.ready} ready in ${line.readyMs} ms, heap +${Math.round(line.heapUsedBytes / 1024)} KiB, ${line.sockets} sockets`,
      );
    }
  }
} finally {
  await stopAll(backends);
}

const results = SIZES.map((members) => {
  const rs = runs.get(members) ?? [];
  const m = (f: (x: ProbeLine & { backendSessions: number }) => number): number => median(rs.map(f));
  return {
    members,
    readyMs: m((x) => x.readyMs),
    heapUsedKiB: round(m((x) => x.heapUsedBytes) / 1024, 1),
    heapKiBPerMember: round(m((x) => x.heapUsedBytes) / 1024 / members, 2),
    externalKiBPerMember: round(m((x) => x.externalBytes) / 1024 / members, 2),
    rssKiBPerMember: round(m((x) => x.rssBytes) / 1024 / members, 1),
    socketsPerMember: round(m((x) => x.sockets) / members, 3),
    backendSessionsPerMember: round(m((x) => x.backendSessions) / members, 3),
  };
});
const [small, , large] = results;
const marginal = small && large ? round((large.heapUsedKiB - small.heapUsedKiB) / (large.members - small.members), 2) : Number.NaN;
const headline = {
  heapKiBPerMemberAt1000: large?.heapKiBPerMember ?? null,
  /** Heap growth per extra member between the smallest and largest size (fixed costs cancel). */
  marginalHeapKiBPerMember: marginal,
  socketsPerMember: large?.socketsPerMember ?? null,
  largestMembers: large?.members ?? null,
};

const markdown = [
  markdownTable(
    ["members", "ready after ms", "heap KiB", "heap KiB/member", "external KiB/member", "RSS KiB/member", "client sockets/member", "backend sessions/member"],
    results.map((x) => [
      x.members,
      x.readyMs,
      x.heapUsedKiB,
      x.heapKiBPerMember,
      x.externalKiBPerMember,
      x.rssKiBPerMember,
      x.socketsPerMember,
      x.backendSessionsPerMember,
    ]),
  ),
  "",
  `Each extra member adds **${marginal} KiB** of heap (${small?.members} → ${large?.members} members). Medians of ${ROUNDS} rounds, each size in a fresh process, after GC, ${BACKENDS} backends on one port.` +
    (capped ? ` Sizes capped at ${maxMembers} members by \`ulimit -n\` = ${fdLimit}.` : ` \`ulimit -n\` was ${fdLimit}.`),
].join("\n");

const svg = await renderSvg({
  $schema: "https://vega.github.io/schema/vega-lite/v5.json",
  title: "Heap per warm member (dialtone, after GC)",
  config: CHART_CONFIG,
  width: 420,
  height: 220,
  data: { values: results },
  mark: { type: "line", point: true },
  encoding: {
    x: { field: "members", type: "quantitative", scale: { type: "log" }, axis: { values: SIZES }, title: "members" },
    y: { field: "heapKiBPerMember", type: "quantitative", title: "heap KiB per member", scale: { zero: true } },
  },
});

writeReport({
  file: {
    scenario: "memory",
    title: "Scenario 7 — memory per member",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: { sizes: SIZES, wanted: WANTED, backends: BACKENDS, rounds: ROUNDS, openFileLimit: fdLimit, capped },
    headline,
    results,
  },
  markdown,
  svg,
});

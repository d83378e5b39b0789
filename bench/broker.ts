/**
 * Scenario 8: the sidecar broker against the proxies people would put there
 * instead. h2load (Debian's nghttp2-client) drives h2c through dialtone
 * broker, HAProxy and nghttpx (Debian's packages) and a raw Node HTTP/2
 * proxy (the floor for any proxy on Node's http2), all in front of the same
 * 3 nghttpd backends, and straight at one backend for the baseline. In one
 * run: requests/s at a fixed concurrency with the CPU each proxy spent per
 * request (from /proc), latency at concurrency 1 (added p50/p99 over
 * direct), and requests failed when one backend is frozen (SIGSTOP) under
 * load. Loopback only; every child is reaped.
 */
import { h2load, type H2loadResult } from "./lib/h2load.js";
import { machine } from "./lib/machine.js";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { docroot, freePort, HEALTH, startDialtone, startHaproxy, startNghttpd, startNghttpx, startNodeRaw, stopAllProcs, type Proc } from "./lib/proxies.js";
import { elapsed, writeReport } from "./lib/results.js";
import { ratio, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const THROUGHPUT = { clients: 8, streams: 16, seconds: 4, warmUp: 1 };
const LATENCY = { clients: 1, streams: 1, seconds: 3, warmUp: 1 };
/** The freeze: 32 streams in flight; backend 1 of 3 is SIGSTOPped 1.5 s into a 6 s run and SIGCONTed after it. */
const FAULT = { clients: 4, streams: 8, seconds: 6, warmUp: 1, freezeAtMs: 1500 };
/** After a thaw, time for every proxy's health checks to take the backend back before the next run. */
const RECOVER_MS = 4000;

type Name = "direct" | "dialtone" | "noderaw" | "haproxy" | "nghttpx";
interface Row {
  throughput: H2loadResult;
  /** CPU µs the proxy (and its child processes) spent per request measured in the throughput run; NaN for direct. */
  cpuUsPerRequest: number;
  latency: H2loadResult;
  freeze?: H2loadResult;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Clock ticks per second of /proc's utime and stime. */
const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) of `pid` and its child processes (nghttpx's worker) so far. */
function cpuSeconds(pid: number): number {
  const stat = (p: string): string[] | undefined => {
    try {
      const text = readFileSync(`/proc/${p}/stat`, "utf8");
      // Fields after the command name (which may hold spaces), starting with field 3 (state).
      return text.slice(text.lastIndexOf(")") + 2).split(" ");
    } catch {
      return undefined;
    }
  };
  const ticks = (f: string[]): number => Number(f[11]) + Number(f[12]);
  let total = 0;
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    const f = stat(p);
    if (f && (Number(p) === pid || Number(f[1]) === pid)) total += ticks(f);
  }
  return total / CLK_TCK;
}

/** Runs the throughput measurement and reads the proxy's CPU over its measured window. */
async function throughputWithCpu(url: string, p: Proc | undefined): Promise<{ throughput: H2loadResult; cpuUsPerRequest: number }> {
  let start = Number.NaN;
  const throughput = await h2load({ url, authority: "web.internal", ...THROUGHPUT, at: p ? { ms: 0, run: () => (start = cpuSeconds(p.pid)) } : undefined });
  // h2load -D ends its measurement and exits; the proxy is idle from then on, so reading now adds nothing.
  const cpuUsPerRequest = p ? ((cpuSeconds(p.pid) - start) * 1e6) / throughput.started : Number.NaN;
  return { throughput, cpuUsPerRequest: round(cpuUsPerRequest, 1) };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const root = docroot();
  const port = await freePort("127.0.0.2");
  const backends = [await startNghttpd("127.0.0.2", port, root), await startNghttpd("127.0.0.3", port, root), await startNghttpd("127.0.0.4", port, root)];
  const proxies: Record<Exclude<Name, "direct">, Proc> = {
    dialtone: await startDialtone(backends),
    noderaw: await startNodeRaw(backends),
    haproxy: await startHaproxy(backends),
    nghttpx: await startNghttpx(backends),
  };
  // Every proxy has its connections up and its first health checks passed.
  await sleep(2000);
  const url = (p: Proc): string => `http://${p.host}:${p.port}/index.html`;
  const targets: Array<[Name, Proc]> = [["direct", backends[0]!], ...(Object.entries(proxies) as Array<[Name, Proc]>)];
  const rows = {} as Record<Name, Row>;
  for (const [name, p] of targets) {
    const { throughput, cpuUsPerRequest } = await throughputWithCpu(url(p), name === "direct" ? undefined : p);
    const latency = await h2load({ url: url(p), authority: "web.internal", ...LATENCY });
    rows[name] = { throughput, cpuUsPerRequest, latency };
    console.log(
      `${name}: ${round(throughput.reqPerSec, 0)} req/s at ${cpuUsPerRequest} CPU µs/request; p50 ${latency.p50Us} µs, p99 ${latency.p99Us} µs at concurrency 1`,
    );
  }
  const frozen = backends[1]!;
  for (const [name, p] of targets.slice(1)) {
    try {
      rows[name].freeze = await h2load({ url: url(p), authority: "web.internal", ...FAULT, at: { ms: FAULT.freezeAtMs, run: () => frozen.freeze() } });
    } finally {
      frozen.thaw();
    }
    console.log(`${name}, ${frozen.host} frozen: ${rows[name].freeze!.failed} of ${rows[name].freeze!.started} failed`);
    await sleep(RECOVER_MS);
  }
  await stopAllProcs();
  report(rows, elapsed(t0));
}

function per10k(r: H2loadResult): number {
  return r.started === 0 ? Number.NaN : round((r.failed / r.started) * 10_000, 1);
}

function report(rows: Record<Name, Row>, durationSeconds: number): void {
  const d = rows.direct;
  const names: Name[] = ["direct", "dialtone", "noderaw", "haproxy", "nghttpx"];
  const label: Record<Name, string> = {
    direct: "direct",
    dialtone: "**dialtone broker**",
    noderaw: "raw Node http2 proxy",
    haproxy: "haproxy",
    nghttpx: "nghttpx",
  };
  const addedP50 = (n: Name): number => rows[n].latency.p50Us - d.latency.p50Us;
  const addedP99 = (n: Name): number => rows[n].latency.p99Us - d.latency.p99Us;
  const table = markdownTable(
    [
      "target",
      "req/s",
      "× direct",
      "× dialtone",
      "CPU µs / request",
      "p50 µs (c=1)",
      "added p50 µs",
      "p99 µs (c=1)",
      "added p99 µs",
      "failed with 1 of 3 frozen",
    ],
    names.map((n) => {
      const r = rows[n];
      return [
        label[n],
        round(r.throughput.reqPerSec, 0),
        ratio(r.throughput.reqPerSec, d.throughput.reqPerSec),
        ratio(r.throughput.reqPerSec, rows.dialtone.throughput.reqPerSec),
        n === "direct" ? "–" : r.cpuUsPerRequest,
        r.latency.p50Us,
        n === "direct" ? "–" : addedP50(n),
        r.latency.p99Us,
        n === "direct" ? "–" : addedP99(n),
        r.freeze ? `${r.freeze.failed} of ${r.freeze.started} (${per10k(r.freeze)} per 10k)` : "–",
      ];
    }),
    ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r"],
  );
  const bestOtherFailed = Math.min(rows.haproxy.freeze!.failed, rows.nghttpx.freeze!.failed);
  const headline = {
    reqPerSecVsHaproxy: ratio(rows.dialtone.throughput.reqPerSec, rows.haproxy.throughput.reqPerSec),
    reqPerSecVsNghttpx: ratio(rows.dialtone.throughput.reqPerSec, rows.nghttpx.throughput.reqPerSec),
    addedP50Us: { dialtone: addedP50("dialtone"), haproxy: addedP50("haproxy"), nghttpx: addedP50("nghttpx") },
    addedP99Us: { dialtone: addedP99("dialtone"), haproxy: addedP99("haproxy"), nghttpx: addedP99("nghttpx") },
    failedFrozen: { dialtone: rows.dialtone.freeze!.failed, haproxy: rows.haproxy.freeze!.failed, nghttpx: rows.nghttpx.freeze!.failed },
    failedFrozenVsBestOther: ratio(rows.dialtone.freeze!.failed, bestOtherFailed),
    // Each proxy ran at its own speed, so counts alone compare unequal amounts of traffic: per 10k requests too.
    failedFrozenPer10k: { dialtone: per10k(rows.dialtone.freeze!), haproxy: per10k(rows.haproxy.freeze!), nghttpx: per10k(rows.nghttpx.freeze!) },
    // The goals, against the floor for a Node http2 proxy measured in the same run.
    vsNodeRaw: {
      cpuPerRequest: { ratio: ratio(rows.dialtone.cpuUsPerRequest, rows.noderaw.cpuUsPerRequest), goal: "≤ 1.3" },
      addedP50: { ratio: ratio(addedP50("dialtone"), addedP50("noderaw")), goal: "≤ 1.3" },
      addedP99: { ratio: ratio(addedP99("dialtone"), addedP99("noderaw")), goal: "≤ 1.3" },
      reqPerSec: { ratio: ratio(rows.dialtone.throughput.reqPerSec, rows.noderaw.throughput.reqPerSec), goal: "≥ 0.75" },
    },
    cpuUsPerRequest: Object.fromEntries(names.slice(1).map((n) => [n, rows[n].cpuUsPerRequest])),
  };
  const notes = [
    `One run (this machine has 2 shared cores: one h2load thread, one proxy process or thread each, 3 nghttpd backends, all on the same cores). Throughput: h2load -c ${THROUGHPUT.clients} -m ${THROUGHPUT.streams}, ${THROUGHPUT.warmUp} s warm-up + ${THROUGHPUT.seconds} s measured, GET of a 19-byte file; CPU µs / request: the proxy's user + system time (its worker processes included) over the measured window, from /proc, divided by the requests h2load started in it. The raw Node http2 proxy is about 30 lines (bench/lib/proxies.ts): one session per backend, round-robin, pipes both ways; no health checks, retries, timeouts or metrics: requests that land on a frozen backend wait for it (h2load counts them neither done nor failed, and its rate collapses). Latency: -c 1 -m 1 for ${LATENCY.seconds} s, quantiles from h2load's per-request log. Freeze: -c ${FAULT.clients} -m ${FAULT.streams} for ${FAULT.seconds} s; 127.0.0.3 is SIGSTOPped ${FAULT.freezeAtMs / 1000} s in and SIGCONTed after the run; "failed" = requests started that did not end with a 2xx.`,
    `Every proxy: h2c in, h2c out, ${HEALTH.requestTimeoutMs / 1000} s request timeout. Health checks: dialtone PINGs every ${HEALTH.intervalMs} ms (timeout ${HEALTH.timeoutMs} ms, ${HEALTH.fall} misses); HAProxy 2.6 (nbthread 1, leastconn) runs its documented HTTP check over HTTP/2 at the same interval, timeout and fall count (no retry-on); nghttpx (1 worker) has no active backend check, so only its ${HEALTH.requestTimeoutMs / 1000} s backend read timeout finds a frozen backend.`,
  ];
  writeReport({
    file: {
      scenario: "broker",
      title: "Scenario 8 — the sidecar broker vs HAProxy and nghttpx",
      generatedAt: new Date().toISOString(),
      durationSeconds,
      machine: machine(),
      config: { THROUGHPUT, LATENCY, FAULT, HEALTH },
      headline,
      results: rows,
    },
    markdown: `${table}\n\n${notes.join("\n\n")}`,
  });
  console.log(JSON.stringify(headline, null, 2));
}

main().catch(async (err: unknown) => {
  console.error(err);
  await stopAllProcs();
  process.exitCode = 1;
});

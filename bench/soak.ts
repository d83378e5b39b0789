/**
 * The soak (`npm run soak -- [--minutes N] [--transport http2|nats|all]`,
 * default 10 minutes, both transports one after the other): 3 members over
 * 4 backends at 200 req/s, a fault every 10 s, heap after GC, open fds and
 * active handles every 30 s. Each transport writes
 * bench/results/soak-<transport>.{json,md}; the run then writes
 * bench/results/soak.{json,md,svg} from every transport's latest file and
 * refreshes docs/BENCHMARKS.md. Bounded: a hard deadline exits the process
 * (its exit hooks SIGKILL every child) if anything hangs.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CHART_CONFIG, renderSvg } from "./lib/chart.js";
import { machine, type Machine } from "./lib/machine.js";
import { writeJson, writeReport } from "./lib/results.js";
import { analyze, type SoakAnalysis } from "./lib/soak-analysis.js";
import { openHttp2Soak } from "./lib/soak-http2.js";
import { soakLoop, type LoopResult } from "./lib/soak-loop.js";
import { openNatsSoak } from "./lib/soak-nats.js";
import { requireGc, type ResourceSample } from "./lib/soak-resources.js";
import { markdownTable } from "./lib/table.js";

const RATE = 200;
const TIMEOUT_MS = 2000;
const FAULT_EVERY_MS = 10_000;
const SAMPLE_EVERY_MS = 30_000;
const TRANSPORTS = ["http2", "nats"] as const;
type Transport = (typeof TRANSPORTS)[number];
const RESULTS = fileURLToPath(new URL("./results/", import.meta.url));

interface TransportFile {
  transport: Transport;
  generatedAt: string;
  minutes: number;
  machine: Machine;
  config: Record<string, unknown>;
  analysis: SoakAnalysis;
  resources: ResourceSample[];
  faults: LoopResult["faults"];
}

const { values } = parseArgs({ options: { minutes: { type: "string", default: "10" }, transport: { type: "string", default: "all" } } });
const minutes = Number(values.minutes);
if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) throw new Error(`--minutes: expected a number of minutes, got ${values.minutes}`);
const chosen: Transport[] = values.transport === "all" ? [...TRANSPORTS] : TRANSPORTS.filter((t) => t === values.transport);
if (chosen.length === 0) throw new Error(`--transport: expected http2, nats or all, got ${values.transport}`);
requireGc();

const durationMs = Math.round(minutes * 60_000);
// Setup, the lame-duck restart and teardown take well under 2 minutes; past that something hangs.
const hardDeadline = setTimeout(
  () => {
    console.error("soak: hard deadline passed; exiting (exit hooks reap every child)");
    process.exit(2);
  },
  chosen.length * (durationMs + 120_000),
);
hardDeadline.unref();

async function runTransport(t: Transport): Promise<TransportFile> {
  const soak = t === "http2" ? await openHttp2Soak(TIMEOUT_MS) : await openNatsSoak(TIMEOUT_MS);
  try {
    console.log(`soak ${t}: ${minutes} min at ${RATE} req/s, a fault every ${FAULT_EVERY_MS / 1000} s`);
    const r = await soakLoop({
      target: soak.target,
      rate: RATE,
      durationMs,
      timeoutMs: TIMEOUT_MS,
      faultEveryMs: FAULT_EVERY_MS,
      sampleEveryMs: Math.min(SAMPLE_EVERY_MS, durationMs / 6),
      onProgress: (line) => console.log(`  ${t} ${line}`),
    });
    return {
      transport: t,
      generatedAt: new Date().toISOString(),
      minutes,
      machine: machine(),
      config: { rate: RATE, timeoutMs: TIMEOUT_MS, faultEveryS: FAULT_EVERY_MS / 1000, sampleEveryS: SAMPLE_EVERY_MS / 1000, ...soak.config },
      analysis: analyze(r, FAULT_EVERY_MS, durationMs / 1000),
      resources: r.resources,
      faults: r.faults,
    };
  } finally {
    await soak.close();
  }
}

function codes(m: Record<string, number>): string {
  const e = Object.entries(m);
  return e.length === 0 ? "none" : e.map(([k, v]) => `${k} × ${v}`).join(", ");
}

function transportMarkdown(f: TransportFile): string {
  const a = f.analysis;
  const d = a.drift;
  const summary = markdownTable(
    ["what", "value"],
    [
      ["requests", a.requests],
      ["failures", `${a.failures} (${codes(a.failuresByCode)})`],
      ["failures in flight at a kill or freeze", a.explained],
      ["failures nothing explains", codes(a.unexplainedByCode)],
      ["p50 / p99, ms", `${a.p50Ms} / ${a.p99Ms}`],
      ["heap after GC, MB (minute 1 → 3 → last)", `${d.heapMB.firstMinute} → ${d.heapMB.minute3} → ${d.heapMB.last}`],
      ["heap drift after minute 3", `${d.heapMB.driftPctAfterMinute3} %`],
      ["heap drift minute 1 → last", `${d.heapMB.driftPctFirstToLast} %`],
      ["open fds (after minute 1)", `${d.fds.afterMinute1[0]}–${d.fds.afterMinute1[1]}`],
      ["active handles (after minute 1)", `${d.handles.afterMinute1[0]}–${d.handles.afterMinute1[1]}`],
      ["largest send lag, ms", a.maxSendLagMs],
    ],
    ["l", "r"],
  );
  const faults = markdownTable(
    ["fault", "count", "fault errors", "requests failed in the 10 s after", "p50 ms", "p99 ms"],
    a.byFault.map((b) => [b.kind, b.count, b.errors, b.failures, b.p50Ms, b.p99Ms]),
  );
  return `**${f.transport}**, ${f.minutes} min (${f.generatedAt.slice(0, 16).replace("T", " ")} UTC, load average ${f.machine.loadAvg1m} at start)\n\n${summary}\n\n${faults}\n`;
}

async function chart(files: TransportFile[]): Promise<string> {
  const data = files.flatMap((f) =>
    f.resources.flatMap((s) => [
      { transport: f.transport, minute: s.atS / 60, metric: "heap after GC (MB)", value: s.heapMB },
      { transport: f.transport, minute: s.atS / 60, metric: "open fds", value: s.fds },
      { transport: f.transport, minute: s.atS / 60, metric: "active handles", value: s.handles },
    ]),
  );
  return renderSvg({
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    config: CHART_CONFIG,
    title: "Soak: resources over time (a fault every 10 s)",
    data: { values: data },
    facet: { row: { field: "metric", type: "nominal", title: null } },
    spec: {
      width: 560,
      height: 120,
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "minute", type: "quantitative", title: "minutes" },
        y: { field: "value", type: "quantitative", title: null, scale: { zero: false } },
        color: { field: "transport", type: "nominal" },
      },
    },
    resolve: { scale: { y: "independent" } },
  });
}

const started = new Date();
for (const t of chosen) {
  const f = await runTransport(t);
  writeJson(`soak-${t}`, f);
  writeFileSync(`${RESULTS}soak-${t}.md`, `# Soak — ${t}\n\n${transportMarkdown(f)}`);
  console.log(transportMarkdown(f));
}
const files = TRANSPORTS.filter((t) => existsSync(`${RESULTS}soak-${t}.json`)).map(
  (t) => JSON.parse(readFileSync(`${RESULTS}soak-${t}.json`, "utf8")) as TransportFile,
);
writeReport({
  file: {
    scenario: "soak",
    title: "Soak: drift, failures and p99 under a fault every 10 s",
    generatedAt: started.toISOString(),
    durationSeconds: Math.round((Date.now() - started.getTime()) / 1000),
    machine: machine(),
    config: { rate: RATE, timeoutMs: TIMEOUT_MS, faultEveryS: FAULT_EVERY_MS / 1000, transportsRun: chosen },
    headline: Object.fromEntries(
      files.map((f) => [
        f.transport,
        {
          minutes: f.minutes,
          heapDriftPctAfterMinute3: f.analysis.drift.heapMB.driftPctAfterMinute3,
          fds: f.analysis.drift.fds.afterMinute1,
          handles: f.analysis.drift.handles.afterMinute1,
          failures: f.analysis.failures,
          unexplained: f.analysis.unexplainedByCode,
        },
      ]),
    ),
    results: files.map((f) => ({ transport: f.transport, generatedAt: f.generatedAt, minutes: f.minutes, analysis: f.analysis })),
  },
  markdown: files.map(transportMarkdown).join("\n"),
  svg: await chart(files),
});
process.exit(0);

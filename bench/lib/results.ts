/**
 * Writes a scenario's results: bench/results/<scenario>.json (the numbers),
 * .md (the table), .svg (the chart), and refreshes the scenario's section of
 * docs/BENCHMARKS.md between its markers so the doc quotes only these files.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Machine } from "./machine.js";

const RESULTS = fileURLToPath(new URL("../results/", import.meta.url));
const DOC = fileURLToPath(new URL("../../docs/BENCHMARKS.md", import.meta.url));

export interface ResultFile<C, H, R> {
  scenario: string;
  title: string;
  generatedAt: string;
  /** Wall-clock time of the whole scenario, s. */
  durationSeconds: number;
  machine: Machine;
  config: C;
  /** The few ratios worth quoting; see docs/BENCHMARKS.md for how each is measured. */
  headline: H;
  results: R;
}

export interface Report<C, H, R> {
  file: ResultFile<C, H, R>;
  /** Markdown body (tables, notes); `chart` is its image, linked relative to where the body lands. */
  markdown: string;
  svg?: string;
}

function section<C, H, R>(r: Report<C, H, R>, imageDir: string): string {
  const f = r.file;
  const when = `${f.generatedAt.slice(0, 16).replace("T", " ")} UTC`;
  const lines = [
    `_Measured ${when} on ${f.machine.cpus} × ${f.machine.cpuModel}, Node ${f.machine.node}, load average ${f.machine.loadAvg1m} at start; the scenario took ${f.durationSeconds} s. Source: [bench/results/${f.scenario}.json](${imageDir}${f.scenario}.json)._`,
    "",
    r.markdown.trim(),
  ];
  if (r.svg) lines.push("", `![${f.title}](${imageDir}${f.scenario}.svg)`);
  return `${lines.join("\n")}\n`;
}

export function writeJson(name: string, value: unknown): void {
  writeFileSync(`${RESULTS}${name}.json`, `${JSON.stringify(value, null, 2)}\n`);
}

export function writeReport<C, H, R>(r: Report<C, H, R>): void {
  const name = r.file.scenario;
  writeJson(name, r.file);
  writeFileSync(`${RESULTS}${name}.md`, `# ${r.file.title}\n\n${section(r, "./")}`);
  if (r.svg) writeFileSync(`${RESULTS}${name}.svg`, r.svg);
  updateDoc(name, section(r, "../bench/results/"));
  console.log(`wrote bench/results/${name}.{json,md${r.svg ? ",svg" : ""}}`);
}

/** Replaces the body between `<!-- results:NAME -->` and `<!-- /results:NAME -->` in docs/BENCHMARKS.md. */
export function updateDoc(name: string, body: string): void {
  const open = `<!-- results:${name} -->`;
  const close = `<!-- /results:${name} -->`;
  let doc: string;
  try {
    doc = readFileSync(DOC, "utf8");
  } catch {
    return;
  }
  const a = doc.indexOf(open);
  const b = doc.indexOf(close);
  if (a < 0 || b < a) {
    console.warn(`docs/BENCHMARKS.md has no ${open} … ${close} markers; left unchanged`);
    return;
  }
  writeFileSync(DOC, `${doc.slice(0, a + open.length)}\n${body}${doc.slice(b)}`);
}

/** Seconds since `t0` (performance.now()), one decimal. */
export function elapsed(t0: number): number {
  return Math.round((performance.now() - t0) / 100) / 10;
}

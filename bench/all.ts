/**
 * `npm run bench`: every scenario in turn, each in its own process with a
 * hard time limit, then bench/results/run.json with how long each took.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { machine } from "./lib/machine.js";
import { updateDoc, writeJson } from "./lib/results.js";

const SCENARIOS = [
  { name: "pick", limitS: 30 },
  { name: "throughput", limitS: 300 },
  { name: "failover", limitS: 240 },
  { name: "slow", limitS: 120 },
  { name: "dns", limitS: 120 },
  { name: "nats", limitS: 150 },
  { name: "memory", limitS: 120 },
  { name: "tail", limitS: 300 },
  { name: "appfail", limitS: 120 },
  { name: "nats-stale", limitS: 240 },
];
/** SIGTERM at the limit; SIGKILL this long after. */
const KILL_GRACE_MS = 5000;

let running: ChildProcess | undefined;
process.on("exit", () => running?.kill("SIGKILL"));
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));

function run(name: string, limitS: number): Promise<number | null> {
  return new Promise((resolve) => {
    const script = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", script], { stdio: "inherit" });
    running = child;
    const term = setTimeout(() => {
      console.error(`bench: ${name} passed its ${limitS} s limit; stopping it`);
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS).unref();
    }, limitS * 1000);
    child.once("exit", (code) => {
      clearTimeout(term);
      running = undefined;
      resolve(code);
    });
  });
}

const t0 = performance.now();
const host = machine();
const took: Record<string, number> = {};
const failed: string[] = [];
for (const s of SCENARIOS) {
  const start = performance.now();
  console.log(`\n== bench:${s.name}`);
  const code = await run(s.name, s.limitS);
  took[s.name] = Math.round((performance.now() - start) / 100) / 10;
  if (code !== 0) failed.push(s.name);
}
const totalSeconds = Math.round((performance.now() - t0) / 100) / 10;
writeJson("run", { generatedAt: new Date().toISOString(), machine: host, totalSeconds, scenarioSeconds: took, failed });
updateDoc(
  "run",
  [
    `| what | value |`,
    `| --- | --- |`,
    `| CPU | ${host.cpus} × ${host.cpuModel} (\`nproc\` = ${host.cpus}) |`,
    `| Node.js | ${host.node} |`,
    `| OS | ${host.platform} |`,
    `| load average (1 min) at the start | ${host.loadAvg1m} |`,
    `| last full \`npm run bench\` | ${totalSeconds} s (${Object.entries(took)
      .map(([k, v]) => `${k} ${v} s`)
      .join(", ")}), build not included |`,
    "",
    "Source: [bench/results/run.json](../bench/results/run.json).",
    "",
  ].join("\n"),
);
console.log(`\nbench: ${totalSeconds} s${failed.length ? `; FAILED: ${failed.join(", ")}` : ""}`);
process.exit(failed.length ? 1 : 0);

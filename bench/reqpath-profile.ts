/**
 * Where a request's CPU goes, dialtone against the raw session, profiled in
 * one process: the two clients take turns (8 rounds of 500 ms each, at one
 * cell), V8's sampling profiler runs only during each client's own window,
 * and the samples are added up per client and per function, per 1000
 * requests. Profiles of two separate processes differ by what the shared
 * machine did meanwhile (a collector share of 11 % against 7 % there came
 * out equal here); turns in one process do not.
 *
 * REQPATH_CELL=64x16 (bytes x concurrency) picks the cell. Prints the
 * functions whose share differs most; `(garbage collector)` is the main
 * thread's part of the collector.
 */
import { Session } from "node:inspector/promises";
import { randomBytes } from "node:crypto";
import { closedLoop } from "./lib/closedloop.js";
import { loopbackHosts, startBackends, stopAll } from "./lib/backends.js";
import { machine } from "./lib/machine.js";
import { dialtoneOneMemberMetered, rawPeer } from "./lib/peers/index.js";
import type { BenchClient } from "./lib/peers/types.js";
import { sleep } from "./lib/rounds.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

const [bytes, concurrency] = (process.env.REQPATH_CELL ?? "64x16").split("x").map(Number) as [number, number];
const ROUNDS = 8;
const WINDOW_MS = 500;
const INTERVAL_US = 100;

console.log(`node ${process.version}, load average ${machine().loadAvg1m}, ${bytes} B × ${concurrency}`);
const backends = await startBackends(loopbackHosts(1));
const target = { hosts: backends.map((b) => b.host), port: (backends[0] as (typeof backends)[number]).port, timeoutMs: 2000 };
const body = new Uint8Array(randomBytes(bytes));
const peers = [rawPeer, dialtoneOneMemberMetered];
const session = new Session();
session.connect();
try {
  const clients: BenchClient[] = [];
  for (const p of peers) clients.push(await p.open(target));
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: INTERVAL_US });
  const acc = peers.map(() => ({ requests: 0, busy: 0, self: new Map<string, number>() }));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
        const client = clients[i] as BenchClient;
        await closedLoop({ concurrency, warmupMs: 100, measureMs: 100, call: () => client.call(body) });
        let done = 0;
        let stop = false;
        const workers = Array.from({ length: concurrency }, async () => {
          while (!stop) {
            await client.call(body);
            done++;
          }
        });
        await session.post("Profiler.start");
        const before = done;
        await sleep(WINDOW_MS);
        const after = done;
        const { profile } = (await session.post("Profiler.stop")) as { profile: Profile };
        stop = true;
        await Promise.all(workers);
        const a = acc[i] as (typeof acc)[number];
        a.requests += after - before;
        const byId = new Map(profile.nodes.map((n) => [n.id, n]));
        for (const id of profile.samples) {
          const cf = (byId.get(id) as ProfileNode).callFrame;
          const key = `${cf.functionName || "(anonymous)"} ${cf.url.split("/").pop() ?? ""}:${cf.lineNumber + 1}`;
          if (key.startsWith("(idle)")) continue;
          a.busy++;
          a.self.set(key, (a.self.get(key) ?? 0) + 1);
        }
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  const [raw, dt] = acc as [(typeof acc)[number], (typeof acc)[number]];
  const per = (a: typeof raw, k: string): number => ((a.self.get(k) ?? 0) * 1000) / a.requests;
  console.log(
    `busy samples per 1000 requests: raw ${((raw.busy * 1000) / raw.requests).toFixed(1)}, dialtone ${((dt.busy * 1000) / dt.requests).toFixed(1)} (${(((dt.busy / dt.requests) * raw.requests) / raw.busy).toFixed(2)}×); requests ${raw.requests}, ${dt.requests}`,
  );
  const rows = [...new Set([...raw.self.keys(), ...dt.self.keys()])].map((k) => ({ k, raw: per(raw, k), dt: per(dt, k) }));
  rows.sort((x, y) => y.dt - y.raw - (x.dt - x.raw));
  console.log("samples per 1000 requests: raw, dialtone, function (dearer under dialtone first)");
  for (const x of [...rows.slice(0, 30), ...rows.slice(-8)]) console.log(x.raw.toFixed(1).padStart(7), x.dt.toFixed(1).padStart(7), x.k);
  console.log(`load average at the end ${machine().loadAvg1m}`);
} finally {
  session.disconnect();
  await stopAll(backends);
}

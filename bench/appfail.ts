/**
 * Application failure (issue 17): one of 3 backends answers 503 to every
 * request but PINGs fine. Open-loop load per client; the share of requests
 * that reach the failing backend after the first second (counted by the
 * backend itself) and the failed calls. Goal: with `outlier` configured,
 * ≤ 1 % after the first second.
 */
import { withClient } from "./lib/client-run.js";
import { loopbackHosts, startBackends, stopAll, type Backend, type BackendStats } from "./lib/backends.js";
import { machine } from "./lib/machine.js";
import { openLoop } from "./lib/openloop.js";
import { dialtone, undiciBalancedPeer, undiciPoolPeer } from "./lib/peers/index.js";
import { dialtoneWith } from "./lib/peers/dialtone.js";
import { HOSTNAME, type Peer } from "./lib/peers/types.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, roundsFromEnv } from "./lib/rounds.js";
import { median, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const RATE = 300;
const DURATION_MS = 4000;
const AFTER_MS = 1000;
const TIMEOUT_MS = 2000;
const ROUNDS = roundsFromEnv(2);

const PEERS: Peer[] = [
  dialtone,
  dialtoneWith("dialtone-outlier", "dialtone, outlier {} (defaults)", (t) => ({
    target: `http://${HOSTNAME}:${t.port}`,
    discovery: `static:///${t.hosts.map((h) => `${h}:${t.port}`).join(",")}`,
    members: t.hosts.length,
    outlier: {},
  })),
  undiciPoolPeer,
  undiciBalancedPeer,
];

interface RunResult {
  /** Share of all requests the backends counted after AFTER_MS that the failing one got. */
  badShareAfter: number;
  failedAfter: number;
  failed: number;
}

const t0 = performance.now();
const host = machine();
const runs = new Map<string, RunResult[]>();
const stats = (bs: Backend[]): Promise<BackendStats[]> => Promise.all(bs.map((b) => b.stats()));

for (let r = 0; r < ROUNDS; r++) {
  for (const peer of orderFor(r, PEERS)) {
    const backends = await startBackends(loopbackHosts(3));
    try {
      const target = { hosts: backends.map((b) => b.host), port: backends[0]!.port, timeoutMs: TIMEOUT_MS };
      const body = new Uint8Array(64);
      const run = await withClient(peer, target, async (client) => {
        // The failure starts after the warm-up, as a backend going bad in service would.
        await backends[0]!.command({ cmd: "status", status: 503 });
        let at: Promise<BackendStats[]> | undefined;
        const out = await openLoop({
          rate: RATE,
          durationMs: DURATION_MS,
          timeoutMs: TIMEOUT_MS,
          call: () => client.call(body),
          faults: [{ atMs: AFTER_MS, name: "after", run: () => void (at = stats(backends)) }],
        });
        const end = await stats(backends);
        const mid = (await at) ?? end;
        const delta = end.map((s, i) => s.requests - (mid[i]?.requests ?? 0));
        return {
          badShareAfter:
            (delta[0] ?? 0) /
            Math.max(
              1,
              delta.reduce((a, b) => a + b, 0),
            ),
          failedAfter: out.samples.filter((s) => !s.ok && s.at >= AFTER_MS).length,
          failed: out.samples.filter((s) => !s.ok).length,
        };
      });
      runs.set(peer.id, [...(runs.get(peer.id) ?? []), run]);
      console.log(
        `round ${r + 1}/${ROUNDS} ${peer.label.padEnd(34)} share to the 503 backend after 1 s ${(run.badShareAfter * 100).toFixed(2)} %, failed ${run.failed} (${run.failedAfter} after 1 s)`,
      );
    } finally {
      await stopAll(backends);
    }
  }
}

const results = PEERS.map((peer) => {
  const rs = runs.get(peer.id) ?? [];
  return {
    id: peer.id,
    label: peer.label,
    badSharePercentAfter1s: round(median(rs.map((x) => x.badShareAfter * 100)), 2),
    worstBadSharePercentAfter1s: round(Math.max(...rs.map((x) => x.badShareAfter * 100)), 2),
    failed: median(rs.map((x) => x.failed)),
    failedAfter1s: median(rs.map((x) => x.failedAfter)),
    perRound: rs.map((x) => ({ badSharePercentAfter1s: round(x.badShareAfter * 100, 2), failed: x.failed })),
  };
});

const headline = { badSharePercentAfter1s: Object.fromEntries(results.map((x) => [x.id, x.badSharePercentAfter1s])) };
const markdown = [
  markdownTable(
    ["client", "requests to the 503 backend after 1 s", "worst round", "failed calls", "failed after 1 s"],
    results.map((x) => [
      x.id === "dialtone-outlier" ? `**${x.label}**` : x.label,
      `${x.badSharePercentAfter1s} %`,
      `${x.worstBadSharePercentAfter1s} %`,
      x.failed,
      x.failedAfter1s,
    ]),
  ),
  "",
  `${RATE} req/s open-loop for ${DURATION_MS / 1000} s per client and round (POST 64 B, deadline ${TIMEOUT_MS} ms), fresh backends every run; 127.0.0.2 answers 503 to every request from the start of the load (PINGs fine). Share counted by the backends themselves; medians of ${ROUNDS} rounds. No client here retries a 503.`,
].join("\n");

writeReport({
  file: {
    scenario: "appfail",
    title: "Scenario 10 — application failure: outlier ejection",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: { rate: RATE, durationMs: DURATION_MS, afterMs: AFTER_MS, timeoutMs: TIMEOUT_MS, rounds: ROUNDS },
    headline,
    results,
  },
  markdown,
});

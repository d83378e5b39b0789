/**
 * Scenario 5: a DNS move. A real dnsmasq on 127.0.0.1 answers svc.bench with
 * {127.0.0.2, 127.0.0.3} (TTL 1 s); under open-loop load the records change
 * to {127.0.0.4, 127.0.0.5} while the old backends keep serving. Per client:
 * time until a new address carries traffic, time until the old ones carry
 * none (from x-backend), and errors.
 */
import { CHART_CONFIG, renderSvg } from "./lib/chart.js";
import { withClient } from "./lib/client-run.js";
import { startBackends, stopAll } from "./lib/backends.js";
import { startDnsmasq } from "./lib/dnsmasq.js";
import { machine } from "./lib/machine.js";
import { openLoop, type OpenLoopResult } from "./lib/openloop.js";
import { dialtoneDnsPeer } from "./lib/peers/dialtone-dns.js";
import type { Peer } from "./lib/peers/types.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, roundsFromEnv } from "./lib/rounds.js";
import { byWindow, median, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const NAME = "svc.bench";
const OLD = ["127.0.0.2", "127.0.0.3"];
const NEW = ["127.0.0.4", "127.0.0.5"];
const TTL_S = 1;
const RATE = 200;
const TIMEOUT_MS = 2000;
const WINDOW_MS = 250;
const AT = { move: 1500, end: 6500 };
const ROUNDS = roundsFromEnv(3);
const hostsLines = (ips: string[]): string[] => ips.map((ip) => `${ip} ${NAME}`);

interface RunResult {
  errors: number;
  /** First success answered by a new address, completion time minus the move, s (NaN: none). */
  firstNewS: number;
  /** Last success answered by an old address, completion time minus the move, s (0: none after the move). */
  lastOldS: number;
  maxSendLagMs: number;
  /** Share of successes answered by a new address, per window. */
  newShareByWindow: number[];
}

function analyze({ samples, faults, maxSendLagMs }: OpenLoopResult, oldKeys: Set<string>, newKeys: Set<string>): RunResult {
  const moveAt = faults.move ?? AT.move;
  const ok = samples.filter((s) => s.ok);
  const done = (s: (typeof samples)[number]): number => s.at + s.ms;
  const firstNew = ok.filter((s) => s.backend !== undefined && newKeys.has(s.backend)).reduce((m, s) => Math.min(m, done(s)), Infinity);
  const lastOld = ok.filter((s) => s.backend !== undefined && oldKeys.has(s.backend)).reduce((m, s) => Math.max(m, done(s)), moveAt);
  return {
    errors: samples.length - ok.length,
    firstNewS: Number.isFinite(firstNew) ? round((firstNew - moveAt) / 1000, 2) : Number.NaN,
    lastOldS: round((lastOld - moveAt) / 1000, 2),
    maxSendLagMs: round(maxSendLagMs, 1),
    newShareByWindow: byWindow(ok, (s) => (s.backend !== undefined && newKeys.has(s.backend) ? 1 : 0), WINDOW_MS, AT.end).map((w) =>
      w.length ? w.reduce((a, b) => a + b, 0) / w.length : Number.NaN,
    ),
  };
}

const t0 = performance.now();
const host = machine();
const backends = await startBackends([...OLD, ...NEW]);
const dns = await startDnsmasq(hostsLines(OLD), TTL_S);
const port = (backends[0] as (typeof backends)[number]).port;
const oldKeys = new Set(OLD.map((h) => `${h}:${port}`));
const newKeys = new Set(NEW.map((h) => `${h}:${port}`));
// grpc-js asks the authority of a dns:// target only with its alternative resolver, chosen when it loads.
process.env.GRPC_NODE_USE_ALTERNATIVE_RESOLVER = "true";
const { grpcJsPeer } = await import("./lib/peers/grpcjs.js");
const PEERS: Peer[] = [
  dialtoneDnsPeer(NAME, dns.server, OLD.length),
  grpcJsPeer(false, { id: "grpc-js", label: "grpc-js round_robin (dns://)", target: (t) => `dns://${dns.server}/${NAME}:${t.port}` }),
];
const runs = new Map<string, RunResult[]>();
try {
  const target = { hosts: OLD, port, timeoutMs: TIMEOUT_MS };
  const body = new Uint8Array(64);
  for (let r = 0; r < ROUNDS; r++) {
    for (const peer of orderFor(r, PEERS)) {
      await dns.setHosts(hostsLines(OLD));
      // Let dnsmasq re-read and the previous answer's TTL run out.
      await new Promise((res) => setTimeout(res, TTL_S * 1000 + 100));
      const res = await withClient(peer, target, (client) =>
        openLoop({
          rate: RATE,
          durationMs: AT.end,
          timeoutMs: TIMEOUT_MS,
          call: () => client.call(body),
          faults: [{ atMs: AT.move, name: "move", run: () => void dns.setHosts(hostsLines(NEW)) }],
        }),
      );
      const run = analyze(res, oldKeys, newKeys);
      runs.set(peer.id, [...(runs.get(peer.id) ?? []), run]);
      console.log(`round ${r + 1}/${ROUNDS} ${peer.label.padEnd(30)} first new ${run.firstNewS} s, last old ${run.lastOldS} s, errors ${run.errors}`);
    }
  }
} finally {
  await dns.stop();
  await stopAll(backends);
}

const afterMoveS = (AT.end - AT.move) / 1000;
const windows = Math.ceil(AT.end / WINDOW_MS);
const results = PEERS.map((peer) => {
  const rs = runs.get(peer.id) ?? [];
  const m = (f: (x: RunResult) => number): number => median(rs.map(f));
  // A run that never reached a new address counts as the whole observed time after the move.
  const firstNew = m((x) => (Number.isFinite(x.firstNewS) ? x.firstNewS : Infinity));
  const lastOld = m((x) => x.lastOldS);
  return {
    id: peer.id,
    label: peer.label,
    requests: Math.floor((RATE * AT.end) / 1000),
    errors: m((x) => x.errors),
    /** null: no new address carried traffic within the run in most rounds. */
    firstNewS: Number.isFinite(firstNew) ? round(firstNew, 2) : null,
    lastOldS: round(lastOld, 2),
    /** True when the old addresses still answered at (within one window of) the end of the run. */
    oldUntilEnd: lastOld >= afterMoveS - WINDOW_MS / 1000,
    perRound: rs.map((x) => ({
      firstNewS: Number.isFinite(x.firstNewS) ? x.firstNewS : null,
      lastOldS: x.lastOldS,
      errors: x.errors,
      maxSendLagMs: x.maxSendLagMs,
    })),
    newShareByWindow: Array.from({ length: windows }, (_, w) => round(median(rs.map((x) => x.newShareByWindow[w] ?? Number.NaN).filter(Number.isFinite)), 3)),
  };
});

const dt = results.find((x) => x.id === "dialtone");
const headline = {
  dialtoneFirstNewS: dt?.firstNewS ?? null,
  dialtoneLastOldS: dt?.lastOldS ?? null,
  dialtoneErrors: dt?.errors ?? null,
  firstNewS: Object.fromEntries(results.map((x) => [x.id, x.firstNewS])),
  lastOldS: Object.fromEntries(results.map((x) => [x.id, x.oldUntilEnd ? null : x.lastOldS])),
  errors: Object.fromEntries(results.map((x) => [x.id, x.errors])),
};

const markdown = [
  markdownTable(
    ["client", "first call on a new address", "last call on an old address", "in each round (new / old)", "errors"],
    results.map((x) => [
      x.id === "dialtone" ? `**${x.label}**` : x.label,
      x.firstNewS === null ? `none within ${afterMoveS} s` : `${x.firstNewS} s`,
      x.oldUntilEnd ? `still at the end (${afterMoveS} s)` : `${x.lastOldS} s`,
      x.perRound.map((p) => `${p.firstNewS ?? "–"} / ${p.lastOldS}`).join(", "),
      x.errors,
    ]),
  ),
  "",
  `${RATE} req/s open-loop for ${AT.end / 1000} s (64 B, deadline ${TIMEOUT_MS} ms) per client; at ${AT.move / 1000} s the records of ${NAME} change from {${OLD.join(", ")}} to {${NEW.join(", ")}} (TTL ${TTL_S} s); the old backends keep serving. Times are from the change to the response, per the x-backend header. Medians of ${ROUNDS} rounds.`,
].join("\n");

const svg = await renderSvg({
  $schema: "https://vega.github.io/schema/vega-lite/v5.json",
  title: `Share of calls answered by the new addresses per ${WINDOW_MS} ms window (median of rounds)`,
  config: CHART_CONFIG,
  width: 620,
  height: 240,
  layer: [
    {
      data: { values: [{ t: AT.move / 1000, what: "records change" }] },
      layer: [
        { mark: { type: "rule", strokeDash: [4, 4], color: "#888" }, encoding: { x: { field: "t", type: "quantitative" } } },
        { mark: { type: "text", align: "left", dx: 3, y: 8, color: "#555" }, encoding: { x: { field: "t", type: "quantitative" }, text: { field: "what" } } },
      ],
    },
    {
      data: {
        values: results.flatMap((x) =>
          x.newShareByWindow.map((share, w) => ({ t: (w * WINDOW_MS) / 1000, share: Number.isFinite(share) ? share : null, client: x.label })),
        ),
      },
      mark: { type: "line", interpolate: "step-after" },
      encoding: {
        x: { field: "t", type: "quantitative", title: "seconds", scale: { domain: [0, AT.end / 1000] } },
        y: { field: "share", type: "quantitative", title: "share on new addresses", axis: { format: "%" }, scale: { domain: [0, 1] } },
        color: { field: "client", type: "nominal", sort: PEERS.map((p) => p.label), title: null, legend: { orient: "bottom", labelLimit: 400 } },
        strokeWidth: { condition: { test: "datum.client === 'dialtone'", value: 3 }, value: 1.3 },
      },
    },
  ],
});

writeReport({
  file: {
    scenario: "dns",
    title: "Scenario 5 — DNS move",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: {
      name: NAME,
      oldAddresses: OLD,
      newAddresses: NEW,
      ttlSeconds: TTL_S,
      rate: RATE,
      durationMs: AT.end,
      moveAtMs: AT.move,
      timeoutMs: TIMEOUT_MS,
      windowMs: WINDOW_MS,
      bodyBytes: 64,
      rounds: ROUNDS,
    },
    headline,
    results,
  },
  markdown,
  svg,
});

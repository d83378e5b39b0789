/**
 * NATS stale interest (issue 17): a 3-node cluster; the requester and 2
 * responders all on dialtone channels over all three servers (the
 * responders' queue subscriptions each live on one member's server). One
 * server is SIGKILLed at 3 s and another SIGSTOPped at 6 s; 200 idempotent
 * requests/s. The cluster keeps routing some requests to the frozen
 * server's stale queue subscriptions long after, and no client can stop
 * that: it can only ask again — but only if the frozen server held one of
 * the responders' queue subscriptions when it froze (nats-server picks a
 * queue subscriber among its local ones and the routes' at random, for a
 * message from a client; a stale route entry is only there if the frozen
 * server had interest). Where the subscriptions sit is a random pick, so the
 * server SIGSTOPped is the live one holding the most of them: every round
 * then has the stale interest, instead of about half. Requesters: dialtone without and with
 * `attemptTimeout`, and the official client (one connection). Counted:
 * failures among requests started after the health deadline (SIGSTOP +
 * 2.5 s), and extra requests the requester sent (dialtone's request events:
 * hedges + retries, ÷ calls; the official client sends none). The
 * responders cannot count them: requests routed to the frozen server never
 * reach them.
 */
import { createNatsChannel, type NatsChannel } from "../dist/index.js";
import { connect } from "@nats-io/transport-node";
import { machine } from "./lib/machine.js";
import { startNatsCluster, type NatsNode } from "./lib/nats-cluster.js";
import { openLoop } from "./lib/openloop.js";
import { elapsed, writeReport } from "./lib/results.js";
import { orderFor, roundsFromEnv, sleep } from "./lib/rounds.js";
import { median, round } from "./lib/stats.js";
import { markdownTable } from "./lib/table.js";

const SUBJECT = "echo";
const RATE = 200;
const TIMEOUT_MS = 1000;
const ATTEMPT_MS = 100;
const AT = { kill: 3000, stop: 6000, end: 12_000 };
/** dialtone's health defaults: a frozen server's members are unhealthy at most 2.5 s after their last PONG. */
const HEALTH_DEADLINE_MS = 2500;
const ROUNDS = roundsFromEnv(2);

interface Requester {
  id: string;
  label: string;
  open(nodes: NatsNode[]): Promise<{ call(body: Uint8Array): Promise<string | undefined>; extra(): number; close(): Promise<void> }>;
}

const target = (nodes: NatsNode[]): string => `nats://${nodes.map((n) => n.key).join(",")}`;

function dialtoneRequester(id: string, label: string, attemptTimeout: number | undefined): Requester {
  return {
    id,
    label,
    async open(nodes) {
      const ch = createNatsChannel({
        target: target(nodes),
        members: 3,
        ignoreDiscoveredServers: true,
        requestTimeout: TIMEOUT_MS,
        ...(attemptTimeout ? { attemptTimeout } : {}),
      });
      await ch.ready(AbortSignal.timeout(10_000));
      let extra = 0;
      ch.on((e) => {
        if (e.type === "request") extra += e.hedges + e.retries;
      });
      return {
        call: async (body) => (await ch.request(SUBJECT, body, { timeout: TIMEOUT_MS, idempotent: true })).string(),
        extra: () => extra,
        close: () => ch.close(),
      };
    },
  };
}

const REQUESTERS: Requester[] = [
  dialtoneRequester("dialtone", "dialtone", undefined),
  dialtoneRequester("dialtone-attempt", `dialtone, attemptTimeout ${ATTEMPT_MS} ms`, ATTEMPT_MS),
  {
    id: "nats-js",
    label: "nats.js, 1 connection, defaults",
    async open(nodes) {
      const nc = await connect({ servers: nodes.map((n) => n.key), timeout: 10_000 });
      return { call: async (body) => (await nc.request(SUBJECT, body, { timeout: TIMEOUT_MS })).string(), extra: () => 0, close: () => nc.close() };
    },
  },
];

/** Two responders, each a dialtone channel over all three servers, answering in queue group "workers"; `where()`: the servers their subscriptions live on now. */
async function startResponders(nodes: NatsNode[]): Promise<{ where(): (string | undefined)[]; stop(): Promise<void> }> {
  const channels: NatsChannel[] = [];
  const subs: { address: string | undefined }[] = [];
  for (let i = 0; i < 2; i++) {
    const ch = createNatsChannel({ target: target(nodes), members: 3, ignoreDiscoveredServers: true });
    await ch.ready(AbortSignal.timeout(10_000));
    channels.push(ch);
    const sub = await ch.subscribe(SUBJECT, { queue: "workers" });
    subs.push(sub);
    void (async () => {
      for await (const m of sub) m.respond(`responder${i}`);
    })().catch(() => {});
  }
  return { where: () => subs.map((x) => x.address), stop: async () => void (await Promise.all(channels.map((c) => c.close().catch(() => {})))) };
}

interface RunResult {
  failed: number;
  afterDeadline: number;
  failedAfterDeadline: number;
  extra: number;
  /** Responder subscriptions on the server that was frozen, when it froze. */
  subsOnFrozen: number;
}

const t0 = performance.now();
const host = machine();
const runs = new Map<string, RunResult[]>();
for (let r = 0; r < ROUNDS; r++) {
  for (const req of orderFor(r, REQUESTERS)) {
    const cluster = await startNatsCluster();
    try {
      const responders = await startResponders(cluster.nodes);
      const client = await req.open(cluster.nodes);
      try {
        const body = new Uint8Array(16);
        for (let i = 0; i < 20; i++) await client.call(body);
        await sleep(200);
        const before = client.extra();
        const [killed] = cluster.nodes as [NatsNode, NatsNode, NatsNode];
        // Chosen at SIGSTOP time (after the subscriptions on the killed server moved): the live server holding the most.
        let frozen = cluster.nodes[1] as NatsNode;
        let placement = "";
        let subsOnFrozen = 0;
        const freeze = (): void => {
          const where = responders.where();
          const live = cluster.nodes.filter((n) => n !== killed);
          const count = (n: NatsNode): number => where.filter((a) => a === n.key).length;
          frozen = live.reduce((a, b) => (count(b) > count(a) ? b : a));
          subsOnFrozen = count(frozen);
          placement = `${count(frozen)} of ${where.length} subscriptions on the frozen server`;
          frozen.freeze();
        };
        const res = await openLoop({
          rate: RATE,
          durationMs: AT.end,
          timeoutMs: TIMEOUT_MS,
          call: () => client.call(body),
          faults: [
            { atMs: AT.kill, name: "kill", run: () => void killed.kill() },
            { atMs: AT.stop, name: "stop", run: freeze },
          ],
        });
        const deadline = (res.faults.stop ?? AT.stop) + HEALTH_DEADLINE_MS;
        const after = res.samples.filter((s) => s.at >= deadline);
        const run: RunResult = {
          failed: res.samples.filter((s) => !s.ok).length,
          afterDeadline: after.length,
          failedAfterDeadline: after.filter((s) => !s.ok).length,
          extra: (client.extra() - before) / res.samples.length,
          subsOnFrozen,
        };
        frozen.thaw();
        runs.set(req.id, [...(runs.get(req.id) ?? []), run]);
        console.log(
          `round ${r + 1}/${ROUNDS} ${req.label.padEnd(34)} failed ${run.failed}, after the health deadline ${run.failedAfterDeadline} of ${run.afterDeadline} (${((run.failedAfterDeadline / run.afterDeadline) * 100).toFixed(1)} %), extra requests ${(run.extra * 100).toFixed(1)} % (${placement})`,
        );
      } finally {
        await Promise.race([client.close().catch(() => {}), sleep(3000)]);
        await Promise.race([responders.stop(), sleep(3000)]);
      }
    } finally {
      await cluster.stop();
    }
  }
}

const results = REQUESTERS.map((req) => {
  const rs = runs.get(req.id) ?? [];
  const pct = (x: RunResult): number => (x.failedAfterDeadline / Math.max(1, x.afterDeadline)) * 100;
  return {
    id: req.id,
    label: req.label,
    failed: median(rs.map((x) => x.failed)),
    failedPercentAfterDeadline: round(median(rs.map(pct)), 2),
    worstFailedPercentAfterDeadline: round(Math.max(...rs.map(pct)), 2),
    extraPercent: round(median(rs.map((x) => x.extra * 100)), 1),
    perRound: rs.map((x) => ({
      failed: x.failed,
      failedPercentAfterDeadline: round(pct(x), 2),
      extraPercent: round(x.extra * 100, 1),
      subsOnFrozen: x.subsOnFrozen,
    })),
  };
});

writeReport({
  file: {
    scenario: "nats-stale",
    title: "Scenario 11 — NATS stale interest: asking again",
    generatedAt: new Date().toISOString(),
    durationSeconds: elapsed(t0),
    machine: host,
    config: { rate: RATE, timeoutMs: TIMEOUT_MS, attemptTimeoutMs: ATTEMPT_MS, faultsAtMs: AT, healthDeadlineMs: HEALTH_DEADLINE_MS, rounds: ROUNDS },
    headline: {
      failedPercentAfterDeadline: Object.fromEntries(results.map((x) => [x.id, x.failedPercentAfterDeadline])),
      extraPercent: Object.fromEntries(results.map((x) => [x.id, x.extraPercent])),
    },
    results,
  },
  markdown: [
    markdownTable(
      ["requester", "failed calls", "failed after the health deadline", "worst round", "extra requests"],
      results.map((x) => [
        x.id === "dialtone-attempt" ? `**${x.label}**` : x.label,
        x.failed,
        `${x.failedPercentAfterDeadline} %`,
        `${x.worstFailedPercentAfterDeadline} %`,
        `${x.extraPercent} %`,
      ]),
    ),
    "",
    `${RATE} idempotent requests/s open-loop for ${AT.end / 1000} s (deadline ${TIMEOUT_MS} ms) per requester and round, a fresh 3-node cluster each run; 2 responders, each a dialtone channel over all three servers (queue group "workers"); SIGKILL of node 1 at ${AT.kill / 1000} s, SIGSTOP at ${AT.stop / 1000} s (not resumed) of the live node holding the most responder subscriptions, so that every round has stale interest. "After the health deadline": requests due from SIGSTOP + ${HEALTH_DEADLINE_MS / 1000} s on. Extra requests: hedges and retries the requester sent ÷ calls (from dialtone's request events; nats.js sends none). dialtone's default retry budget (20 % of calls + 10/s) bounds them. Medians of ${ROUNDS} rounds.`,
  ].join("\n"),
});

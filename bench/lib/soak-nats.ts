/**
 * The NATS soak target: a channel of 3 members over 4 nats-server nodes
 * (127.0.0.2–5) of a 5-node cluster; requests on "echo" are answered by two
 * responders (queue group "workers") on the fifth node (127.0.0.6), which
 * holds no member and takes no fault. Every other request is marked
 * idempotent (the channel's default hedge may ask it again elsewhere).
 * Faults, in turn, on a node that holds a member: SIGKILL then a restart 2 s
 * later, SIGSTOP for 3 s, and lame duck mode (the server closes its clients
 * over 30 s and exits; it is restarted once it has).
 *
 * Why the responders live apart: for a message from a client, nats-server
 * 2.9 picks a queue subscriber at random among its own and the other
 * servers' — it does not prefer its local one — so with a responder on every
 * node a quarter of all requests, whichever member sent them, go to a frozen
 * node's responder and time out (measured: 55 a freeze, nearly all on
 * members whose own server was fine). That is the responders' outage, not
 * the client's; here the soak measures the client's. The same layout made
 * the "timeout nothing explains" of earlier runs (about one a run): a
 * lame-duck server closes its clients, the responder on it among them, and a
 * request another server had routed to that responder a moment before is
 * lost (reproduced with a responder that answers after 50 ms: the requests
 * it held timed out on members of other servers; the soak's responder
 * answers at once, so its window is one round trip wide).
 * `DIALTONE_SOAK_NATS_LAYOUT=every-node` puts one responder on each member
 * node as before, to see both.
 *
 * The run's journal (soak-nats-journal.ts) is written to
 * bench/results/soak-nats-journal.json: every failure classified by the
 * fault that explains it, the events around any that none does, and per
 * freeze, how soon the frozen node's member left rotation.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createNatsChannel, type NatsChannel } from "../../dist/index.js";
import { startNatsCluster, type NatsCluster, type NatsNode } from "./nats-cluster.js";
import { SoakJournal } from "./soak-nats-journal.js";
import type { SoakTarget } from "./soak-loop.js";

const LAYOUT = process.env.DIALTONE_SOAK_NATS_LAYOUT === "every-node" ? "every-node" : "apart";
const MEMBER_HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
const RESPONDER_HOST = "127.0.0.6";
const HOSTS = LAYOUT === "apart" ? [...MEMBER_HOSTS, RESPONDER_HOST] : MEMBER_HOSTS;
const JOURNAL = fileURLToPath(new URL("../results/soak-nats-journal.json", import.meta.url));
const SUBJECT = "echo";
const FREEZE_MS = 3000;
const RESTART_AFTER_MS = 2000;
/** lame_duck_duration is 30 s in the cluster's config; the exit comes after it. */
const LAME_DUCK_EXIT_LIMIT_MS = 40_000;

export interface NatsSoak {
  target: SoakTarget;
  config: Record<string, unknown>;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A responder on one node that reconnects to that node only (after a kill or lame duck it comes back with it). */
async function responder(node: NatsNode): Promise<NatsConnection> {
  const nc = await connect({ servers: node.key, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 2000, ignoreClusterUpdates: true });
  const sub = nc.subscribe(SUBJECT, { queue: "workers" });
  void (async () => {
    for await (const m of sub) m.respond(node.key);
  })().catch(() => {});
  await nc.flush();
  return nc;
}

export async function openNatsSoak(timeoutMs: number): Promise<NatsSoak> {
  const cluster: NatsCluster = await startNatsCluster({ hosts: HOSTS });
  const memberNodes = cluster.nodes.filter((n) => MEMBER_HOSTS.includes(n.host));
  const journal = new SoakJournal();
  const responders: NatsConnection[] = [];
  let channel: NatsChannel | undefined;
  // A fault still restarting when the soak ends must not start a server after close().
  let closed = false;
  const running = new Set<Promise<void>>();
  const closeAll = async (): Promise<void> => {
    closed = true;
    await Promise.allSettled([...running]);
    await channel?.close();
    await Promise.all(responders.map((nc) => nc.close().catch(() => {})));
    await cluster.stop();
    const report = journal.report(timeoutMs);
    writeFileSync(JOURNAL, `${JSON.stringify({ layout: LAYOUT, ...(report as object), faults: journal.faults }, null, 1)}\n`);
  };
  try {
    if (LAYOUT === "apart") {
      const home = cluster.nodes.find((n) => n.host === RESPONDER_HOST) as NatsNode;
      for (let i = 0; i < 2; i++) responders.push(await responder(home));
    } else {
      for (const n of memberNodes) responders.push(await responder(n));
    }
    const ch = createNatsChannel({
      target: `nats://${memberNodes.map((n) => n.key).join(",")}`,
      members: 3,
      ignoreDiscoveredServers: true,
      requestTimeout: timeoutMs,
    });
    channel = ch;
    ch.on(journal.onEvent);
    await ch.ready(AbortSignal.timeout(10_000));
    let turn = 0;
    let calls = 0;
    const busy = new Set<NatsNode>();
    /** A node that holds a member and is not already under a fault, taken in turn. */
    const victim = (): NatsNode => {
      const on = new Set(
        ch
          .stats()
          .members.filter((m) => m.state === "ready")
          .map((m) => m.address),
      );
      const candidates = memberNodes.filter((n) => on.has(n.key) && !busy.has(n));
      const pool = candidates.length > 0 ? candidates : memberNodes.filter((n) => !busy.has(n));
      return pool[turn++ % Math.max(1, pool.length)] ?? (memberNodes[0] as NatsNode);
    };
    const withVictim = (kind: string, fn: (n: NatsNode) => Promise<void>): Promise<void> => {
      const n = victim();
      busy.add(n);
      const record = journal.fault(kind, n.key);
      const p = fn(n).finally(() => {
        record.end = journal.now();
        busy.delete(n);
        running.delete(p);
      });
      running.add(p);
      return p;
    };
    const target: SoakTarget = {
      call: async () => {
        // Every other request is marked idempotent: its failures are counted apart (code + " idempotent").
        const idempotent = (calls++ & 1) === 1;
        const start = journal.now();
        try {
          await ch.request(SUBJECT, "soak", { timeout: timeoutMs, idempotent });
        } catch (err) {
          const e = err as { code?: string; address?: string };
          const code = e.code ?? "Error";
          journal.failed(start, code, e.address, idempotent);
          throw idempotent ? Object.assign(new Error(`${code} (idempotent)`), { code: `${code} (idempotent)` }) : err;
        }
      },
      faults: [
        {
          kind: "kill",
          cuts: true,
          windowMs: 100,
          run: () =>
            withVictim("kill", async (n) => {
              await n.kill();
              await sleep(RESTART_AFTER_MS);
              if (!closed) await n.restart();
            }),
        },
        {
          kind: "freeze",
          cuts: true,
          windowMs: FREEZE_MS,
          run: () =>
            withVictim("freeze", async (n) => {
              n.freeze();
              await sleep(FREEZE_MS);
              n.thaw();
            }),
        },
        {
          kind: "lame-duck",
          cuts: false,
          windowMs: 0,
          run: () =>
            withVictim("lame-duck", async (n) => {
              n.lameDuck();
              const deadline = performance.now() + LAME_DUCK_EXIT_LIMIT_MS;
              // It closes its clients over lame_duck_duration, then exits; restart() is a no-op before that.
              while (!closed && performance.now() < deadline && alive(n)) await sleep(500);
              await n.kill();
              if (!closed) await n.restart();
            }),
        },
      ],
    };
    return {
      target,
      config: {
        servers: HOSTS.length,
        members: 3,
        responders: LAYOUT === "apart" ? "two, queue group, on a fifth node that holds no member and takes no fault" : "one per member node, queue group",
        idempotentShare: 0.5,
        freezeMs: FREEZE_MS,
        restartAfterMs: RESTART_AFTER_MS,
        lameDuck: "30 s lame_duck_duration, restarted after exit",
        journal: "bench/results/soak-nats-journal.json",
      },
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** Whether the node's process still exists (signal 0 checks without sending anything). */
function alive(n: NatsNode): boolean {
  try {
    process.kill(n.pid, 0);
    return true;
  } catch {
    return false;
  }
}

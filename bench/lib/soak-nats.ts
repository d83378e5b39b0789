/**
 * The NATS soak target: a channel of 3 members over a 4-node nats-server
 * cluster (127.0.0.2–5), requests on "echo" answered by one responder per
 * node (queue group "workers": a server prefers its local subscriber, so a
 * request is answered on the node its member is on). Faults, in turn, on a
 * node that holds a member: SIGKILL then a restart 2 s later, SIGSTOP for
 * 3 s, and lame duck mode (the server closes its clients over 30 s and
 * exits; it is restarted once it has).
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createNatsChannel, type NatsChannel } from "../../dist/index.js";
import { startNatsCluster, type NatsCluster, type NatsNode } from "./nats-cluster.js";
import type { SoakTarget } from "./soak-loop.js";

const HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];
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

/** A responder per node that reconnects to that node only (after a kill or lame duck it comes back with it). */
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
  };
  try {
    for (const n of cluster.nodes) responders.push(await responder(n));
    const ch = createNatsChannel({
      target: `nats://${cluster.nodes.map((n) => n.key).join(",")}`,
      members: 3,
      ignoreDiscoveredServers: true,
      requestTimeout: timeoutMs,
    });
    channel = ch;
    await ch.ready(AbortSignal.timeout(10_000));
    let turn = 0;
    const busy = new Set<NatsNode>();
    /** A node that holds a member and is not already under a fault, taken in turn. */
    const victim = (): NatsNode => {
      const on = new Set(ch.stats().members.filter((m) => m.state === "ready").map((m) => m.address));
      const candidates = cluster.nodes.filter((n) => on.has(n.key) && !busy.has(n));
      const pool = candidates.length > 0 ? candidates : cluster.nodes.filter((n) => !busy.has(n));
      return pool[turn++ % Math.max(1, pool.length)] ?? (cluster.nodes[0] as NatsNode);
    };
    const withVictim = (fn: (n: NatsNode) => Promise<void>): Promise<void> => {
      const n = victim();
      busy.add(n);
      const p = fn(n).finally(() => {
        busy.delete(n);
        running.delete(p);
      });
      running.add(p);
      return p;
    };
    const target: SoakTarget = {
      call: async () => {
        await ch.request(SUBJECT, "soak", { timeout: timeoutMs });
      },
      faults: [
        {
          kind: "kill",
          cuts: true,
          windowMs: 100,
          run: () =>
            withVictim(async (n) => {
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
            withVictim(async (n) => {
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
            withVictim(async (n) => {
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
      config: { servers: HOSTS.length, members: 3, responders: "one per node, queue group", freezeMs: FREEZE_MS, restartAfterMs: RESTART_AFTER_MS, lameDuck: "30 s lame_duck_duration, restarted after exit" },
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

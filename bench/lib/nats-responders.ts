/**
 * Plain official-client connections, one per given node, each answering
 * `subject` in queue group "workers" at once with its node's key. They run in
 * the benchmark's own process (as in the tests).
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { NatsNode } from "./nats-cluster.js";

export interface Responders {
  /** Closes the responders on these nodes (all when omitted). */
  stop(nodes?: NatsNode[]): Promise<void>;
}

export async function startResponders(nodes: NatsNode[], subject = "echo"): Promise<Responders> {
  const conns = new Map<string, NatsConnection>();
  for (const n of nodes) {
    const nc = await connect({ servers: n.key, reconnect: false, timeout: 2000 });
    conns.set(n.key, nc);
    const sub = nc.subscribe(subject, { queue: "workers" });
    void (async () => {
      for await (const m of sub) m.respond(n.key);
    })().catch(() => {});
    await nc.flush();
  }
  return {
    async stop(which = nodes) {
      await Promise.all(
        which.map(async (n) => {
          const nc = conns.get(n.key);
          conns.delete(n.key);
          await nc?.close().catch(() => {});
        }),
      );
    },
  };
}

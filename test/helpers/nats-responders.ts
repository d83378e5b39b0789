import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { NatsNode } from "./nats-cluster.js";

/**
 * Plain official-client connections, one per node, each answering `subject`
 * in queue group "workers" with "<node key>|<payload>" after `delayMs`. NATS
 * prefers a queue subscriber on the publisher's own server, so every live
 * node answers its own clients.
 */
export async function startResponders(
  nodes: NatsNode[],
  subject = "echo",
  opts: { delayMs?: number; user?: string; pass?: string } = {},
): Promise<{ stop(): Promise<void> }> {
  const conns: NatsConnection[] = [];
  for (const n of nodes) {
    const nc = await connect({ servers: n.key, reconnect: false, user: opts.user, pass: opts.pass });
    conns.push(nc);
    const sub = nc.subscribe(subject, { queue: "workers" });
    void (async () => {
      for await (const m of sub) {
        const reply = `${n.key}|${m.string()}`;
        if (opts.delayMs) setTimeout(() => m.respond(reply), opts.delayMs);
        else m.respond(reply);
      }
    })().catch(() => {});
    await nc.flush();
  }
  return {
    async stop() {
      await Promise.all(conns.map((c) => c.close().catch(() => {})));
    },
  };
}

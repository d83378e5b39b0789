import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { NatsNode } from "./nats-cluster.js";

/**
 * Plain official-client connections, one per node, each answering `subject`
 * in queue group "workers" with "<node key>|<payload>" after `delayMs`. A
 * request may be answered by any node's responder: nats-server (2.9) does not
 * prefer a queue subscriber on the publisher's own server for a client's
 * message, so tests must not assume which node answers.
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

/**
 * The NATS clients compared in the NATS scenario: dialtone's channel (one
 * member per server) and the official client with one connection, with its
 * defaults and tuned. Each call is one request on "echo" with the scenario's
 * deadline; it resolves with the replying responder's node key.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createNatsChannel } from "../../dist/index.js";
import type { NatsNode } from "./nats-cluster.js";

export const SUBJECT = "echo";

export interface NatsBenchClient {
  /** `idempotent`: dialtone marks the request so (its default hedge may ask again elsewhere); the official client has no such notion. */
  call(body: Uint8Array, idempotent?: boolean): Promise<string | undefined>;
  /**
   * dialtone only: starts noting where each request not marked idempotent was
   * placed (its member's address, and when it started, from the channel's
   * request events); `stop()` returns them. Not during the rate run: a
   * listener makes every call build its request event.
   */
  placements?(): { stop(): Array<{ address: string; start: number }> };
  /** The server_name ("node1") of the server a single-connection client is on now; undefined for dialtone. */
  server(): string | undefined;
  close(): Promise<void>;
}

export interface NatsPeer {
  id: string;
  label: string;
  /** Connects and waits until ready (no requests yet: responders may not exist). */
  open(nodes: NatsNode[], timeoutMs: number): Promise<NatsBenchClient>;
}

const CONNECT_TIMEOUT_MS = 10_000;

/** dialtone's NATS channel with its defaults, or with the other balancer (to show what the default costs or saves). */
function dialtoneNatsPeer(balancer?: "in-flight"): NatsPeer {
  return {
    id: balancer ? `dialtone-${balancer}` : "dialtone",
    label: balancer ? `dialtone (${balancer})` : "dialtone",
    open: (nodes, timeoutMs) => openDialtone(nodes, timeoutMs, balancer),
  };
}

export const dialtoneNats: NatsPeer = dialtoneNatsPeer();

async function openDialtone(nodes: NatsNode[], timeoutMs: number, balancer: "in-flight" | undefined): Promise<NatsBenchClient> {
  const channel = createNatsChannel({
    target: `nats://${nodes.map((n) => n.key).join(",")}`,
    members: nodes.length,
    ignoreDiscoveredServers: true,
    requestTimeout: timeoutMs,
    ...(balancer ? { balancer } : {}),
  });
  await channel.ready(AbortSignal.timeout(CONNECT_TIMEOUT_MS));
  return {
    call: async (body, idempotent) => (await channel.request(SUBJECT, body, { timeout: timeoutMs, idempotent })).string(),
    server: () => undefined,
    close: () => channel.close(),
    placements() {
      const out: Array<{ address: string; start: number }> = [];
      // One attempt (no hedge, no retry): its address is where the request went; start = end − duration.
      const off = channel.on((e) => {
        if (e.type === "request" && e.address !== undefined && e.hedges === 0 && e.retries === 0)
          out.push({ address: e.address, start: performance.now() - e.durationMs });
      });
      return {
        stop: () => {
          off();
          return out;
        },
      };
    },
  };
}

function officialPeer(id: string, label: string, tuning: { reconnectTimeWait?: number; pingInterval?: number; maxPingOut?: number }): NatsPeer {
  return {
    id,
    label,
    async open(nodes, timeoutMs) {
      const nc: NatsConnection = await connect({ servers: nodes.map((n) => n.key), timeout: CONNECT_TIMEOUT_MS, ...tuning });
      return {
        call: async (body) => (await nc.request(SUBJECT, body, { timeout: timeoutMs })).string(),
        server: () => nc.info?.server_name,
        close: () => nc.close(),
      };
    },
  };
}

export const officialDefault = officialPeer("nats-js", "nats.js, 1 connection, defaults", {});
export const officialTuned = officialPeer("nats-js-tuned", "nats.js, 1 connection, tuned", { reconnectTimeWait: 250, pingInterval: 1000, maxPingOut: 2 });

export const NATS_PEERS: NatsPeer[] = [dialtoneNats, officialDefault, officialTuned, dialtoneNatsPeer("in-flight")];

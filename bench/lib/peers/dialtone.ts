import { Registry } from "prom-client";
import * as built from "../../../dist/index.js";
import type { Balancer, Http2Channel, Http2ChannelOptions } from "../../../dist/index.js";

/** What a peer needs of a dialtone build: this checkout's dist/ unless another build is compared (bench/reqpath). */
export type DialtoneBuild = Pick<typeof built, "createHttp2Channel" | "RequestError">;
import { CallError, ECHO_PATH, HOSTNAME, warmUp, type BenchClient, type Peer, type Target } from "./types.js";

/**
 * dialtone's HTTP/2 channel with its defaults: one member per backend
 * address, PING every 1 s, P2C on peak-EWMA cost. `members` pins the
 * member count instead (the 1-member control variant).
 */
export function dialtonePeer(balancer: Balancer = "peak-ewma", members?: number, metered = false, build: DialtoneBuild = built, buildName = ""): Peer {
  const variant = [
    balancer !== "peak-ewma" ? balancer : "",
    members !== undefined ? `${members} member${members === 1 ? "" : "s"}` : "",
    metered ? "metrics + listener" : "",
    buildName,
  ].filter(Boolean);
  return dialtoneWith(
    ["dialtone", ...variant.map((v) => v.replace(/ /g, "-"))].join("-"),
    variant.length ? `dialtone (${variant.join(", ")})` : "dialtone",
    (t) => ({
      target: `http://${HOSTNAME}:${t.port}`,
      discovery: `static:///${t.hosts.map((h) => `${h}:${t.port}`).join(",")}`,
      members: members ?? t.hosts.length,
      balancer,
    }),
    false,
    metered ? meter : undefined,
    build,
  );
}

/** What a real deployment has on: the channel's metrics on a prom-client registry, and an event listener. */
export function meter(channel: Http2Channel): void {
  channel.metrics(new Registry());
  let seen = 0;
  channel.on(() => void seen++);
}

/**
 * A dialtone channel built from `options(target)`, as a bench client: POST
 * echo, x-backend back; `idempotent` marks the calls so (hedging needs it).
 */
export function dialtoneWith(
  id: string,
  label: string,
  options: (t: Target) => Http2ChannelOptions,
  idempotent = false,
  instrument?: (channel: Http2Channel) => void,
  build: DialtoneBuild = built,
): Peer {
  const { createHttp2Channel, RequestError } = build;
  return {
    id,
    label,
    namesFailedBackend: true,
    protocol: "http2",
    async open(t: Target): Promise<BenchClient> {
      const channel = createHttp2Channel({ ...options(t), requestTimeout: t.timeoutMs });
      instrument?.(channel);
      await channel.ready(AbortSignal.timeout(10_000));
      const client: BenchClient = {
        async call(body) {
          let res;
          try {
            res = await channel.request({ method: "POST", path: ECHO_PATH, body, timeout: t.timeoutMs, idempotent });
          } catch (err) {
            throw new CallError((err as Error).message, err instanceof RequestError ? err.address : undefined, { cause: err });
          }
          if (res.status !== 200) throw new Error(`status ${res.status}`);
          return res.headers["x-backend"] as string | undefined;
        },
        close: () => channel.close(),
      };
      await warmUp(client);
      return client;
    },
  };
}

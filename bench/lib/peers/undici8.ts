import { createDispatcher } from "../../../dist/adapters/undici.js";
import { createHttp2Channel } from "../../../dist/index.js";
import { rotatingLookup } from "./lookup.js";
import { ECHO_PATH, HOSTNAME, warmUp, type BenchClient, type Peer, type Target } from "./types.js";

/*
 * undici 8's fetch (the one Node 26 bundles), installed as the "undici8"
 * alias: over dialtone/undici, and over undici 8's own Pool (h2c), so fetch
 * via dialtone is measured against fetch via undici's own Pool on both
 * undici lines. undici 8 needs Node ≥ 22.19; it is loaded when a peer opens.
 */
type Undici8 = typeof import("undici");
const load = async (): Promise<Undici8> => (await import("undici8")) as unknown as Undici8;

function fetchClient(u: Undici8, dispatcher: unknown, t: Target, close: () => Promise<void>): BenchClient {
  const url = `http://${HOSTNAME}:${t.port}${ECHO_PATH}`;
  return {
    async call(body) {
      const res = await u.fetch(url, { method: "POST", body, dispatcher: dispatcher as never, signal: AbortSignal.timeout(t.timeoutMs) });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      return res.headers.get("x-backend") ?? undefined;
    },
    close,
  };
}

/** undici 8's fetch with a dialtone dispatcher over every backend. */
export const dialtoneFetch8Peer: Peer = {
  id: "dialtone-fetch-undici8",
  label: "undici 8 fetch via dialtone",
  protocol: "http2",
  namesFailedBackend: false,
  async open(t) {
    const u = await load();
    const channel = createHttp2Channel({
      target: `http://${HOSTNAME}:${t.port}`,
      discovery: `static:///${t.hosts.map((h) => `${h}:${t.port}`).join(",")}`,
      members: t.hosts.length,
      requestTimeout: t.timeoutMs,
    });
    await channel.ready(AbortSignal.timeout(10_000));
    const client = fetchClient(u, createDispatcher(channel), t, () => channel.close());
    await warmUp(client);
    return client;
  },
};

/** undici 8's fetch over undici 8's own Pool (h2c, one connection per backend address, handed out round-robin). */
export const undici8FetchPeer: Peer = {
  id: "undici8-pool-fetch",
  label: "undici 8 fetch via undici 8 Pool (h2c)",
  protocol: "http2",
  namesFailedBackend: false,
  async open(t) {
    const u = await load();
    const pool = new u.Pool(`http://${HOSTNAME}:${t.port}`, {
      factory: (origin: URL, opts: object) => new u.H2CClient(origin, opts),
      connections: t.hosts.length,
      connect: { allowH2: true, useH2c: true, lookup: rotatingLookup(t.hosts) } as object,
    });
    const client = fetchClient(u, pool, t, () => pool.destroy());
    await warmUp(client);
    return client;
  },
};

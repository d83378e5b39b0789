import { BalancedPool, H2CClient, Pool, type Dispatcher, type buildConnector } from "undici";
import { rotatingLookup } from "./lookup.js";
import { ECHO_PATH, HOSTNAME, warmUp, type BenchClient, type Peer, type Target } from "./types.js";

/*
 * undici 7 speaks prior-knowledge h2c through H2CClient (allowH2 + useH2c).
 * Pool and BalancedPool take it as their per-origin client factory, but they
 * build the socket connector themselves, so the connector must be told
 * `useH2c` too (undici's own option, missing from its typings); without it
 * the pool speaks HTTP/1.1 to the h2c server. Defaults otherwise: 100
 * streams per connection, a PING every 60 s, no PING timeout.
 */
const h2c = (origin: URL, opts: object): Dispatcher => new H2CClient(origin, opts);

function h2cConnect(extra: buildConnector.BuildOptions = {}): buildConnector.BuildOptions {
  const options: buildConnector.BuildOptions & { useH2c: boolean } = { ...extra, allowH2: true, useH2c: true };
  return options;
}

/**
 * undici treats a POST as non-idempotent unless told otherwise, and an h2
 * connection that is running anything counts as busy for a non-idempotent
 * request: by default POSTs go one at a time per connection, with no
 * multiplexing. `idempotent: true` lifts that (and allows retries).
 */
function wrap(dispatcher: Dispatcher, t: Target, idempotent: boolean | undefined): BenchClient {
  return {
    async call(body) {
      const res = await dispatcher.request({
        path: ECHO_PATH,
        method: "POST",
        body,
        signal: AbortSignal.timeout(t.timeoutMs),
        ...(idempotent === undefined ? {} : { idempotent }),
      });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      return res.headers["x-backend"] as string | undefined;
    },
    close: () => dispatcher.destroy(),
  };
}

/** One Pool for the service name (3 connections at most), addresses handed out round-robin as DNS would. */
export const undiciPoolPeer: Peer = {
  id: "undici-pool",
  label: "undici Pool (h2c)",
  protocol: "http2",
  namesFailedBackend: false,
  async open(t) {
    const pool = new Pool(`http://${HOSTNAME}:${t.port}`, {
      factory: h2c,
      connections: t.hosts.length,
      connect: h2cConnect({ lookup: rotatingLookup(t.hosts) }),
    });
    const client = wrap(pool, t, undefined);
    await warmUp(client);
    return client;
  },
};

/**
 * BalancedPool over one upstream per address (weighted round-robin that
 * backs off failing upstreams); `idempotent` marks every POST idempotent.
 */
export function undiciBalanced(idempotent = false): Peer {
  return {
    id: idempotent ? "undici-balanced-idempotent" : "undici-balanced",
    label: idempotent ? "undici BalancedPool (h2c, idempotent)" : "undici BalancedPool (h2c)",
    protocol: "http2",
    namesFailedBackend: false,
    async open(t) {
      const pool = new BalancedPool(
        t.hosts.map((h) => `http://${h}:${t.port}`),
        { factory: h2c, connect: h2cConnect() },
      );
      const client = wrap(pool, t, idempotent ? true : undefined);
      await warmUp(client);
      return client;
    },
  };
}

/**
 * Node's global fetch over the same undici Pool (h2c): the control for
 * "fetch via dialtone", so the cost of fetch itself (WHATWG streams, Response
 * objects) shows apart from the dispatcher under it.
 */
export const undiciFetchPeer: Peer = {
  id: "undici-pool-fetch",
  label: "fetch via undici Pool (h2c)",
  protocol: "http2",
  namesFailedBackend: false,
  async open(t) {
    const pool = new Pool(`http://${HOSTNAME}:${t.port}`, {
      factory: h2c,
      connections: t.hosts.length,
      connect: h2cConnect({ lookup: rotatingLookup(t.hosts) }),
    });
    const url = `http://${HOSTNAME}:${t.port}${ECHO_PATH}`;
    const client: BenchClient = {
      async call(body) {
        const res = await fetch(url, { method: "POST", body, dispatcher: pool, signal: AbortSignal.timeout(t.timeoutMs) } as unknown as RequestInit);
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        return res.headers.get("x-backend") ?? undefined;
      },
      close: () => pool.destroy(),
    };
    await warmUp(client);
    return client;
  },
};

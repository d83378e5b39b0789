/**
 * One client of bench/reqpath-instructions in a process of its own, run by
 * that bench under callgrind (bundled to plain JavaScript first: a loader
 * under valgrind would take a minute to start). Its own backend processes
 * run outside valgrind. It warms the client up, has callgrind zero its
 * counters (`callgrind_control -z`, on this very process), sends exactly
 * `n` requests at the cell's concurrency, and has callgrind dump the
 * counts: the dump holds only those requests' instructions.
 *
 * argv: client id, n, concurrency, body bytes; WARM_REQUESTS in the environment.
 */
import { execFileSync } from "node:child_process";
import { loopbackHosts, startBackends, stopAll } from "./backends.js";
import type { Clock } from "../../dist/index.js";
import { dialtoneWith, meter } from "./peers/dialtone.js";
import { rawPeer, rawSpreadPeer } from "./peers/raw.js";
import { HOSTNAME, type Peer } from "./peers/types.js";

/**
 * Under valgrind a request takes ~50× as long, while dialtone's periodic work
 * (a PING per member every second, the loads' decay) would keep to the
 * wall clock and so weigh ~50× as much per request as at full speed. The
 * channel's clock runs that much slower instead (SLOWDOWN, default 50), so
 * its timers come as often per request as they do outside valgrind.
 */
const SLOWDOWN = Number(process.env.SLOWDOWN ?? 50);
const started = performance.now();
const slowClock: Clock = {
  now: () => started + (performance.now() - started) / SLOWDOWN,
  wall: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.min(2 ** 31 - 1, Math.max(1, ms * SLOWDOWN)));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** bench/reqpath's dialtone clients (dialtonePeer), on the slowed clock. */
function dialtone(id: string, label: string, members: number | undefined, metered = true): Peer {
  return dialtoneWith(
    id,
    label,
    (t) => ({
      target: `http://${HOSTNAME}:${t.port}`,
      discovery: `static:///${t.hosts.map((h) => `${h}:${t.port}`).join(",")}`,
      members: members ?? t.hosts.length,
      clock: slowClock,
    }),
    false,
    metered ? meter : undefined,
  );
}

/** The clients, as bench/reqpath names them; each with the backends it needs. */
export const REQPATH_CHILD_CLIENTS: Record<string, { peer: Peer; backends: number }> = {
  "raw-http2": { peer: rawPeer, backends: 1 },
  "dialtone-1-member": { peer: dialtone("dialtone-1-member", "dialtone (1 member)", 1, false), backends: 1 },
  "dialtone-1-member-metrics-+-listener": { peer: dialtone("dialtone-1-member-metrics-+-listener", "dialtone (1 member, metrics + listener)", 1), backends: 1 },
  "raw-http2-spread": { peer: rawSpreadPeer, backends: 3 },
  "dialtone-metrics-+-listener": { peer: dialtone("dialtone-metrics-+-listener", "dialtone (metrics + listener)", undefined), backends: 3 },
};

async function main(): Promise<void> {
  const [id, n, concurrency, bytes] = [process.argv[2] as string, Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
  const client = REQPATH_CHILD_CLIENTS[id];
  if (!client || !(n > 0 && n % concurrency === 0)) throw new Error(`usage: <client> <n, a multiple of concurrency> <concurrency> <bytes>`);
  const backends = await startBackends(loopbackHosts(client.backends));
  try {
    // Under valgrind everything is ~50× slower: no deadline that a slow but healthy request could reach.
    const c = await client.peer.open({ hosts: backends.map((b) => b.host), port: (backends[0] as (typeof backends)[number]).port, timeoutMs: 600_000 });
    const body = new Uint8Array(bytes);
    const run = (requests: number) =>
      Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let i = 0; i < requests / concurrency; i++) await c.call(body);
        }),
      );
    const warm = Math.ceil(Number(process.env.WARM_REQUESTS ?? 3000) / concurrency) * concurrency;
    await run(warm);
    const callgrind = (flag: string) => execFileSync("callgrind_control", [flag, String(process.pid)], { stdio: "ignore" });
    // Every count starts from the same heap: collected (the bench runs node --expose-gc), then as many
    // requests again as the warm-up, because that full collection drops optimized code whose maps it
    // frees ("weak objects") and V8 recompiles it on the next calls: outside the count.
    (globalThis as { gc?: () => void }).gc?.();
    await run(warm);
    callgrind("-z");
    // Markers for a look at what V8 does inside the count (node --trace-opt --trace-deopt).
    console.log("=== counted requests start ===");
    await run(n);
    console.log("=== counted requests end ===");
    callgrind("-d");
    await c.close();
  } finally {
    await stopAll(backends);
  }
}

if (process.argv[1]?.includes("reqpath-child")) await main();

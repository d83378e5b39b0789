/** Checks that every client reaches every backend over both protocols: a few calls each, no timing. */
import { loopbackHosts, startBackends, stopAll } from "./lib/backends.js";
import { ALL_PEERS } from "./lib/peers/index.js";

const backends = await startBackends(loopbackHosts(3));
try {
  for (const peer of ALL_PEERS) {
    const client = await peer.open({ hosts: backends.map((b) => b.host), port: backends[0]!.port, timeoutMs: 2000 });
    const seen = new Map<string, number>();
    const body = new Uint8Array(64).fill(7);
    for (let i = 0; i < 30; i++) {
      const b = (await client.call(body)) ?? "?";
      seen.set(b, (seen.get(b) ?? 0) + 1);
    }
    await client.close();
    console.log(peer.label.padEnd(36), JSON.stringify(Object.fromEntries(seen)));
  }
} finally {
  await stopAll(backends);
}

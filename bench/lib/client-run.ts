import type { BenchClient, Peer, Target } from "./peers/types.js";
import { sleep } from "./rounds.js";

const CLOSE_LIMIT_MS = 3000;

/** Opens a client, runs `fn` with it, and closes it (waiting at most 3 s for the close). */
export async function withClient<T>(peer: Peer, target: Target, fn: (c: BenchClient) => Promise<T>): Promise<T> {
  const client = await peer.open(target);
  try {
    return await fn(client);
  } finally {
    await Promise.race([client.close().catch(() => {}), sleep(CLOSE_LIMIT_MS)]);
  }
}

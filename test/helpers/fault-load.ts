/**
 * Steady load from two (or more) kinds of caller on the same channel while
 * backends fail: each kind gets `workers` callers running back to back for
 * `ms`, and the faults script runs alongside. Comparing kinds in one run
 * (an adapter against the library's own request()) keeps the faults and the
 * machine the same for both.
 */
import { expect } from "vitest";

export type Tally = { ok: number; failed: number };

export async function loadThroughFaults<K extends string>(
  calls: Record<K, () => Promise<unknown>>,
  faults: () => Promise<void>,
  opts: { workers?: number; ms?: number } = {},
): Promise<Record<K, Tally>> {
  const workers = opts.workers ?? 4;
  const until = Date.now() + (opts.ms ?? 6000);
  const kinds = Object.keys(calls) as K[];
  const tallies = Object.fromEntries(kinds.map((k) => [k, { ok: 0, failed: 0 }])) as Record<K, Tally>;
  const worker = async (kind: K): Promise<void> => {
    while (Date.now() < until) {
      try {
        await calls[kind]();
        tallies[kind].ok++;
      } catch {
        tallies[kind].failed++;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await Promise.all([...kinds.flatMap((k) => Array.from({ length: workers }, () => worker(k))), faults()]);
  return tallies;
}

/** The usual script: SIGKILL the first backend after 1 s, SIGSTOP the second 1.5 s later (the caller thaws it). */
export function killThenFreeze(servers: Array<{ kill(): Promise<void>; freeze(): void }>): () => Promise<void> {
  return async () => {
    await new Promise((r) => setTimeout(r, 1000));
    await servers[0]!.kill();
    await new Promise((r) => setTimeout(r, 1500));
    servers[1]!.freeze();
  };
}

/**
 * What "no more failures than the library" means with 4 workers a kind and
 * two faults: plenty of successes, only calls in flight at a fault lost (at
 * most one per worker per fault), and the other kind within a few calls of
 * request(), by chance of timing.
 */
export function expectLossesLikeRequest(t: Record<string, Tally>, kind: string): void {
  const other = t[kind]!;
  const request = t.request!;
  expect(other.ok).toBeGreaterThan(100);
  expect(request.ok).toBeGreaterThan(100);
  expect(other.failed).toBeLessThanOrEqual(8);
  expect(request.failed).toBeLessThanOrEqual(8);
  expect(other.failed).toBeLessThanOrEqual(request.failed + 5);
}

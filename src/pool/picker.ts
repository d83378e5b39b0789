import type { Indexed, UsableSet } from "./usable-set.js";

/**
 * Power of two choices: two distinct members at random, the cheaper wins
 * (ties go to the first draw, which is itself random). O(1) whatever the size.
 */
export function pickP2C<T extends Indexed>(set: UsableSet<T>, cost: (m: T) => number, random: () => number): T | undefined {
  const n = set.size;
  if (n === 0) return undefined;
  if (n === 1) return set.at(0);
  const i = Math.floor(random() * n);
  let j = Math.floor(random() * (n - 1));
  if (j >= i) j++;
  const a = set.at(i);
  const b = set.at(j);
  return cost(b) < cost(a) ? b : a;
}

/** Cost = in-flight count: what the member is doing right now. */
export function inFlightCost(m: { inFlight: number }): number {
  return m.inFlight;
}

/**
 * Peak-EWMA cost (Finagle, tower): latency estimate × (in-flight + 1), so a
 * slow member must be proportionally idle to win. Members without a latency
 * sample borrow `fallback` (their PING RTT, or 1 ms) so new members are tried.
 */
export function peakEwmaCost(m: { inFlight: number; latency: number | undefined; rtt: number | undefined }): number {
  const l = m.latency ?? m.rtt ?? 1;
  return l * (m.inFlight + 1);
}

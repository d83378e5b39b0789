import type { Indexed, UsableSet } from "./usable-set.js";

/**
 * Power of two choices: two distinct members at random, the cheaper wins
 * (ties go to the first draw, which is itself random). O(1) whatever the size.
 * The draw itself changes nothing; the pool's `cost` is not pure (a read of a
 * suspect member marks it and emits `suspect` once per episode, pool.ts).
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

/**
 * Deterministic subsetting (Google SRE book, chapter 20, "Load Balancing in
 * the Datacenter"): every client of a fleet orders the same backend list the
 * same way, so clients 0…N−1 together cover the backends evenly instead of
 * each picking at random.
 *
 * The book's algorithm: subset count = backends / size; round = clientId /
 * subset count; shuffle the backends with the round as seed; take subset
 * `clientId mod subset count`. Read as positions, client c takes positions
 * c·size … c·size+size−1 of an endless sequence made of one shuffle per
 * round. That reading is what this file computes, because it also covers
 * backends that are not a multiple of `size` (the book drops the leftovers
 * of each round, which leaves them a connection short): a subset that runs
 * off the end of one round's shuffle continues at the start of the next, so
 * every round still hands out each backend exactly once. When backends
 * divide evenly it is the book's algorithm, subset for subset.
 *
 * A subset that spans two rounds must not meet a backend twice (the tail of
 * one shuffle and the head of the next): each round's first size−1
 * positions avoid the previous round's last size−1 backends, by moving
 * those few a little later. Every round still lists every backend once, so
 * the fleet stays exactly even.
 *
 * The shuffle is "sort by a hash of (round, address)" rather than a seeded
 * Fisher–Yates: every process gets the same order without sharing a PRNG,
 * and removing one backend leaves the others' relative order as it was.
 */

/**
 * Every key, in the order client `clientId` should use them: its subset of
 * `size` first, then the positions after it (the next clients' subsets), so
 * a slot whose subset address fails lands where the fleet is also even.
 * `keys` must be the same set on every client; its order does not matter.
 */
export function subsetOrder(keys: readonly string[], clientId: number, size: number): string[] {
  const n = keys.length;
  if (n === 0) return [];
  const out: string[] = [];
  const taken = new Set<string>();
  let position = clientId * Math.max(1, size);
  let round = -1;
  let order: string[] = [];
  // Each round lists every key once, so n rounds always suffice; a subset that spans two rounds may meet a key twice.
  for (let steps = 0; out.length < n && steps < 3 * n + size; steps++, position++) {
    const r = Math.floor(position / n);
    if (r !== round) {
      round = r;
      order = roundOrder(keys, r, size);
    }
    const key = order[position % n] as string;
    if (taken.has(key)) continue;
    taken.add(key);
    out.push(key);
  }
  // Unreachable in practice (each round has every key); kept so the result always lists every key.
  for (const k of [...keys].sort()) if (!taken.has(k)) out.push(k);
  return out;
}

/**
 * The round's shuffle, with its head cleared of the previous round's tail
 * (see above). The fix only reorders a prefix of at most 2·(size−1) keys,
 * so with n ≥ 3·(size−1) a round's tail is its plain hash order, and the
 * previous round's tail needs no fix of its own: no recursion over rounds.
 */
function roundOrder(keys: readonly string[], round: number, size: number): string[] {
  const raw = hashOrder(keys, round);
  const w = size - 1;
  if (round === 0 || w === 0 || keys.length < 3 * w) return raw;
  const avoid = new Set(hashOrder(keys, round - 1).slice(-w));
  const head: string[] = [];
  const deferred: string[] = [];
  let i = 0;
  for (; i < raw.length && head.length < w; i++) {
    const k = raw[i] as string;
    (avoid.has(k) ? deferred : head).push(k);
  }
  return [...head, ...deferred, ...raw.slice(i)];
}

/** Keys sorted by a hash of (round, key): the same on every process for the same keys. */
function hashOrder(keys: readonly string[], round: number): string[] {
  return keys
    .map((k) => ({ k, h: hash32(`${round}\u0000${k}`) }))
    .sort((a, b) => a.h - b.h || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
    .map((x) => x.k);
}

/** FNV-1a with a murmur3 finalizer: stable across processes and Node versions, well mixed for short keys. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

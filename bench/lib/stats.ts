/** Small numeric helpers: percentiles, medians, rounding, ratios. */

/** Nearest-rank quantile of an ascending array (q in 0..1); NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
  return sorted[rank] as number;
}

export function ascending(values: Iterable<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** The middle value; the mean of the two middle values for an even count (so 2 rounds give their mean). */
export function median(values: number[]): number {
  const s = ascending(values);
  const n = s.length;
  if (n === 0) return Number.NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Rounds to `digits` significant decimals for results files (NaN stays NaN → null in JSON). */
export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** a / b rounded; NaN when b is 0 or either is missing. */
export function ratio(a: number, b: number, digits = 2): number {
  return b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? Number.NaN : round(a / b, digits);
}

/** Median of each numeric key across rounds. */
export function medianOf<K extends string>(rounds: Array<Record<K, number>>, keys: readonly K[]): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const k of keys) out[k] = median(rounds.map((r) => r[k]));
  return out;
}

/** `value` of each item, bucketed by `at` (ms) into windows of `windowMs` from 0 to `endMs`. */
export function byWindow<T extends { at: number }>(items: T[], value: (t: T) => number, windowMs: number, endMs: number): number[][] {
  const n = Math.ceil(endMs / windowMs);
  const buckets: number[][] = Array.from({ length: n }, () => []);
  for (const it of items) buckets[Math.min(n - 1, Math.floor(it.at / windowMs))]?.push(value(it));
  return buckets;
}

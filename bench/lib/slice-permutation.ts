/**
 * How far apart two clients' pooled tails land by chance alone, when both
 * ran the same slices of the same rounds (bench/tail): a stratified
 * permutation test over slices. If the two clients were the same, which of
 * a round's slices went to which would not matter; so, within each round,
 * the two clients' slices are pooled and dealt out again at random, and the
 * ratio of the two halves' pooled quantiles is taken, many times. The
 * spread of those ratios is the noise of the statistic (on a shared host, a
 * stall of the process or the machine lands in one slice and decides a
 * p99.9 of a few thousand calls); the share of them at or above the ratio
 * measured is its one-sided p-value.
 *
 * A pooled quantile this high needs only each slice's slowest calls: with n
 * calls in all, the q-quantile is the (n − ⌈q·n⌉ + 1)-th slowest, which is
 * among the slowest that many of its own slice.
 */
import { mulberry32 as seeded } from "../../test/helpers/random.js";

/** One client's slices, by round: each slice's slowest calls, slowest first, and how many calls it had. */
export interface SlicedRun {
  tops: number[][];
  calls: number[];
}

export interface NoiseBand {
  /** The ratio measured: a's pooled quantile ÷ b's. */
  ratio: number;
  /** 2.5th and 97.5th percentiles of the ratio with slices dealt at random. */
  low: number;
  high: number;
  /** Share of the random deals whose ratio is at least `ratio` (one-sided). */
  p: number;
}

/** The nearest-rank q-quantile of the union of these slices (see the header: it is among their slowest calls). */
export function pooledQuantile(tops: readonly (readonly number[])[], calls: number, q: number): number {
  const k = calls - Math.ceil(q * calls) + 1;
  const all = tops.flat().sort((x, y) => y - x);
  if (k < 1 || k > all.length) throw new Error(`pooledQuantile: needs the ${k} slowest calls, have ${all.length}`);
  return all[k - 1] as number;
}

/**
 * The measured ratio of a's pooled q-quantile to b's, and the band random
 * deals of each round's slices give (rounds: the same count in a and b, and
 * in each round the same number of slices).
 */
export function noiseBand(a: SlicedRun[], b: SlicedRun[], q: number, deals = 2000, seed = 1): NoiseBand {
  if (a.length !== b.length) throw new Error("noiseBand: a and b must have the same rounds");
  const quantileOf = (runs: { tops: number[][]; calls: number[] }[]): number =>
    pooledQuantile(
      runs.flatMap((r) => r.tops),
      runs.reduce((n, r) => n + r.calls.reduce((m, c) => m + c, 0), 0),
      q,
    );
  const ratio = quantileOf(a) / quantileOf(b);
  const random = seeded(seed);
  const ratios: number[] = [];
  for (let d = 0; d < deals; d++) {
    const left: SlicedRun[] = [];
    const right: SlicedRun[] = [];
    a.forEach((ra, r) => {
      const rb = b[r] as SlicedRun;
      const slices = [...ra.tops.map((t, i) => ({ t, c: ra.calls[i] as number })), ...rb.tops.map((t, i) => ({ t, c: rb.calls[i] as number }))];
      // Fisher–Yates, then the first half to one side as a had them, the rest to the other.
      for (let i = slices.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [slices[i], slices[j]] = [slices[j]!, slices[i]!];
      }
      const half = ra.tops.length;
      left.push({ tops: slices.slice(0, half).map((s) => s.t), calls: slices.slice(0, half).map((s) => s.c) });
      right.push({ tops: slices.slice(half).map((s) => s.t), calls: slices.slice(half).map((s) => s.c) });
    });
    ratios.push(quantileOf(left) / quantileOf(right));
  }
  ratios.sort((x, y) => x - y);
  const at = (f: number): number => ratios[Math.min(ratios.length - 1, Math.floor(f * ratios.length))] as number;
  return { ratio, low: at(0.025), high: at(0.975), p: ratios.filter((x) => x >= ratio).length / ratios.length };
}

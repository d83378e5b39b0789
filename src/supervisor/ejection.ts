import type { OutlierOptions } from "../pool/outlier.js";

/**
 * The regulator's two rules for outlier ejection (the pool only counts
 * outcomes, pool/outlier.ts): how long an ejection lasts, and whether one
 * more member may be ejected.
 */

/** How long this ejection lasts (ms): base × `ejections` so far (this one included), capped at maxEjection. */
export function ejectionTime(ejections: number, o: OutlierOptions): number {
  return Math.min(o.baseEjection * Math.max(1, ejections), Math.max(o.maxEjection, o.baseEjection));
}

/** Whether one more member may be ejected: never past maxEjectedPercent of `members`. */
export function mayEject(ejected: number, members: number, o: OutlierOptions): boolean {
  return ((ejected + 1) * 100) / members <= o.maxEjectedPercent;
}

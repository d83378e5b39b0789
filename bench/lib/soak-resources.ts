/**
 * What the soak watches for leaks, read in its own process: heap after a
 * full GC (the process must run with --expose-gc), open file descriptors
 * (/proc/self/fd) and active handles (process.getActiveResourcesInfo()).
 */
import { readdirSync } from "node:fs";

export interface ResourceSample {
  /** Seconds since the soak started. */
  atS: number;
  heapMB: number;
  fds: number;
  handles: number;
}

const gc = (globalThis as { gc?: () => void }).gc;

export function requireGc(): void {
  if (!gc) throw new Error("the soak measures heap after GC: run it with node --expose-gc (npm run soak does)");
}

export function sampleResources(atS: number): ResourceSample {
  // Two passes: the first may only promote what the second frees.
  gc?.();
  gc?.();
  let fds = Number.NaN;
  try {
    fds = readdirSync("/proc/self/fd").length;
  } catch {
    /* not Linux: reported as NaN */
  }
  return {
    atS: Math.round(atS),
    heapMB: Math.round((process.memoryUsage().heapUsed / 1024 / 1024) * 1000) / 1000,
    fds,
    handles: process.getActiveResourcesInfo().length,
  };
}

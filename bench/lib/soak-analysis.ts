/**
 * What a soak run means: resource drift (first minute → last, and after
 * minute 3, when warm-up garbage and JIT have settled), failures by code,
 * p99 in the window after each kind of fault, and which failures a fault
 * that cuts connections (kill, freeze) explains — a request in flight while
 * one ran. A failure nothing explains is what the soak is looking for.
 */
import type { FaultRecord, LoopResult, Outcome } from "./soak-loop.js";
import type { ResourceSample } from "./soak-resources.js";
import { ascending, quantile, round } from "./stats.js";

export interface Drift {
  heapMB: { firstMinute: number; minute3: number; last: number; driftPctFirstToLast: number; driftPctAfterMinute3: number };
  fds: { min: number; max: number; afterMinute1: [number, number] };
  handles: { min: number; max: number; afterMinute1: [number, number] };
}

export interface FaultKindStats {
  kind: string;
  count: number;
  /** Faults whose own action failed (a restart that did not come up). */
  errors: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
}

export interface SoakAnalysis {
  requests: number;
  failures: number;
  failuresByCode: Record<string, number>;
  /** Failures of requests in flight during a kill or freeze. */
  explained: number;
  /** Failures no cutting fault explains, by code. */
  unexplainedByCode: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  byFault: FaultKindStats[];
  drift: Drift;
  maxSendLagMs: number;
}

/** The sample taken closest to `atS`. */
function near(samples: ResourceSample[], atS: number): ResourceSample {
  let best = samples[0] as ResourceSample;
  for (const s of samples) if (Math.abs(s.atS - atS) < Math.abs(best.atS - atS)) best = s;
  return best;
}

const pct = (from: number, to: number): number => round(((to - from) / from) * 100, 2);

function range(samples: ResourceSample[], read: (s: ResourceSample) => number): [number, number] {
  const v = samples.map(read);
  return [Math.min(...v), Math.max(...v)];
}

function drift(samples: ResourceSample[], durationS: number): Drift {
  // Short runs (a smoke run of a minute or two) scale the marks down.
  const m1 = Math.min(60, durationS / 5);
  const m3 = Math.min(180, durationS / 3);
  const first = near(samples, m1);
  const three = near(samples, m3);
  const last = samples[samples.length - 1] as ResourceSample;
  const settled = samples.filter((s) => s.atS >= m1);
  const [fdMin, fdMax] = range(samples, (s) => s.fds);
  const [hMin, hMax] = range(samples, (s) => s.handles);
  return {
    heapMB: {
      firstMinute: first.heapMB,
      minute3: three.heapMB,
      last: last.heapMB,
      driftPctFirstToLast: pct(first.heapMB, last.heapMB),
      driftPctAfterMinute3: pct(three.heapMB, last.heapMB),
    },
    fds: { min: fdMin, max: fdMax, afterMinute1: range(settled, (s) => s.fds) },
    handles: { min: hMin, max: hMax, afterMinute1: range(settled, (s) => s.handles) },
  };
}

/** In flight while the fault could cut it: sent before its window ended, finished after it began. */
function cutBy(o: Outcome, f: FaultRecord): boolean {
  return f.cuts && o.at <= f.atMs + f.windowMs && o.at + o.ms >= f.atMs;
}

function count(into: Record<string, number>, key: string): void {
  into[key] = (into[key] ?? 0) + 1;
}

export function analyze(r: LoopResult, faultEveryMs: number, durationS: number): SoakAnalysis {
  const failuresByCode: Record<string, number> = {};
  const unexplainedByCode: Record<string, number> = {};
  let explained = 0;
  for (const o of r.outcomes) {
    if (!o.code) continue;
    count(failuresByCode, o.code);
    if (r.faults.some((f) => cutBy(o, f))) explained++;
    else count(unexplainedByCode, o.code);
  }
  const kinds = [...new Set(r.faults.map((f) => f.kind))];
  const byFault = kinds.map((kind) => {
    const fs = r.faults.filter((f) => f.kind === kind);
    const inWindow = r.outcomes.filter((o) => fs.some((f) => o.at >= f.atMs && o.at < f.atMs + faultEveryMs));
    const lat = ascending(inWindow.map((o) => o.ms));
    return {
      kind,
      count: fs.length,
      errors: fs.filter((f) => f.error !== undefined).length,
      p50Ms: round(quantile(lat, 0.5), 2),
      p99Ms: round(quantile(lat, 0.99), 2),
      failures: inWindow.filter((o) => o.code).length,
    };
  });
  const all = ascending(r.outcomes.map((o) => o.ms));
  const failures = r.outcomes.filter((o) => o.code).length;
  return {
    requests: r.outcomes.length,
    failures,
    failuresByCode,
    explained,
    unexplainedByCode,
    p50Ms: round(quantile(all, 0.5), 2),
    p99Ms: round(quantile(all, 0.99), 2),
    byFault,
    drift: drift(r.resources, durationS),
    maxSendLagMs: round(r.maxSendLagMs, 1),
  };
}

/**
 * The soak's loop, whatever the transport: an open-loop load at a fixed
 * rate (each request due at i / rate, latency measured from its due time),
 * a fault every `faultEveryMs` taken in turn from the target's list, and a
 * resource sample every `sampleEveryMs`. Bounded: exactly rate × duration
 * requests, each with its own deadline, and a final wait of at most the
 * deadline plus a second for stragglers.
 */
import { sampleResources, type ResourceSample } from "./soak-resources.js";

export interface SoakFault {
  kind: string;
  /** Starts the fault; may keep working in the background (a restart, a thaw) within faultEveryMs. */
  run(): Promise<void>;
  /** True for faults that may cut requests already in flight (kill, freeze). */
  cuts: boolean;
  /** How long after it starts it can still cut a request (a freeze lasts 3 s). */
  windowMs: number;
}

export interface SoakTarget {
  /** One request; rejects with the error (its `code` is counted). */
  call(): Promise<void>;
  faults: SoakFault[];
}

export interface Outcome {
  /** Due time, ms since the start. */
  at: number;
  /** Completion minus due time, ms. */
  ms: number;
  /** undefined on success; the error's code (or name) otherwise. */
  code: string | undefined;
}

export interface FaultRecord {
  kind: string;
  atMs: number;
  cuts: boolean;
  windowMs: number;
  error: string | undefined;
}

export interface LoopResult {
  outcomes: Outcome[];
  faults: FaultRecord[];
  resources: ResourceSample[];
  maxSendLagMs: number;
}

export async function soakLoop(o: {
  target: SoakTarget;
  rate: number;
  durationMs: number;
  timeoutMs: number;
  faultEveryMs: number;
  sampleEveryMs: number;
  onProgress?: (line: string) => void;
}): Promise<LoopResult> {
  const interval = 1000 / o.rate;
  const total = Math.floor((o.rate * o.durationMs) / 1000);
  // Outcomes live in typed arrays allocated up front (off the JS heap): the soak measures the heap,
  // and 120,000 outcome objects growing in it (~7 MB over 10 minutes) would read as a leak.
  const latency = new Float64Array(total);
  /** -1: not settled; 0: ok; k: codes[k − 1]. */
  const result = new Int16Array(total).fill(-1);
  const codes: string[] = [];
  const codeIndex = new Map<string, number>();
  let failed = 0;
  const faults: FaultRecord[] = [];
  const resources: ResourceSample[] = [];
  const start = performance.now();
  const now = (): number => performance.now() - start;
  let issued = 0;
  let settled = 0;
  let maxSendLagMs = 0;
  let allSettled: () => void = () => {};
  const done = new Promise<void>((resolve) => (allSettled = resolve));

  const record = (i: number, code: string | undefined): void => {
    if (result[i] !== -1) return;
    latency[i] = now() - i * interval;
    if (code === undefined) result[i] = 0;
    else {
      let k = codeIndex.get(code);
      if (k === undefined) {
        codes.push(code);
        k = codes.length;
        codeIndex.set(code, k);
      }
      result[i] = k;
      failed++;
    }
    if (++settled === total) allSettled();
  };
  const fire = (i: number): void => {
    maxSendLagMs = Math.max(maxSendLagMs, now() - i * interval);
    o.target.call().then(
      () => record(i, undefined),
      (err: unknown) => record(i, codeOf(err)),
    );
  };

  let nextFault = 0;
  const faultTimer = setInterval(() => {
    const f = o.target.faults[nextFault++ % o.target.faults.length] as SoakFault;
    const rec: FaultRecord = { kind: f.kind, atMs: now(), cuts: f.cuts, windowMs: f.windowMs, error: undefined };
    faults.push(rec);
    f.run().catch((err: unknown) => (rec.error = err instanceof Error ? err.message : String(err)));
  }, o.faultEveryMs);
  resources.push(sampleResources(0));
  const sampleTimer = setInterval(() => {
    const s = sampleResources(now() / 1000);
    resources.push(s);
    o.onProgress?.(
      `${s.atS} s: heap ${s.heapMB} MB, fds ${s.fds}, handles ${s.handles}, ${settled}/${issued} settled, ${failed} failed, ${faults.length} faults`,
    );
  }, o.sampleEveryMs);

  try {
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const t = now();
        while (issued < total && issued * interval <= t) fire(issued++);
        if (issued >= total) return resolve();
        setTimeout(tick, Math.max(0, issued * interval - now()));
      };
      tick();
    });
  } finally {
    clearInterval(faultTimer);
    clearInterval(sampleTimer);
  }
  let watchdog: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((resolve) => (watchdog = setTimeout(resolve, o.timeoutMs + 1000)))]);
  clearTimeout(watchdog);
  resources.push(sampleResources(now() / 1000));
  const out: Outcome[] = [];
  for (let i = 0; i < total; i++) {
    const r = result[i] as number;
    out.push(
      r === -1
        ? { at: i * interval, ms: now() - i * interval, code: "HUNG" }
        : { at: i * interval, ms: latency[i] as number, code: r === 0 ? undefined : codes[r - 1] },
    );
  }
  return { outcomes: out, faults, resources, maxSendLagMs };
}

function codeOf(err: unknown): string {
  if (err && typeof err === "object") {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "string" && code !== "") return code;
    if (typeof code === "number") return `${(err as { name?: string }).name ?? "Error"}:${code}`;
    return (err as { name?: string }).name ?? "Error";
  }
  return "unknown";
}

/**
 * Open-loop load: request i is due at i / rate on a fixed clock from the
 * start, whatever happened to earlier requests, and its latency is measured
 * from that due time, not from when it was actually sent. A stalled client
 * or event loop therefore shows up as latency instead of silently lowering
 * the load (no coordinated omission). Bounded: exactly rate × duration
 * requests, and a request still pending `timeoutMs + 1 s` after the last
 * one was due is recorded as hung and no longer waited for.
 */
import { CallError } from "./peers/types.js";

export interface Sample {
  /** Due time, ms since the start. */
  at: number;
  /** Completion (or failure) time minus due time, ms. */
  ms: number;
  ok: boolean;
  /** Failed after at least 95% of the deadline: the client's own timeout. */
  timeout: boolean;
  /** Never settled, even past the deadline plus 1 s. */
  hung: boolean;
  /** The x-backend header of a success, or the backend a failed call names (see CallError). */
  backend: string | undefined;
}

export interface Fault {
  atMs: number;
  name: string;
  run: () => void;
}

export interface OpenLoopResult {
  samples: Sample[];
  /** When each fault actually ran, ms since the start. */
  faults: Record<string, number>;
  /** Largest lag between a due time and the send, ms (how far behind the scheduler fell). */
  maxSendLagMs: number;
}

export async function openLoop(o: {
  rate: number;
  durationMs: number;
  timeoutMs: number;
  call: () => Promise<string | undefined>;
  faults?: Fault[];
}): Promise<OpenLoopResult> {
  const interval = 1000 / o.rate;
  const total = Math.floor((o.rate * o.durationMs) / 1000);
  const samples: Array<Sample | undefined> = new Array<Sample | undefined>(total);
  const faults: Record<string, number> = {};
  const start = performance.now();
  const now = (): number => performance.now() - start;
  let issued = 0;
  let settled = 0;
  let maxSendLagMs = 0;
  let allSettled: () => void = () => {};
  const done = new Promise<void>((resolve) => (allSettled = resolve));

  const record = (i: number, ok: boolean, backend: string | undefined): void => {
    if (samples[i]) return;
    const at = i * interval;
    const ms = now() - at;
    samples[i] = { at, ms, ok, timeout: !ok && ms >= 0.95 * o.timeoutMs, hung: false, backend };
    if (++settled === total) allSettled();
  };
  const fire = (i: number): void => {
    maxSendLagMs = Math.max(maxSendLagMs, now() - i * interval);
    let p: Promise<string | undefined>;
    try {
      p = o.call();
    } catch {
      return record(i, false, undefined);
    }
    p.then(
      (backend) => record(i, true, backend),
      (err: unknown) => record(i, false, err instanceof CallError ? err.backend : undefined),
    );
  };
  const timers = (o.faults ?? []).map((f) =>
    setTimeout(() => {
      faults[f.name] = now();
      f.run();
    }, f.atMs),
  );
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const t = now();
      while (issued < total && issued * interval <= t) fire(issued++);
      if (issued >= total) return resolve();
      setTimeout(tick, Math.max(0, issued * interval - now()));
    };
    tick();
  });
  let watchdog: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((resolve) => (watchdog = setTimeout(resolve, o.timeoutMs + 1000)))]);
  clearTimeout(watchdog);
  for (const t of timers) clearTimeout(t);
  const out: Sample[] = [];
  for (let i = 0; i < total; i++) {
    const at = i * interval;
    out.push(samples[i] ?? { at, ms: now() - at, ok: false, timeout: true, hung: true, backend: undefined });
  }
  // Fill the holes so a request settling after this point is ignored by record().
  for (let i = 0; i < total; i++) samples[i] ??= out[i];
  return { samples: out, faults, maxSendLagMs };
}

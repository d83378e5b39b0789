/**
 * Time as a channel sees it: a monotonic `now()` in ms, the wall clock for
 * the timestamps people read, and timers. Every part of a channel (the
 * supervisor, health checks, the pool's loads, the acquire queue, dispatch's
 * deadlines and hedges) reads time and sets timers through the one clock it
 * was given, so a fake clock drives a whole channel in scripted time (the
 * deterministic simulation test does exactly that). The system clock is the
 * default.
 */
export interface Clock {
  now(): number;
  /** Milliseconds since the epoch, for timestamps shown to people (stats); never for durations. */
  wall(): number;
  /** Calls `fn` after `ms`; the timer never keeps the process alive. */
  setTimeout(fn: () => void, ms: number): Timer;
}

export interface Timer {
  cancel(): void;
}

/** Node fires a longer timer at once (TimeoutOverflowWarning); a later one is as good as never. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.min(MAX_TIMER_MS, Math.max(1, ms)));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * An AbortSignal that aborts with a TimeoutError after `ms` on `clock`
 * (AbortSignal.timeout on the system clock; a fake clock's own timer
 * otherwise). `cancel()` drops the timer when the wait ended first.
 */
export function clockTimeout(clock: Clock, ms: number): { signal: AbortSignal; cancel(): void } {
  if (clock === systemClock) return { signal: AbortSignal.timeout(ms), cancel: () => {} };
  const ac = new AbortController();
  const timer = clock.setTimeout(() => ac.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError")), ms);
  return { signal: ac.signal, cancel: () => timer.cancel() };
}

/**
 * Resolves after `ms` on `clock`, or as soon as `signal` aborts (never
 * rejects; the timer is dropped then): a retry's wait that a close must not
 * leave behind on the clock.
 */
export function pause(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = (): void => {
      timer.cancel();
      resolve();
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

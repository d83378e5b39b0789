/**
 * Time as the supervisor sees it: a monotonic `now()` in ms and timers. The
 * system clock is the default; tests pass a fake one so that backoff,
 * flap windows and drain deadlines run in scripted time.
 */
export interface Clock {
  now(): number;
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
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.min(MAX_TIMER_MS, Math.max(1, ms)));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** `signal` and a deadline in one: aborts with a TimeoutError after `ms`, or with `signal`'s reason. */
export function withTimeout(ms: number, signal?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

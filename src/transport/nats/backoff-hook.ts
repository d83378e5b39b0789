import { MAX_TIMER_MS } from "../../core/duration.js";
import { ConfigError } from "../../core/errors.js";
import { SLOT_BACKOFF } from "../../supervisor/backoff.js";

/** async-nats `reconnect_delay_callback`: the delay (ms) before redial number `attempt` (1-based) of one member slot. */
export type BackoffDelay = (attempt: number) => number;

/**
 * A backoff function, wrapped so that whatever it returns is a usable
 * delay: a throw, NaN, a negative number or one past the timer limit would
 * otherwise become a busy redial loop or a timer that fires at once. It is
 * probed once here (attempt 1), so a function that is wrong for the first
 * attempt fails at construction, like any bad option.
 */
export function resolveBackoffHook(input: unknown): BackoffDelay | undefined {
  if (typeof input !== "function") return undefined;
  const fn = input as BackoffDelay;
  const first = probe(fn, 1);
  if (first === undefined) throw new ConfigError("backoff", "the backoff function must return a number of ms in [0, 2147483647] for attempt 1");
  // A later bad answer waits the default slot backoff's longest delay: neither a busy loop nor a stuck slot.
  return (attempt: number): number => probe(fn, attempt) ?? SLOT_BACKOFF.max;
}

function probe(fn: BackoffDelay, attempt: number): number | undefined {
  let v: unknown;
  try {
    v = fn(attempt);
  } catch {
    return undefined;
  }
  return typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= MAX_TIMER_MS ? v : undefined;
}

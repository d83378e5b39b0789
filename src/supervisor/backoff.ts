import { ConfigError } from "../core/errors.js";
import { requireDuration, requireFraction } from "../core/duration.js";
import { checkKeys, requireObject } from "../core/options-check.js";

/**
 * Exponential backoff, in milliseconds. The n-th retry waits
 * min(max, initial × multiplier^(n-1)), stretched by a random fraction in
 * [0, jitter] so that many clients do not retry in step. `timeout` is how
 * long a Reconnect may keep failing before it gives up (0 = never); both the
 * delay and the timeout reset after each success.
 */
export interface BackoffOptions {
  initial: number;
  multiplier: number;
  max: number;
  timeout: number;
  jitter: number;
}

/** The Reconnect handle's defaults: 1 s, ×2, at most 30 s, give up after 5 min. */
export const RECONNECT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initial: 1000,
  multiplier: 2,
  max: 30_000,
  timeout: 300_000,
  jitter: 0.2,
});

/**
 * A channel's member slots: a short first delay (a lost member is replaced at
 * once, and a refused dial retried quickly), never giving up — the channel
 * should heal whenever the backends come back.
 */
export const SLOT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initial: 100,
  multiplier: 2,
  max: 10_000,
  timeout: 0,
  jitter: 0.2,
});

/**
 * Fills defaults and validates; throws ConfigError naming the bad field.
 * Delays and the give-up timeout are bounded by MAX_TIMER_MS: a longer
 * delay would fire at once and turn backoff into a busy redial loop.
 */
export function resolveBackoff(input: Partial<BackoffOptions> | undefined, defaults: Readonly<BackoffOptions>, prefix = "backoff"): BackoffOptions {
  if (input !== undefined) checkKeys(prefix, requireObject(prefix, input), Object.keys(defaults));
  const b = { ...defaults, ...stripUndefined(input ?? {}) };
  requireDuration(`${prefix}.initial`, b.initial);
  requireDuration(`${prefix}.max`, b.max);
  requireDuration(`${prefix}.timeout`, b.timeout);
  requireFraction(`${prefix}.jitter`, b.jitter);
  if (typeof b.multiplier !== "number" || !Number.isFinite(b.multiplier) || b.multiplier < 1) {
    throw new ConfigError(`${prefix}.multiplier`, `expected a number ≥ 1, got ${String(b.multiplier)}`);
  }
  if (b.max < b.initial) {
    throw new ConfigError(`${prefix}.max`, `must be ≥ initial (${b.initial} ms), got ${b.max}`);
  }
  return b;
}

/** The delay before retry number `retry` (1-based), before jitter. */
export function baseDelay(b: BackoffOptions, retry: number): number {
  return Math.min(b.max, b.initial * b.multiplier ** Math.max(0, retry - 1));
}

/** The extra wait jitter adds to a base delay: a random fraction in [0, jitter]. */
export function jitterExtra(b: BackoffOptions, base: number, random: () => number = Math.random): number {
  return b.jitter === 0 ? 0 : Math.round(base * b.jitter * random());
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

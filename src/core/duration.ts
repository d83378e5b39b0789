import { ConfigError } from "./errors.js";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The longest delay a Node timer honours: setTimeout stores it as a signed
 * 32-bit integer and fires *at once* (with a warning) past it. A duration
 * option above it would turn "wait 35 days" into "don't wait at all", so every
 * duration dialtone puts on a timer is bounded by it.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Library options take milliseconds as numbers; the CLI and config files also
 * take "250ms", "5s", "2m", "1h". Anything else is a ConfigError naming the option.
 */
export function parseDuration(option: string, value: number | string): number {
  if (typeof value !== "string") return requireDuration(option, value);
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value);
  if (!m) throw new ConfigError(option, `${JSON.stringify(value)} is not a duration (use 250ms, 5s, 2m)`);
  return requireDuration(option, Number(m[1]) * (UNITS[m[2] as string] as number));
}

/** A finite number of milliseconds in [0, MAX_TIMER_MS]. Takes `unknown` so untyped input (JS callers, config files) is checked too. */
export function requireDuration(option: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > MAX_TIMER_MS) {
    throw new ConfigError(option, `expected a number of milliseconds from 0 to ${MAX_TIMER_MS} (about 24.8 days), got ${show(value)}`, "duration");
  }
  return value;
}

/** A duration where 0 makes no sense (a PING interval, a dial timeout): (0, MAX_TIMER_MS]. */
export function requirePositiveDuration(option: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
    throw new ConfigError(option, `expected a number of milliseconds above 0 and at most ${MAX_TIMER_MS} (about 24.8 days), got ${show(value)}`, "duration");
  }
  return value;
}

/**
 * A timeout, per channel or per call: a number of milliseconds above 0 and at
 * most MAX_TIMER_MS. Rejects NaN, negatives, Infinity and strings ("5s": the
 * library takes numbers only) with a ConfigError naming `option`, so a bad
 * per-call timeout fails that call before any member sees it, instead of
 * timing out "after NaN ms" or at once.
 */
export function requireTimeout(option: string, value: unknown): number {
  return requirePositiveDuration(option, value);
}

/** An integer in [min, max]; max defaults to the largest integer a double holds exactly. */
export function requireInteger(option: string, value: unknown, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(option, `expected an integer from ${min} to ${max}, got ${show(value)}`);
  }
  return value;
}

/** A fraction in [0, 1]. */
export function requireFraction(option: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigError(option, `expected a fraction between 0 and 1, got ${show(value)}`);
  }
  return value;
}

/** Strings are quoted so `"5"` and `5` read differently in a message. */
function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

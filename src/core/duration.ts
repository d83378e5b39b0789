import { ConfigError } from "./errors.js";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Library options take milliseconds as numbers; the CLI and config files also
 * take "250ms", "5s", "2m", "1h". Anything else is a ConfigError naming the option.
 */
export function parseDuration(option: string, value: number | string): number {
  if (typeof value === "number") return requireDuration(option, value);
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value);
  if (!m) throw new ConfigError(option, `${JSON.stringify(value)} is not a duration (use 250ms, 5s, 2m)`);
  return requireDuration(option, Number(m[1]) * (UNITS[m[2] as string] as number));
}

/** A finite, non-negative number of milliseconds. */
export function requireDuration(option: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(option, `expected a non-negative number of milliseconds, got ${String(value)}`);
  }
  return value;
}

/** A finite, strictly positive number. */
export function requirePositive(option: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(option, `expected a positive number, got ${String(value)}`);
  }
  return value;
}

/** An integer ≥ min. */
export function requireInteger(option: string, value: number, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new ConfigError(option, `expected an integer ≥ ${min}, got ${String(value)}`);
  }
  return value;
}

/** A fraction in [0, 1]. */
export function requireFraction(option: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigError(option, `expected a fraction between 0 and 1, got ${String(value)}`);
  }
  return value;
}

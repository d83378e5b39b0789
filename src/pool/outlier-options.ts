import { requireDuration, requireInteger, requirePositiveDuration } from "../core/duration.js";
import { ConfigError } from "../core/errors.js";
import { checkKeys, requireObject } from "../core/options-check.js";
import type { OutlierOptions } from "./outlier.js";

/** The defaults a given `outlier: {}` fills in (Envoy's, but maxEjectedPercent 50 as issue 17 asks). */
export const DEFAULT_OUTLIER: OutlierOptions = {
  consecutive5xx: 5,
  consecutiveGatewayErrors: 5,
  consecutiveLocalFailures: 5,
  baseEjection: 30_000,
  maxEjection: 300_000,
  maxEjectedPercent: 50,
};

/** `outlier`: off unless given (undefined or false); an object takes the defaults for missing keys. */
export function resolveOutlier(input: unknown): OutlierOptions | undefined {
  if (input === undefined || input === false) return undefined;
  const o = requireObject("outlier", input);
  checkKeys("outlier", o, Object.keys(DEFAULT_OUTLIER));
  const d = DEFAULT_OUTLIER;
  const r: OutlierOptions = {
    consecutive5xx: requireInteger("outlier.consecutive5xx", o.consecutive5xx ?? d.consecutive5xx, 0),
    consecutiveGatewayErrors: requireInteger("outlier.consecutiveGatewayErrors", o.consecutiveGatewayErrors ?? d.consecutiveGatewayErrors, 0),
    consecutiveLocalFailures: requireInteger("outlier.consecutiveLocalFailures", o.consecutiveLocalFailures ?? d.consecutiveLocalFailures, 0),
    baseEjection: requirePositiveDuration("outlier.baseEjection", o.baseEjection ?? d.baseEjection),
    maxEjection: requireDuration("outlier.maxEjection", o.maxEjection ?? d.maxEjection),
    maxEjectedPercent: requireInteger("outlier.maxEjectedPercent", o.maxEjectedPercent ?? d.maxEjectedPercent, 0, 100),
  };
  if (r.maxEjection < r.baseEjection) throw new ConfigError("outlier.maxEjection", `must be ≥ outlier.baseEjection (${r.baseEjection}), got ${r.maxEjection}`);
  return r;
}

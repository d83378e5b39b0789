import { requireDuration, requireFraction, requireInteger, requirePositiveDuration } from "../core/duration.js";
import { ConfigError } from "../core/errors.js";
import { checkKeys, requireObject } from "../core/options-check.js";

/**
 * The PING/PONG loop's knobs, in milliseconds.
 *
 * Defaults are chosen so a frozen peer (process stopped, TCP open) stops
 * getting new requests within 3 s: a PING is due at most `interval` after the
 * last PONG, times out after `timeout`, and after a failure the next PING is
 * sent at once, so `unhealthyAfter` = 2 failures take at most
 * 1000 + 750 + 750 = 2.5 s.
 */
export interface HealthOptions {
  /** Time between PINGs while healthy. */
  interval: number;
  /** A PING with no PONG within this is a failure. */
  timeout: number;
  /** Consecutive failures that make a member unhealthy. */
  unhealthyAfter: number;
  /** Consecutive successes that make an unhealthy member ready again. */
  healthyAfter: number;
  /** Each interval is shortened by a random fraction in [0, jitter], so members do not PING in step. */
  jitter: number;
  /**
   * Passive check: a member with requests in flight that has not been heard
   * from (no completed response, no PONG) for this long is suspect. Picks
   * avoid it and it is PINGed at once; a PONG clears it. 0 turns it off.
   */
  suspectAfter: number;
  /**
   * An application check run on the member's own connection with every PING
   * (warm_channels checks members with the gRPC Health Checking Protocol):
   * `{ grpc: { service } }` calls grpc.health.v1.Health/Check and wants
   * SERVING; `{ http: { path } }` wants a 2xx. A failure counts exactly as a
   * missed PONG. Protocols that cannot run it refuse it at construction.
   */
  check?: AppCheck | undefined;
}

export type AppCheck = { grpc: { service: string } } | { http: { path: string } };

export const HEALTH_DEFAULTS: Readonly<HealthOptions> = Object.freeze({
  interval: 1000,
  timeout: 750,
  unhealthyAfter: 2,
  healthyAfter: 2,
  jitter: 0.1,
  suspectAfter: 250,
});

/**
 * Fills defaults and validates. Durations are bounded by MAX_TIMER_MS: past
 * it Node fires the timer at once, and `interval: 3e9` would PING in a loop.
 */
export function resolveHealth(input: Partial<HealthOptions> | undefined, prefix = "health"): HealthOptions {
  const h: HealthOptions = { ...HEALTH_DEFAULTS };
  if (input !== undefined) {
    const given = requireObject(prefix, input);
    checkKeys(prefix, given, [...Object.keys(HEALTH_DEFAULTS), "check"]);
    for (const [k, v] of Object.entries(given)) if (v !== undefined) (h as unknown as Record<string, unknown>)[k] = v;
  }
  requirePositiveDuration(`${prefix}.interval`, h.interval);
  requirePositiveDuration(`${prefix}.timeout`, h.timeout);
  requireInteger(`${prefix}.unhealthyAfter`, h.unhealthyAfter, 1);
  requireInteger(`${prefix}.healthyAfter`, h.healthyAfter, 1);
  requireFraction(`${prefix}.jitter`, h.jitter);
  requireDuration(`${prefix}.suspectAfter`, h.suspectAfter);
  if (h.check !== undefined) h.check = resolveAppCheck(h.check, `${prefix}.check`);
  return h;
}

/** `{ grpc: { service? } }` or `{ http: { path } }`, exactly one. */
function resolveAppCheck(input: unknown, prefix: string): AppCheck {
  const c = requireObject(prefix, input);
  checkKeys(prefix, c, ["grpc", "http"]);
  if ((c.grpc === undefined) === (c.http === undefined)) throw new ConfigError(prefix, "expected exactly one of { grpc: { service } } or { http: { path } }");
  if (c.grpc !== undefined) {
    const g = requireObject(`${prefix}.grpc`, c.grpc);
    checkKeys(`${prefix}.grpc`, g, ["service"]);
    const service = g.service ?? "";
    if (typeof service !== "string" || !/^[A-Za-z0-9_.]*$/.test(service))
      throw new ConfigError(`${prefix}.grpc.service`, 'expected a gRPC service name such as "" or "pkg.Service"');
    return { grpc: { service } };
  }
  const h = requireObject(`${prefix}.http`, c.http);
  checkKeys(`${prefix}.http`, h, ["path"]);
  if (typeof h.path !== "string" || !/^\/[\x21-\x7e]*$/.test(h.path)) throw new ConfigError(`${prefix}.http.path`, 'expected a path such as "/healthz"');
  return { http: { path: h.path } };
}

/**
 * Outlier ejection from request outcomes, with Envoy's names and semantics
 * (outlier_detection, split between errors the upstream answered and errors
 * of the connection itself): a member whose last N calls in a row answered
 * 5xx, or a gateway error, or failed locally, is ejected — it stays
 * connected and PINGed, but takes no picks until its time is up. That time
 * is `baseEjection` × the number of times it was ejected, capped at
 * `maxEjection`; never more than `maxEjectedPercent` of the members are
 * ejected at once.
 *
 * PING/PONG proves the connection alive; this sees that the application
 * behind it answers 503 to everything.
 *
 * The pool counts outcomes with this file's detectors; the ejection itself
 * (how long, how many) is the regulator's decision (supervisor/ejection.ts).
 */

/** How one attempt ended, as outlier detection counts it. */
export type AttemptOutcome =
  /** Anything but a 5xx: the upstream works. */
  | "ok"
  /** A 5xx that is not a gateway error. */
  | "5xx"
  /** 502, 503, 504, or gRPC UNAVAILABLE: counts as a 5xx and as a gateway error. */
  | "gateway"
  /** No answer: reset, timeout, connection lost. */
  | "local";

import type { EjectionReason } from "../core/events.js";

export type { EjectionReason };

export interface OutlierOptions {
  /** 5xx answers in a row that eject (0: off). Envoy's consecutive_5xx. */
  consecutive5xx: number;
  /** 502/503/504 or gRPC UNAVAILABLE in a row that eject (0: off). Envoy's consecutive_gateway_failure. */
  consecutiveGatewayErrors: number;
  /** Local failures (reset, timeout, connection lost) in a row that eject (0: off). Envoy's consecutive_local_origin_failure. */
  consecutiveLocalFailures: number;
  /** First ejection, ms; each repeat is this × the number of ejections. */
  baseEjection: number;
  /** Longest ejection, ms. */
  maxEjection: number;
  /** Most members ejected at once, as a percentage of the members. */
  maxEjectedPercent: number;
}

/** One member's outcome counts (pool-owned). Whether it is ejected is the regulator's record. */
export class OutlierState {
  consecutive5xx = 0;
  consecutiveGateway = 0;
  consecutiveLocal = 0;

  /** Counts start over (an ejection ended). */
  reset(): void {
    this.consecutive5xx = this.consecutiveGateway = this.consecutiveLocal = 0;
  }
}

/**
 * Counts one outcome; returns why the member should be ejected now, if it
 * should. Pure but for the counters it updates.
 */
export function noteOutcome(s: OutlierState, outcome: AttemptOutcome, o: OutlierOptions): EjectionReason | undefined {
  switch (outcome) {
    case "ok":
      s.consecutive5xx = 0;
      s.consecutiveGateway = 0;
      s.consecutiveLocal = 0;
      return undefined;
    case "local":
      s.consecutiveLocal++;
      return o.consecutiveLocalFailures > 0 && s.consecutiveLocal >= o.consecutiveLocalFailures ? "consecutive-local" : undefined;
    case "gateway":
      s.consecutiveGateway++;
      s.consecutive5xx++;
      s.consecutiveLocal = 0;
      if (o.consecutiveGatewayErrors > 0 && s.consecutiveGateway >= o.consecutiveGatewayErrors) return "consecutive-gateway";
      return o.consecutive5xx > 0 && s.consecutive5xx >= o.consecutive5xx ? "consecutive-5xx" : undefined;
    case "5xx":
      s.consecutive5xx++;
      s.consecutiveGateway = 0;
      s.consecutiveLocal = 0;
      return o.consecutive5xx > 0 && s.consecutive5xx >= o.consecutive5xx ? "consecutive-5xx" : undefined;
  }
}

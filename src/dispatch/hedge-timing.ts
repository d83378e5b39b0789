import { requireInteger, requirePositiveDuration } from "../core/duration.js";
import { ConfigError } from "../core/errors.js";
import { checkKeys, describeType, requireObject } from "../core/options-check.js";

/**
 * `hedge: { delay, max }` (off unless given): an idempotent call with no
 * response after `delay` ms — or after the channel's running p95 — is sent
 * again to a different member, up to `max` extra attempts; the first
 * complete response wins and the others are cancelled. gRFC A6's
 * hedgingDelay / maxAttempts, Finagle's backup requests.
 */
export interface HedgeOptions {
  /** ms, or "p95": the 95th percentile of the channel's recent successful attempts (default "p95"). */
  delay: number | "p95";
  /** Extra attempts per call (default 1). */
  max: number;
}

/** Successful attempts the running p95 is taken over. */
const WINDOW = 512;
/** Below this many samples there is no p95 yet, and no hedge: a guess would hedge everything or nothing. */
const MIN_SAMPLES = 32;
/** The p95 is re-sorted after this many new samples, not on every call. */
const RECOMPUTE_EVERY = 32;
export const MAX_HEDGES = 10;

/** When a call's next hedge is due. Records attempt latencies when the delay is "p95". */
export class HedgeTiming {
  readonly max: number;
  readonly #fixed: number | undefined;
  readonly #samples = new Float64Array(WINDOW);
  readonly #scratch = new Float64Array(WINDOW);
  #count = 0;
  #next = 0;
  #fresh = 0;
  #p95: number | undefined;

  constructor(options: HedgeOptions) {
    this.max = options.max;
    this.#fixed = options.delay === "p95" ? undefined : options.delay;
  }

  /** ms to wait before hedging; undefined: too few samples for a p95, do not hedge yet. */
  delayMs(): number | undefined {
    return this.#fixed ?? this.#p95;
  }

  /** A successful attempt's latency, ms. */
  record(ms: number): void {
    if (this.#fixed !== undefined || !(ms >= 0) || !Number.isFinite(ms)) return;
    this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % WINDOW;
    if (this.#count < WINDOW) this.#count++;
    if (++this.#fresh >= RECOMPUTE_EVERY && this.#count >= MIN_SAMPLES) {
      this.#fresh = 0;
      const n = this.#count;
      for (let i = 0; i < n; i++) this.#scratch[i] = this.#samples[i] as number;
      const sorted = this.#scratch.subarray(0, n).sort();
      this.#p95 = sorted[Math.ceil(0.95 * n) - 1];
    }
  }
}

/** `hedge`: undefined or false (off), or { delay?, max? }. */
export function resolveHedge(input: unknown): HedgeOptions | undefined {
  if (input === undefined || input === false) return undefined;
  const o = requireObject("hedge", input);
  checkKeys("hedge", o, ["delay", "max"]);
  const delay = o.delay ?? "p95";
  if (delay !== "p95" && typeof delay !== "number") throw new ConfigError("hedge.delay", `expected a number of milliseconds or "p95", got ${describeType(delay)}`);
  return {
    delay: delay === "p95" ? delay : requirePositiveDuration("hedge.delay", delay),
    max: requireInteger("hedge.max", o.max ?? 1, 1, MAX_HEDGES),
  };
}

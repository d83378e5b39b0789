import { MAX_TIMER_MS } from "../core/duration.js";
import { BadRequestError } from "../core/errors.js";

/**
 * A per-call timeout: finite ms in [1, 2^31−1] (setTimeout fires at once
 * past that), or undefined for the channel's default. Anything else — NaN,
 * -1, "5s", Infinity — fails that call with a BadRequestError before any
 * member sees it, instead of timing out "after NaN ms" or at once.
 */
export function checkTimeout(timeout: unknown, target: string): number | undefined {
  if (timeout === undefined) return undefined;
  if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0 || timeout > MAX_TIMER_MS) {
    throw new BadRequestError(target, "timeout", `expected a number of milliseconds from 1 to ${MAX_TIMER_MS}`);
  }
  return timeout;
}

/** A per-call signal: an AbortSignal or nothing. */
export function checkSignal(signal: unknown, target: string): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw new BadRequestError(target, "signal", "expected an AbortSignal");
  return signal;
}

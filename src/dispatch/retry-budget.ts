import { requirePositiveDuration } from "../core/duration.js";
import { ConfigError } from "../core/errors.js";
import { checkKeys, describeType, requireObject } from "../core/options-check.js";

/**
 * Finagle's RetryBudget: retries (and hedges) may add at most `ratio` of the
 * calls made over the last `window`, plus `minPerSecond` so that a quiet
 * client can still retry. Without it a backend that fails everything gets
 * (1 + maxRetries) times its normal traffic exactly when it can least take
 * it — the retry storm.
 */
export interface RetryBudgetOptions {
  /** Retries and hedges allowed per call made in the window (default 0.2). */
  ratio: number;
  /** Retries and hedges allowed per second whatever the traffic (default 10). */
  minPerSecond: number;
  /** How far back calls and retries are counted, ms (default 10 s). */
  window: number;
}

export const DEFAULT_RETRY_BUDGET: RetryBudgetOptions = { ratio: 0.2, minPerSecond: 10, window: 10_000 };

/** The window is counted in this many slots; a slot's counts leave together, so the window slides in tenths. */
const SLOTS = 10;

/**
 * A sliding-window count of calls and retries. Pure apart from reading the
 * clock it was given: `tryWithdraw` says yes while retries in the window are
 * below `ratio × calls + minPerSecond × window`. O(1) per call (a roll
 * touches at most SLOTS slots), no allocation after construction.
 */
export class RetryBudget {
  readonly options: RetryBudgetOptions;
  readonly #now: () => number;
  readonly #slotMs: number;
  readonly #reserve: number;
  readonly #calls = new Array<number>(SLOTS).fill(0);
  readonly #retries = new Array<number>(SLOTS).fill(0);
  #slot = 0;
  #slotStart: number;
  #callTotal = 0;
  #retryTotal = 0;

  readonly #floor: boolean;

  /**
   * `reserve`: "added" (Finagle's RetryBudget: ratio × calls + minPerSecond ×
   * window), or "floor" (the larger of the two: a busy client never passes
   * `ratio`, a quiet one still gets minPerSecond).
   */
  constructor(options: RetryBudgetOptions, now: () => number = () => performance.now(), reserve: "added" | "floor" = "added") {
    this.options = options;
    this.#now = now;
    this.#slotMs = options.window / SLOTS;
    this.#reserve = (options.minPerSecond * options.window) / 1000;
    this.#floor = reserve === "floor";
    this.#slotStart = now();
  }

  /** Retries and hedges the window allows in all. */
  #allowance(): number {
    const earned = this.options.ratio * this.#callTotal;
    return this.#floor ? Math.max(earned, this.#reserve) : earned + this.#reserve;
  }

  /**
   * A call started (once per call, not per attempt). `now` (from the budget's
   * clock) saves a clock read when the caller has just made one.
   */
  deposit(now: number = this.#now()): void {
    this.#roll(now);
    this.#calls[this.#slot] = (this.#calls[this.#slot] ?? 0) + 1;
    this.#callTotal++;
  }

  /** A retry or hedge wants to go: true (and counted) when the budget allows it. */
  tryWithdraw(): boolean {
    this.#roll();
    if (this.#retryTotal + 1 > this.#allowance()) return false;
    this.#retries[this.#slot] = (this.#retries[this.#slot] ?? 0) + 1;
    this.#retryTotal++;
    return true;
  }

  /** Retries and hedges still allowed now (for stats and tests). */
  available(): number {
    this.#roll();
    return Math.max(0, Math.floor(this.#allowance() - this.#retryTotal));
  }

  /** Drops the slots that fell out of the window. */
  #roll(now: number = this.#now()): void {
    const passed = Math.floor((now - this.#slotStart) / this.#slotMs);
    if (passed <= 0) return;
    for (let i = 0; i < Math.min(passed, SLOTS); i++) {
      this.#slot = (this.#slot + 1) % SLOTS;
      this.#callTotal -= this.#calls[this.#slot] ?? 0;
      this.#retryTotal -= this.#retries[this.#slot] ?? 0;
      this.#calls[this.#slot] = 0;
      this.#retries[this.#slot] = 0;
    }
    this.#slotStart += passed * this.#slotMs;
  }
}

/** `retryBudget`: an object of RetryBudgetOptions (missing keys default), or false for no budget. */
export function resolveRetryBudget(input: unknown): RetryBudgetOptions | false {
  if (input === undefined) return DEFAULT_RETRY_BUDGET;
  if (input === false) return false;
  const o = requireObject("retryBudget", input);
  checkKeys("retryBudget", o, ["ratio", "minPerSecond", "window"]);
  return {
    ratio: nonNegative("retryBudget.ratio", o.ratio ?? DEFAULT_RETRY_BUDGET.ratio, 1000),
    minPerSecond: nonNegative("retryBudget.minPerSecond", o.minPerSecond ?? DEFAULT_RETRY_BUDGET.minPerSecond, 1_000_000),
    window: requirePositiveDuration("retryBudget.window", o.window ?? DEFAULT_RETRY_BUDGET.window),
  };
}

function nonNegative(option: string, value: unknown, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > max) {
    throw new ConfigError(option, `expected a number from 0 to ${max}, got ${typeof value === "number" ? String(value) : describeType(value)}`);
  }
  return value;
}

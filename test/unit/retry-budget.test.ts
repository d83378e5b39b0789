import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import { DEFAULT_RETRY_BUDGET, RetryBudget, resolveRetryBudget } from "../../src/dispatch/retry-budget.js";

function clock(start = 0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("RetryBudget (Finagle's): retries ≤ ratio × calls + minPerSecond × window, over a sliding window", () => {
  it("a quiet client still gets minPerSecond × window retries; then none", () => {
    const c = clock();
    const b = new RetryBudget({ ratio: 0.2, minPerSecond: 1, window: 10_000 }, c.now);
    let allowed = 0;
    for (let i = 0; i < 50; i++) if (b.tryWithdraw()) allowed++;
    expect(allowed).toBe(10);
    expect(b.available()).toBe(0);
  });

  it("calls buy retries at `ratio` each: 100 calls and no reserve allow 20", () => {
    const c = clock();
    const b = new RetryBudget({ ratio: 0.2, minPerSecond: 0, window: 10_000 }, c.now);
    for (let i = 0; i < 100; i++) b.deposit();
    expect(b.available()).toBe(20);
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (b.tryWithdraw()) allowed++;
    expect(allowed).toBe(20);
  });

  it("calls and retries leave the window after `window` ms, a tenth at a time", () => {
    const c = clock();
    const b = new RetryBudget({ ratio: 0.5, minPerSecond: 0, window: 1000 }, c.now);
    for (let i = 0; i < 10; i++) b.deposit();
    c.advance(500);
    for (let i = 0; i < 10; i++) b.deposit();
    expect(b.available()).toBe(10);
    for (let i = 0; i < 10; i++) expect(b.tryWithdraw()).toBe(true);
    expect(b.tryWithdraw()).toBe(false);
    // The first 10 calls leave; the 10 retries (made at 500 ms) still count against the 10 later calls' 5.
    c.advance(550);
    expect(b.available()).toBe(0);
    // Then everything has left: a fresh window.
    c.advance(1000);
    expect(b.available()).toBe(0);
    b.deposit();
    b.deposit();
    expect(b.available()).toBe(1);
  });

  it("a long idle gap clears the window in one roll (no per-slot loop beyond the window)", () => {
    const c = clock();
    const b = new RetryBudget({ ratio: 1, minPerSecond: 0, window: 100 }, c.now);
    for (let i = 0; i < 5; i++) b.deposit();
    c.advance(1e9);
    expect(b.available()).toBe(0);
  });

  it("options: defaults, false for none, and bad values are ConfigErrors naming the option", () => {
    expect(resolveRetryBudget(undefined)).toEqual(DEFAULT_RETRY_BUDGET);
    expect(DEFAULT_RETRY_BUDGET).toEqual({ ratio: 0.2, minPerSecond: 10, window: 10_000 });
    expect(resolveRetryBudget(false)).toBe(false);
    expect(resolveRetryBudget({ ratio: 0 })).toEqual({ ratio: 0, minPerSecond: 10, window: 10_000 });
    for (const [input, option] of [
      [{ ratio: -1 }, "retryBudget.ratio"],
      [{ ratio: Number.NaN }, "retryBudget.ratio"],
      [{ minPerSecond: "10" }, "retryBudget.minPerSecond"],
      [{ window: 0 }, "retryBudget.window"],
      [{ windw: 5 }, "retryBudget.windw"],
      [true, "retryBudget"],
    ] as const) {
      expect(() => resolveRetryBudget(input), option).toThrow(ConfigError);
      expect(() => resolveRetryBudget(input)).toThrow(option);
    }
  });
});

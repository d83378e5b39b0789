import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConfigError, PingTimeoutError } from "../../src/core/errors.js";
import { HealthChecker, type HealthReport, type Pingable } from "../../src/health/health-checker.js";
import { HEALTH_DEFAULTS, resolveHealth, type HealthOptions } from "../../src/health/options.js";

type Outcome = "ok" | "fail" | "hang";

/** A peer whose PINGs answer as scripted: PONG at once, fail at once, or never settle. */
class FakePeer implements Pingable {
  readonly sent: number[] = [];
  readonly timeouts: number[] = [];
  #script: Outcome[];
  #then: Outcome;
  /** Resolvers of hung PINGs, so a test can answer one late. */
  readonly hung: Array<(rtt: number) => void> = [];

  constructor(
    script: Outcome[] = [],
    then: Outcome = "ok",
    readonly rtt = 5,
  ) {
    this.#script = [...script];
    this.#then = then;
  }

  /** Changes what every later PING does. */
  set(outcome: Outcome): void {
    this.#script = [];
    this.#then = outcome;
  }

  ping(timeoutMs: number): Promise<number> {
    this.sent.push(Date.now());
    this.timeouts.push(timeoutMs);
    const outcome = this.#script.shift() ?? this.#then;
    if (outcome === "ok") return Promise.resolve(this.rtt);
    if (outcome === "fail") return Promise.reject(new Error("connection refused"));
    return new Promise<number>((resolve) => this.hung.push(resolve));
  }
}

interface Timed {
  at: number;
  report: HealthReport;
}

/**
 * Node runs setTimeout(fn, 0) after 1 ms (fake timers copy that), so "at once"
 * means within 1 ms here; the tests that are not about that allow for it.
 */
function expectAround(actual: number | undefined, expected: number, slack = 1): void {
  expect(actual).toBeGreaterThanOrEqual(expected);
  expect(actual).toBeLessThanOrEqual(expected + slack);
}

function opts(over: Partial<HealthOptions> = {}): HealthOptions {
  return { interval: 1000, timeout: 250, unhealthyAfter: 2, healthyAfter: 2, jitter: 0, suspectAfter: 0, ...over };
}

function setup(peer: FakePeer, options: HealthOptions, random: () => number = () => 0.5) {
  const reports: Timed[] = [];
  const checker = new HealthChecker(peer, options, (report) => reports.push({ at: Date.now(), report }), random);
  const of = (type: HealthReport["type"]): Timed[] => reports.filter((r) => r.report.type === type);
  return { checker, reports, of };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});

afterEach(() => {
  vi.useRealTimers();
});

describe("HealthChecker", () => {
  it("sends the first PING one interval after start (jitter 0), not before", async () => {
    const peer = new FakePeer();
    const { checker, of } = setup(peer, opts());
    checker.start(3);
    await vi.advanceTimersByTimeAsync(999);
    expect(peer.sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(peer.sent).toEqual([1000]);
    expect(peer.timeouts).toEqual([250]);
    expect(of("ping-ok")).toHaveLength(1);
    expect(of("ping-ok")[0]!.report).toEqual({ type: "ping-ok", rtt: 5, rttEwma: 3 + 0.3 * (5 - 3) });
    // While healthy, PINGs keep coming every interval.
    await vi.advanceTimersByTimeAsync(3000);
    expect(peer.sent).toEqual([1000, 2000, 3000, 4000]);
    checker.stop();
  });

  it("jitter shortens each interval by a fraction in [0, jitter]", async () => {
    const peer = new FakePeer();
    const { checker } = setup(peer, opts({ jitter: 0.2 }), () => 0.5);
    checker.start();
    await vi.advanceTimersByTimeAsync(2000);
    // 1000 × (1 − 0.2 × 0.5) = 900 between PINGs.
    expect(peer.sent).toEqual([900, 1800]);
    checker.stop();
  });

  it("a PING with no PONG is a failure (PingTimeoutError) at exactly `timeout`", async () => {
    const peer = new FakePeer([], "hang");
    const { checker, of } = setup(peer, opts({ timeout: 300, unhealthyAfter: 5 }));
    checker.start();
    await vi.advanceTimersByTimeAsync(1000 + 299);
    expect(peer.sent).toEqual([1000]);
    expect(of("ping-failed")).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    const failed = of("ping-failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]!.at).toBe(1300);
    const r = failed[0]!.report;
    expect(r.type === "ping-failed" && r.error).toBeInstanceOf(PingTimeoutError);
    expect(r.type === "ping-failed" && r.consecutive).toBe(1);
    checker.stop();
  });

  it("a PONG that arrives after the timeout does not count as a success", async () => {
    const peer = new FakePeer([], "hang");
    const { checker, of } = setup(peer, opts({ timeout: 300, unhealthyAfter: 5 }));
    checker.start();
    await vi.advanceTimersByTimeAsync(1300);
    expect(of("ping-failed")).toHaveLength(1);
    peer.hung[0]!(1); // the PONG to the PING sent at 1000, 300 ms late
    await vi.advanceTimersByTimeAsync(100);
    expect(peer.sent.length).toBeGreaterThanOrEqual(2);
    expect(of("ping-ok")).toEqual([]);
    expect(checker.rtt.value).toBeUndefined();
    checker.stop();
  });

  it("reports unhealthy once after `unhealthyAfter` consecutive failures, not before", async () => {
    const peer = new FakePeer([], "hang");
    const { checker, of } = setup(peer, opts({ timeout: 250, unhealthyAfter: 3 }));
    checker.start();
    // PINGs at ~1000, ~1250, ~1500 (each failure triggers the next at once); the third times out at ~1750.
    await vi.advanceTimersByTimeAsync(1740);
    expect(of("ping-failed")).toHaveLength(2);
    expectAround(of("ping-failed")[0]!.at, 1250);
    expectAround(of("ping-failed")[1]!.at, 1500, 2);
    expect(of("unhealthy")).toEqual([]);
    expect(checker.healthy).toBe(true);
    await vi.advanceTimersByTimeAsync(20);
    expect(of("ping-failed")).toHaveLength(3);
    expect(of("unhealthy")).toHaveLength(1);
    expectAround(of("unhealthy")[0]!.at, 1750, 2);
    expect(of("unhealthy")[0]!.at).toBe(of("ping-failed")[2]!.at);
    const u = of("unhealthy")[0]!.report;
    expect(u.type === "unhealthy" && u.error).toBeInstanceOf(PingTimeoutError);
    expect(checker.healthy).toBe(false);
    expect(checker.lastError).toBeInstanceOf(PingTimeoutError);
    // Still failing: probing continues at the interval, and no second "unhealthy".
    await vi.advanceTimersByTimeAsync(5000);
    expect(of("unhealthy")).toHaveLength(1);
    // Unhealthy: the next PING waits a full interval.
    expect(peer.sent[3]! - of("unhealthy")[0]!.at).toBe(1000);
    checker.stop();
  });

  it("after a failure while healthy, the next PING goes out at once (0 ms)", async () => {
    const peer = new FakePeer(["fail"], "ok");
    const { checker, of } = setup(peer, opts({ unhealthyAfter: 2 }));
    checker.start();
    await vi.advanceTimersByTimeAsync(1001);
    expect(peer.sent).toHaveLength(2);
    expect(peer.sent[0]).toBe(1000);
    // At once: no interval, no jitter; Node's timers cannot go below 1 ms.
    expect(peer.sent[1]! - peer.sent[0]!).toBeLessThanOrEqual(1);
    expect(of("ping-failed")).toHaveLength(1);
    expect(of("ping-ok")).toHaveLength(1);
    expect(of("unhealthy")).toEqual([]);
    checker.stop();
  });

  it.each([
    ["jitter 0", { ...HEALTH_DEFAULTS, jitter: 0 }, (): number => 0.5],
    ["default jitter, worst-case draw", { ...HEALTH_DEFAULTS }, (): number => 0],
    ["default jitter, best-case draw", { ...HEALTH_DEFAULTS }, (): number => 0.999999],
  ] as Array<[string, HealthOptions, () => number]>)(
    "with HEALTH_DEFAULTS (%s), a frozen peer is reported unhealthy within 2500 ms of its last PONG",
    async (_, options, random) => {
      // Healthy for a while; the peer freezes right after its third PONG.
      const peer = new FakePeer(["ok", "ok", "ok"], "hang");
      const { checker, of } = setup(peer, options, random);
      checker.start(1);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(of("ping-ok")).toHaveLength(3);
      const lastPong = of("ping-ok")[2]!.at;
      const unhealthy = of("unhealthy");
      expect(unhealthy).toHaveLength(1);
      const elapsed = unhealthy[0]!.at - lastPong;
      expect(elapsed, "ms from the last PONG to the unhealthy report (interval 1000 + 2 × timeout 750)").toBeLessThanOrEqual(2500);
      expect(elapsed).toBeGreaterThanOrEqual(2 * 750);
      // The worst case (full interval) is exactly interval + 2 × timeout.
      if (random() === 0 || options.jitter === 0) expect(elapsed).toBe(2500);
      checker.stop();
    },
  );

  it("reports healthy after `healthyAfter` consecutive successes", async () => {
    const peer = new FakePeer(["fail", "fail"], "ok");
    const { checker, of } = setup(peer, opts({ unhealthyAfter: 2, healthyAfter: 3 }));
    checker.start();
    await vi.advanceTimersByTimeAsync(1001);
    expect(of("unhealthy")).toHaveLength(1);
    const t0 = of("unhealthy")[0]!.at;
    expectAround(t0, 1000);
    // While unhealthy, PINGs come at the full interval: t0 + 1000, + 2000, + 3000.
    await vi.advanceTimersByTimeAsync(t0 + 2999 - Date.now());
    expect(of("ping-ok").map((r) => r.at - t0)).toEqual([1000, 2000]);
    expect(of("healthy")).toEqual([]);
    expect(checker.healthy).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(of("healthy").map((r) => r.at - t0)).toEqual([3000]);
    expect(checker.healthy).toBe(true);
    await vi.advanceTimersByTimeAsync(5000);
    expect(of("healthy")).toHaveLength(1);
    checker.stop();
  });

  it("a failure while unhealthy restarts the success count", async () => {
    const peer = new FakePeer(["fail", "fail", "ok", "fail", "ok"], "ok");
    const { checker, of } = setup(peer, opts({ unhealthyAfter: 2, healthyAfter: 2 }));
    checker.start();
    await vi.advanceTimersByTimeAsync(1001); // fail, fail → unhealthy at t0
    expect(of("unhealthy")).toHaveLength(1);
    const t0 = of("unhealthy")[0]!.at;
    await vi.advanceTimersByTimeAsync(3500); // ok (t0+1000), fail (t0+2000), ok (t0+3000): never two in a row
    expect(of("ping-ok")).toHaveLength(2);
    expect(of("healthy")).toEqual([]);
    await vi.advanceTimersByTimeAsync(1000); // ok (t0+4000): two in a row
    expect(of("healthy").map((r) => r.at - t0)).toEqual([4000]);
    checker.stop();
  });

  it("a success resets the failure count", async () => {
    const peer = new FakePeer(["fail", "ok", "fail", "ok", "fail", "fail"], "ok");
    const { checker, of } = setup(peer, opts({ unhealthyAfter: 2 }));
    checker.start();
    // ~1000: fail, ok (at once); ~2000: fail, ok; ~3000: fail, fail → unhealthy.
    await vi.advanceTimersByTimeAsync(2500);
    expect(of("ping-failed").map((r) => (r.report.type === "ping-failed" ? r.report.consecutive : -1))).toEqual([1, 1]);
    expect(of("unhealthy")).toEqual([]);
    expect(checker.healthy).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(of("ping-failed").map((r) => (r.report.type === "ping-failed" ? r.report.consecutive : -1))).toEqual([1, 1, 1, 2]);
    expect(of("unhealthy")).toHaveLength(1);
    expectAround(of("unhealthy")[0]!.at, 3000, 5);
    checker.stop();
  });

  it("stop() between PINGs clears every timer; nothing is sent or reported afterwards", async () => {
    const peer = new FakePeer();
    const { checker, reports } = setup(peer, opts());
    checker.start();
    await vi.advanceTimersByTimeAsync(1500);
    const before = reports.length;
    expect(vi.getTimerCount()).toBe(1);
    checker.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(peer.sent).toEqual([1000]);
    expect(reports).toHaveLength(before);
  });

  it("stop() while a PING is outstanding: no report when it later settles or times out", async () => {
    const peer = new FakePeer([], "hang");
    const { checker, reports } = setup(peer, opts({ timeout: 500 }));
    checker.start();
    await vi.advanceTimersByTimeAsync(1100);
    expect(peer.sent).toEqual([1000]);
    checker.stop();
    peer.hung[0]!(2);
    await vi.advanceTimersByTimeAsync(10_000);
    // The PING going out was reported (the pool watches it for an idle peer gone silent); nothing after stop().
    expect(reports).toEqual([{ at: expect.any(Number), report: { type: "ping-sent" } }]);
    expect(peer.sent).toEqual([1000]);
  });

  it("stop() while a PING is outstanding clears every timer, including the PING's timeout", async () => {
    const peer = new FakePeer([], "hang");
    const { checker } = setup(peer, opts({ timeout: 500 }));
    checker.start();
    await vi.advanceTimersByTimeAsync(1100);
    expect(peer.sent).toEqual([1000]);
    checker.stop();
    // DESIGN: every long-lived thing is closable; stop() should leave no timer behind.
    expect(vi.getTimerCount()).toBe(0);
  });

  it("start() after stop() while a PING is outstanding does not run two PING loops", async () => {
    const peer = new FakePeer(["hang"], "ok");
    const { checker } = setup(peer, opts({ timeout: 500 }));
    checker.start();
    await vi.advanceTimersByTimeAsync(1100); // the PING sent at 1000 hangs
    checker.stop();
    checker.start(); // next PING due at 2100
    peer.hung[0]!(2); // the old PING answers late, after the restart
    await vi.advanceTimersByTimeAsync(4000 - 1100);
    // One loop: PINGs at 2100, 3100 — one per interval.
    expect(peer.sent).toEqual([1000, 2100, 3100]);
    checker.stop();
  });
});

describe("resolveHealth", () => {
  function configError(fn: () => unknown): ConfigError {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error("expected a ConfigError, nothing was thrown");
  }

  it("fills defaults", () => {
    expect(resolveHealth(undefined)).toEqual(HEALTH_DEFAULTS);
    expect(resolveHealth({ interval: 500, timeout: undefined })).toEqual({ ...HEALTH_DEFAULTS, interval: 500 });
  });

  it.each([
    [{ interval: -1 }, "health.interval"],
    [{ interval: 0 }, "health.interval"],
    [{ interval: Number.NaN }, "health.interval"],
    [{ timeout: 0 }, "health.timeout"],
    [{ timeout: -5 }, "health.timeout"],
    [{ unhealthyAfter: 1.5 }, "health.unhealthyAfter"],
    [{ unhealthyAfter: 0 }, "health.unhealthyAfter"],
    [{ healthyAfter: 2.5 }, "health.healthyAfter"],
    [{ jitter: 1.5 }, "health.jitter"],
    [{ jitter: -0.1 }, "health.jitter"],
  ] as Array<[Partial<HealthOptions>, string]>)("rejects %o with a ConfigError naming %s", (input, option) => {
    const err = configError(() => resolveHealth(input));
    expect(err.option).toBe(option);
    expect(err.message).toContain(option);
    expect(err.code).toBe("ERR_DIALTONE_CONFIG");
  });

  it("rejects unknown keys, naming them", () => {
    const err = configError(() => resolveHealth({ intervall: 100 } as Partial<HealthOptions>));
    expect(err.option).toBe("health.intervall");
    expect(err.message).toContain("health.intervall");
  });

  it("uses the prefix in the option name", () => {
    expect(configError(() => resolveHealth({ interval: 0 }, "broker.health")).option).toBe("broker.health.interval");
  });

  it.each(["toString", "constructor", "hasOwnProperty"])("rejects the unknown key %s (inherited names are not options)", (key) => {
    const input = JSON.parse(`{"${key}": 5}`) as Partial<HealthOptions>;
    const err = configError(() => resolveHealth(input));
    expect(err.option).toBe(`health.${key}`);
  });
});

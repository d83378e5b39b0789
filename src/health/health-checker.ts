import { systemClock, type Clock, type Timer } from "../core/clock.js";
import { PingTimeoutError, asError } from "../core/errors.js";
import type { HealthOptions } from "./options.js";
import { RttEstimate } from "./rtt.js";

/** Anything that can be PINGed: resolves with the round trip in ms. */
export interface Pingable {
  ping(timeoutMs: number): Promise<number>;
}

export type HealthReport =
  /** A PING went out: until its PONG, the pool can tell an idle peer that went silent (pool/overdue.ts's pingDeadline). */
  | { type: "ping-sent" }
  | { type: "ping-ok"; rtt: number; rttEwma: number }
  | { type: "ping-failed"; error: Error; consecutive: number }
  | { type: "healthy" }
  | { type: "unhealthy"; error: Error };

/**
 * The PING/PONG loop for one pingable thing. It owns its timers and the
 * timeout (it does not trust the pingable to time out), counts consecutive
 * results, and reports every PING and each healthy/unhealthy transition.
 *
 * After a failure while healthy, the next PING goes out at once: a suspect
 * peer is confirmed or cleared in `timeout`, not `interval + timeout`.
 */
export class HealthChecker {
  readonly rtt = new RttEstimate();
  #target: Pingable;
  #options: HealthOptions;
  #report: (r: HealthReport) => void;
  #random: () => number;
  #healthy = true;
  #failures = 0;
  #successes = 0;
  #clock: Clock;
  #timer: Timer | undefined;
  #pingTimer: Timer | undefined;
  #stopped = true;
  #pinging = false;
  /** Bumped by stop(): a PING from an earlier run must not restart the loop. */
  #generation = 0;
  #lastError: Error | undefined;

  constructor(target: Pingable, options: HealthOptions, report: (r: HealthReport) => void, random: () => number = Math.random, clock: Clock = systemClock) {
    this.#clock = clock;
    this.#target = target;
    this.#options = options;
    this.#report = report;
    this.#random = random;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** Starts the loop; `firstRtt` is the warm-up PING that proved the peer. */
  start(firstRtt?: number): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    if (firstRtt !== undefined) this.rtt.add(firstRtt);
    this.#schedule(this.#nextInterval());
  }

  /** PINGs now rather than at the next interval (a suspect member); no-op while one is out. */
  probeNow(): void {
    if (this.#stopped || this.#pinging) return;
    this.#timer?.cancel();
    this.#timer = undefined;
    void this.#pingOnce();
  }

  stop(): void {
    this.#stopped = true;
    this.#generation++;
    this.#timer?.cancel();
    this.#pingTimer?.cancel();
    this.#timer = undefined;
    this.#pingTimer = undefined;
  }

  #nextInterval(): number {
    const { interval, jitter } = this.#options;
    return interval * (1 - jitter * this.#random());
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    // 0 means now: a timer would add Node's 1 ms minimum to the detection bound.
    if (ms <= 0) return void this.#pingOnce();
    // The clock's timers are unref'd: a health loop never keeps the process alive.
    this.#timer = this.#clock.setTimeout(() => void this.#pingOnce(), ms);
  }

  async #pingOnce(): Promise<void> {
    this.#timer = undefined;
    if (this.#stopped) return;
    const generation = this.#generation;
    const { timeout } = this.#options;
    this.#pinging = true;
    this.#report({ type: "ping-sent" });
    try {
      const rtt = await Promise.race([
        this.#target.ping(timeout),
        new Promise<never>((_, reject) => {
          this.#pingTimer = this.#clock.setTimeout(() => reject(new PingTimeoutError(timeout)), timeout);
        }),
      ]);
      this.#pingTimer?.cancel();
      this.#pinging = false;
      if (this.#stopped || generation !== this.#generation) return;
      this.#onSuccess(rtt);
    } catch (err) {
      this.#pingTimer?.cancel();
      this.#pinging = false;
      if (this.#stopped || generation !== this.#generation) return;
      this.#onFailure(asError(err));
    }
  }

  #onSuccess(rtt: number): void {
    this.#failures = 0;
    this.#successes++;
    const rttEwma = this.rtt.add(rtt);
    this.#report({ type: "ping-ok", rtt, rttEwma });
    if (this.#stopped) return;
    if (!this.#healthy && this.#successes >= this.#options.healthyAfter) {
      this.#healthy = true;
      this.#report({ type: "healthy" });
    }
    this.#schedule(this.#healthy ? this.#nextInterval() : this.#options.interval);
  }

  #onFailure(error: Error): void {
    this.#successes = 0;
    this.#failures++;
    this.#lastError = error;
    this.#report({ type: "ping-failed", error, consecutive: this.#failures });
    if (this.#stopped) return;
    if (this.#healthy && this.#failures >= this.#options.unhealthyAfter) {
      this.#healthy = false;
      this.#report({ type: "unhealthy", error });
    }
    if (this.#stopped) return;
    // Suspect but not yet unhealthy: confirm at once. Unhealthy: keep probing at the interval.
    this.#schedule(this.#healthy ? 0 : this.#options.interval);
  }
}

/**
 * Load as an object, as tower's `load` module has it (`PendingRequests`,
 * `PeakEwma`): each member owns one, the pool calls `start()`/`end()` around
 * every request, and the pool's P2C pick only reads `cost()`.
 *
 * `cost()` is a read: it changes no state, emits nothing and allocates
 * nothing, so reading it twice per pick changes nothing although the
 * peak-EWMA estimate decays with time. (tower writes the decayed value back on every read; the
 * exponential decay composes, e^-a · e^-b = e^-(a+b), so computing it from
 * the last update gives the same number without a write.)
 */
export interface Load {
  /** Requests started and not yet ended. */
  readonly inFlight: number;
  /** A request was handed to the member. */
  start(): void;
  /**
   * A request ended. `latencyMs` is given when the member answered (a sample
   * of how fast it is); a request cut short says nothing about its speed.
   */
  end(latencyMs?: number, now?: number): void;
  /** Lower is better. A pure read of the load's state at `now` (the pool passes one clock reading per pick; default: read it). */
  cost(now?: number): number;
  /** The latency estimate at `now`, ms, for loads that keep one (peak-EWMA); undefined before the first sample. */
  estimate?(now?: number): number | undefined;
  /** The member's PING round trip changed (ms; the health loop keeps measuring it). */
  setRtt(rttMs: number | undefined): void;
}

/** Reads milliseconds on a monotonic clock: the channel's clock (core/clock.ts) as the pool was given it. */
export type ReadNow = () => number;

/** tower's `PendingRequests`: the cost is what the member is doing right now. */
export class InFlight implements Load {
  #n = 0;

  get inFlight(): number {
    return this.#n;
  }

  start(): void {
    this.#n++;
  }

  end(_latencyMs?: number, _now?: number): void {
    // A double release must not drive the count negative and make the member look idle.
    if (this.#n > 0) this.#n--;
  }

  cost(_now?: number): number {
    return this.#n;
  }

  setRtt(_rttMs: number | undefined): void {
    // The count alone is the cost: no latency to floor.
  }
}

export interface PeakEwmaOptions {
  now: ReadNow;
  /** How fast the estimate forgets, ms (tower's `decay_ns`). */
  decay: number;
}

/** Latency assumed before any PING or response was measured (ms), so new members get tried. */
const DEFAULT_LATENCY = 1;

/**
 * tower's `PeakEwma`: cost = latency estimate × (in flight + 1), so a slow
 * member must be proportionally idle to win a pick.
 *
 * The estimate is peak-sensitive (a slower sample replaces it at once) and
 * otherwise an EWMA whose weight depends on the time since the last update.
 * It also decays toward zero on read: without that, a member that once
 * answered slowly loses every P2C comparison, so it is never picked, never
 * sampled again, and starved for good (issue 9, bug 3).
 */
export class PeakEwma implements Load {
  #n = 0;
  /** ms, as of #at; 0 before the first sample. */
  #estimate = 0.0;
  #at = 0;
  #sampled = false;
  /**
   * The member's PING round trip (ms), else DEFAULT_LATENCY. No request is
   * faster than a round trip, so it floors the estimate as that decays
   * toward zero. A number kept here (setRtt) rather than read through a
   * callback: cost() runs twice per pick.
   */
  #floor = DEFAULT_LATENCY;
  readonly #now: ReadNow;
  /** 1 / decay, per ms: a multiplication on the hot path instead of a division. */
  readonly #rate: number;

  constructor(options: PeakEwmaOptions) {
    this.#now = options.now;
    this.#rate = 1 / options.decay;
  }

  get inFlight(): number {
    return this.#n;
  }

  setRtt(rttMs: number | undefined): void {
    this.#floor = rttMs !== undefined && rttMs >= 0 ? rttMs : DEFAULT_LATENCY;
  }

  /** The latency estimate at `now` (ms), decayed since its last update; undefined before the first sample. */
  estimate(now: number = this.#now()): number | undefined {
    return this.#sampled ? this.#estimate * weight(now - this.#at, this.#rate) : undefined;
  }

  start(): void {
    this.#n++;
  }

  end(latencyMs?: number, at?: number): void {
    if (this.#n > 0) this.#n--;
    // NaN or a negative or infinite duration (a clock step) is not a sample.
    if (latencyMs === undefined || !(latencyMs >= 0 && latencyMs < Number.POSITIVE_INFINITY)) return;
    const now = at === undefined ? this.#now() : at;
    // Before the first sample the estimate is 0: the first sample replaces it as a peak would.
    const w = weight(now - this.#at, this.#rate);
    const decayed = this.#estimate * w;
    // Peak-sensitive: a sample slower than what we believe now moves the estimate at once.
    this.#estimate = latencyMs > decayed ? latencyMs : decayed + latencyMs * (1 - w);
    this.#at = now;
    this.#sampled = true;
  }

  cost(now: number = this.#now()): number {
    const floor = this.#floor;
    // Before the first sample the estimate is 0, so the floor decides (no test of #sampled on this hot path).
    const e = this.#estimate * weight(now - this.#at, this.#rate);
    return (e > floor ? e : floor) * (this.#n + 1);
  }
}

/**
 * e^(-elapsed × rate), rate = 1/decay: 1 just after an update, toward 0 as time passes.
 * On a busy member the last update was microseconds ago, where 1 − x is
 * e^−x to within x²/2 (≤ 5·10⁻⁷ below x = 10⁻³) and costs a tenth of
 * Math.exp, which this runs three times per request.
 */
function weight(elapsed: number, rate: number): number {
  if (!(elapsed > 0)) return 1;
  const x = elapsed * rate;
  return x < 1e-3 ? 1 - x : Math.exp(-x);
}

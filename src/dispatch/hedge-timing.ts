import { requireInteger, requirePositiveDuration } from "../core/duration.js";
import { ConfigError } from "../core/errors.js";
import { checkKeys, describeType, requireObject } from "../core/options-check.js";
import { RetryBudget } from "./retry-budget.js";

/**
 * `hedge: { delay, max, maxExtraLoad }` (off unless given): an idempotent
 * call with no response after `delay` ms — or after the channel's running
 * p95 — is sent again to a different member, up to `max` extra attempts; the
 * first complete response wins and the others are cancelled. gRFC A6's
 * hedgingDelay / maxAttempts, Finagle's backup requests (whose
 * `maxExtraLoad` bounds the hedges with a budget of their own).
 */
export interface HedgeOptions {
  /**
   * ms, or "p95": the 95th percentile of the first attempts of the channel's
   * recent calls, never sooner than 5 times their median, taken up to the
   * 98th (and then no sooner than up to 20 medians) while maxExtraLoad
   * refuses hedges or most hedged calls are answered by their first attempt
   * anyway (default "p95"). A "p95" hedge also waits for I/O after an event-loop
   * stall, and until a call started later has been answered.
   */
  delay: number | "p95";
  /** Extra attempts per call (default 1). */
  max: number;
  /**
   * Most hedges per hedgeable call, over a sliding 10 s window (at least one
   * a second, so a quiet channel can still hedge); false: only the retry
   * budget bounds them. A hedge past it waits in line for room, the longest
   * waiting first. Default 0.05 with delay "p95" (what a p95 delay
   * should cost: a latency shift, or an event-loop stall that makes every
   * waiting call overdue at once, cannot turn into a burst of hedges), false
   * with a fixed delay (the caller chose when to hedge; NATS's
   * attemptTimeout must be able to ask again for every lost request).
   */
  maxExtraLoad: number | false;
}

/** First attempts the running p95 is taken over. */
const WINDOW = 512;
/** Below this many samples there is no p95 yet, and no hedge: a guess would hedge everything or nothing. */
const MIN_SAMPLES = 32;
/** The p95 is re-sorted after this many new samples, not on every call. */
const RECOMPUTE_EVERY = 32;
/**
 * The percentile a "p95" delay hedges at: 95 while hedges are worth their
 * requests, up to 98 (one point per recompute, back down by half a point
 * per recompute in which hedges won and none was refused) while either
 *
 * - maxExtraLoad refuses hedges. At p95 the hedges ask for about all of a
 *   0.05 budget, so each room it makes goes to whichever call just passed
 *   the delay — most of them a few ms from their answer — and a call that is
 *   stuck waits in line for the next room (bench/tail, every backend slow at
 *   random: its stuck calls waited ~40 ms for a hedge). A delay a little
 *   later asks for less than the budget, and the stuck calls are hedged at
 *   once; or
 * - the hedges lose: more than half of the hedged calls were answered by
 *   their first attempt (LOSING). The delay then sits in the body of the
 *   latency distribution, where a call is a few ms from its answer and a new
 *   attempt cannot beat it, and the hedges only add load (bench/tail, all
 *   backends healthy: 14–33 % of the hedges sent at p95 won, more only
 *   while the host was busy; every backend slow at random 1 %: 34–50 %, and
 *   90 % of those sent at a fixed 20 ms).
 *
 * Never past 98: a tail 1 % slow (The Tail at Scale) must stay past the
 * delay. Its hedged calls' first attempts are cancelled and recorded as the
 * time they ran, just past the delay; a percentile among them would follow
 * them up, a hedge's time per recompute, into the tail (measured with p99:
 * that scenario's stuck calls then waited 90–140 ms).
 */
const Q_MIN = 0.95;
const Q_MAX = 0.98;
const Q_UP = 0.01;
const Q_DOWN = 0.005;
/** Fewer hedged calls than this answered since the last recompute say nothing of how hedges fare. */
const MIN_OUTCOMES = 4;
/**
 * Hedges lose when fewer than this share of the hedged calls were answered
 * by a hedge. Not a lower bar, nor a budget that shrinks while they lose:
 * the share is counted over a handful of calls, and with every backend slow
 * at random 1 % (bench/tail) a bar of 1 in 3 was missed by chance often
 * enough that maxExtraLoad, halved on each miss, left the stuck calls
 * waiting in its line (the median 1 s slice's p99.9 went from 25 to 48–61 ms).
 */
const LOSING = 1 / 2;
/**
 * A "p95" delay is at least this many times the median first attempt. A new
 * attempt takes about the median, so a call only a few medians in is in the
 * body of the distribution (scheduling, queueing), a few ms from its answer,
 * and its hedge rarely answers first: bench/tail with healthy backends on a
 * quiet host, where the unhedged p99 was 3.4–3.9 ms at a median of 1 ms (so
 * p95 under 4 medians), 14–33 % of the hedges sent at p95 won, and the
 * hedged client's median 1 s slice p99.9 was 1.1–2.2× the unhedged
 * client's in each quiet round, its p99 about twice in most. With every
 * backend slow at random 1 %, a fixed 20 ms delay (about 20 medians) cut
 * the tail as far as p95 did, with a quarter to two fifths of the hedges,
 * 92–97 % of them winning. The Tail at Scale's slow requests are tens
 * of medians slow. Finagle's minSendBackupAfterMs is the same guard in
 * absolute ms.
 */
const MIN_MEDIANS = 5;
/**
 * Past p98 the floor rises: MIN_MEDIANS doubles per recompute in which the
 * hedges are still refused or losing at p98, up to MAX_MEDIANS, and comes
 * back ÷ √2 per recompute in which they win and none is refused (the
 * percentile's own pace: up one, down half) before the percentile comes
 * down. At p98 the delay can still sit in the body: on a quiet host the
 * first attempts' p98 was 1.5–2 ms at a median under 0.5 ms, where 14–32 %
 * of the hedges won, and those hedges spent all of maxExtraLoad on calls a
 * few ms from their answer, so the calls really stuck (bench/tail, one
 * backend 300 ms late on 5 % of its requests) waited in maxExtraLoad's line
 * for room (a hedge per 20 calls started): p99.9 16–21 ms hedged against
 * 6–9 ms unhedged in the same rounds. The hedges' own record moves it, not
 * a latency guess, and it is a number of medians, which the cancelled first
 * attempts (recorded at the delay) cannot move as they move a percentile.
 * MAX_MEDIANS: a fixed 20 ms delay (about 20 medians) cut every 100 ms slow
 * request of "each slow at random" with 92–97 % of its hedges winning; The
 * Tail at Scale's slow requests are tens of medians slow, and the delay
 * must stay short of them.
 */
const MAX_MEDIANS = 20;
const MEDIANS_UP = 2;
const MEDIANS_DOWN = Math.SQRT2;
export const MAX_HEDGES = 10;
/** Default maxExtraLoad with delay "p95": the share of calls a p95 delay hedges. */
export const DEFAULT_MAX_EXTRA_LOAD = 0.05;
/** The maxExtraLoad budget's window, and its floor: hedges a quiet channel may send whatever its calls. */
const LOAD_WINDOW_MS = 10_000;
const LOAD_MIN_PER_SECOND = 1;

/**
 * When a call's next hedge is due, and whether one may go (maxExtraLoad).
 * With delay "p95" it learns the latency of each call's *first* attempt —
 * the attempt whose lateness the delay decides on — not of whichever
 * attempt won: a hedged call's winner is a fast attempt by selection, so
 * learning from winners would pull the p95 down and hedge ever more. A first
 * attempt cancelled because another won is a censored sample: its latency
 * is at least the time it ran. That lower bound is recorded; it only ever
 * sits below the true latency, and since the cancellation comes after the
 * delay plus the winner's own time, it lies above the current delay — on the
 * side of the p95 that the true value would be on. A delay that starts low
 * therefore climbs to the true p95 instead of staying low.
 */
export class HedgeTiming {
  readonly max: number;
  readonly #fixed: number | undefined;
  /** maxExtraLoad's own budget; undefined: none. */
  readonly #load: RetryBudget | undefined;
  /** Hedges past maxExtraLoad, waiting for room, longest-waiting first (a Set keeps insertion order). */
  readonly #line = new Set<() => void>();
  readonly #samples = new Float64Array(WINDOW);
  readonly #scratch = new Float64Array(WINDOW);
  #count = 0;
  #next = 0;
  #fresh = 0;
  #p95: number | undefined;
  /** The percentile the delay is taken at (Q_MIN..Q_MAX). */
  #q = Q_MIN;
  /** The delay is at least this many medians (MIN_MEDIANS..MAX_MEDIANS): above the least only while hedges still lose at Q_MAX. */
  #medians = MIN_MEDIANS;
  /** Hedges maxExtraLoad refused since the last recompute. */
  #refusals = 0;
  /** Hedged calls answered since the last recompute: by a hedge, by their first attempt. */
  #won = 0;
  #lost = 0;
  /** Hedgeable calls started: each call's ticket is its place in that order. */
  #started = 0;
  /** The latest ticket of a call that has been answered. */
  #answeredUpTo = 0;

  /** `now`: the budget's clock (tests pass a fake one). */
  constructor(options: HedgeOptions, now?: () => number) {
    this.max = options.max;
    this.#fixed = options.delay === "p95" ? undefined : options.delay;
    this.#load =
      options.maxExtraLoad === false
        ? undefined
        : new RetryBudget({ ratio: options.maxExtraLoad, minPerSecond: LOAD_MIN_PER_SECOND, window: LOAD_WINDOW_MS }, now, "floor");
  }

  /**
   * A hedgeable call started (once per call): it adds maxExtraLoad to what
   * hedges may spend, and the room it makes goes to the hedge that has
   * waited longest.
   */
  deposit(now?: number): void {
    if (!this.#load) return;
    this.#load.deposit(now);
    this.#serveLine();
  }

  /** A hedgeable call started: its ticket (its place among the calls started), for overtaken(). */
  ticket(): number {
    return ++this.#started;
  }

  /** The call with this ticket was answered. */
  answered(ticket: number): void {
    if (ticket > this.#answeredUpTo) this.#answeredUpTo = ticket;
  }

  /**
   * Whether a call still waiting is slow on its own: some call started after
   * it has been answered already, or none has started since (nothing to
   * compare with). When calls started later are all still waiting too, the
   * wait is not this call's member's doing: our event loop has not read the
   * answers yet (timers run before I/O in each turn), or every member is
   * slow alike. A hedge then cuts nothing and adds load. Always true with a
   * fixed delay: the caller chose when to ask again (NATS's attemptTimeout
   * must ask again for every lost request, however many are lost at once).
   */
  overtaken(ticket: number): boolean {
    return this.#fixed !== undefined || this.#started === ticket || this.#answeredUpTo > ticket;
  }

  /** Room the budget has (made by deposits, or by time: its floor refills) goes to the longest waiting first. */
  #serveLine(): void {
    const load = this.#load as RetryBudget;
    while (this.#line.size > 0 && load.tryWithdraw()) {
      const next = this.#line.values().next().value as () => void;
      this.#line.delete(next);
      next();
    }
  }

  /**
   * A hedge wants to go: true (and counted) while within maxExtraLoad (or
   * when there is no such bound). Otherwise false, and `granted` joins the
   * line: it is called (already counted) when room is made for it, unless it
   * leaves the line first. While others wait, a newcomer waits behind them;
   * a caller asking again keeps its place (it is served before it asks).
   */
  tryWithdraw(granted: () => void): boolean {
    if (!this.#load) return true;
    // Those already waiting go first, with whatever room time has made since the last deposit:
    // once calls stop coming, no deposit would ever serve them. A caller already in line keeps
    // its place (and is told through `granted` if its turn came now).
    const waiting = this.#line.has(granted);
    this.#serveLine();
    if (waiting) return false;
    if (this.#line.size === 0 && this.#load.tryWithdraw()) return true;
    this.#line.add(granted);
    this.#refusals++;
    return false;
  }

  /** The call ended: its hedge no longer waits. */
  leaveLine(granted: () => void): void {
    this.#line.delete(granted);
  }

  /**
   * A call that sent a hedge was answered: `won` when a hedge's answer came
   * first, false when the first attempt's did (the hedge cost a request and
   * cut nothing).
   */
  hedgeAnswered(won: boolean): void {
    if (won) this.#won++;
    else this.#lost++;
  }

  /**
   * Up a point while hedges are refused or lose; down half a point while
   * they do not lose (and none is refused). Too few hedged calls
   * answered since the last recompute say nothing of how hedges fare: they
   * count on into the next one, and the percentile holds meanwhile (a
   * percentile raised because the hedges lost comes down only once hedges
   * win, not because few are sent at it).
   */
  #adapt(): number {
    const refused = this.#refusals > 0;
    this.#refusals = 0;
    const outcomes = this.#won + this.#lost;
    if (outcomes < MIN_OUTCOMES) return refused ? this.#later() : this.#q;
    const losing = this.#won < LOSING * outcomes;
    this.#won = this.#lost = 0;
    return refused || losing ? this.#later() : this.#sooner();
  }

  /** A point up the percentiles; at Q_MAX already, a higher floor of medians (MAX_MEDIANS). */
  #later(): number {
    if (this.#q >= Q_MAX) this.#medians = Math.min(MAX_MEDIANS, this.#medians * MEDIANS_UP);
    return Math.min(Q_MAX, this.#q + Q_UP);
  }

  /** The raised floor comes down first, then the percentile half a point. */
  #sooner(): number {
    if (this.#medians > MIN_MEDIANS) {
      this.#medians = Math.max(MIN_MEDIANS, this.#medians / MEDIANS_DOWN);
      return this.#q;
    }
    return Math.max(Q_MIN, this.#q - Q_DOWN);
  }

  /** The percentile a "p95" delay is taken at now: 0.95, up to 0.98 while maxExtraLoad refuses hedges or hedges lose (for tests). */
  get percentile(): number {
    return this.#q;
  }
  /** The least number of medians the delay is: 5, up to 20 while hedges are refused or lose at p98 (for tests). */
  get medians(): number {
    return this.#medians;
  }
  /** Hedges waiting for room (for tests and stats). */
  get waiting(): number {
    return this.#line.size;
  }

  /** ms to wait before hedging; undefined: too few samples for a p95, do not hedge yet. */
  delayMs(): number | undefined {
    return this.#fixed ?? this.#p95;
  }

  /**
   * A call's first attempt, ms: its latency when it answered, or — when it
   * was cancelled because another attempt answered first — how long it had
   * run (a lower bound). Failed attempts are not recorded: a fast failure
   * says nothing about how long an answer takes.
   */
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
      this.#q = Math.round(this.#adapt() * 1000) / 1000;
      const median = sorted[Math.ceil(n / 2) - 1] as number;
      this.#p95 = Math.max(sorted[Math.ceil(this.#q * n) - 1] as number, this.#medians * median);
    }
  }
}

/** `hedge`: undefined or false (off), or { delay?, max?, maxExtraLoad? }. */
export function resolveHedge(input: unknown): HedgeOptions | undefined {
  if (input === undefined || input === false) return undefined;
  const o = requireObject("hedge", input);
  checkKeys("hedge", o, ["delay", "max", "maxExtraLoad"]);
  const delay = o.delay ?? "p95";
  if (delay !== "p95" && typeof delay !== "number")
    throw new ConfigError("hedge.delay", `expected a number of milliseconds or "p95", got ${describeType(delay)}`, "duration");
  const load = o.maxExtraLoad ?? (delay === "p95" ? DEFAULT_MAX_EXTRA_LOAD : false);
  if (load !== false && (typeof load !== "number" || !(load > 0 && load <= 1))) {
    throw new ConfigError(
      "hedge.maxExtraLoad",
      `expected a share of calls above 0 and at most 1 (0.05: 5 %), or false, got ${typeof load === "number" ? String(load) : describeType(load)}`,
    );
  }
  return {
    delay: delay === "p95" ? delay : requirePositiveDuration("hedge.delay", delay),
    max: requireInteger("hedge.max", o.max ?? 1, 1, MAX_HEDGES),
    maxExtraLoad: load,
  };
}

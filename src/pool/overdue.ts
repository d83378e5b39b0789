/**
 * What a member's load cannot see by counting: that it stopped answering.
 *
 * In-flight counts tie: a frozen member holding one request costs the same
 * as a healthy member holding one, so it wins half of those P2C comparisons
 * until passive suspicion (250 ms) or a PING timeout (seconds) notices
 * (issue 17, item 4). Here each member keeps how many of its requests are
 * still unanswered and when it last made progress; the pick cost is
 * multiplied by how far that silence runs past what the member's own
 * latency makes normal, so a member that stopped answering loses every
 * comparison a few milliseconds after its first request got no answer.
 *
 * "Silent since the last progress" stands in for "age of the oldest
 * outstanding request": requests end out of order, and tracking each start
 * time would cost an allocation per request. While the member answers
 * anything, the silence stays short; when it answers nothing, the silence
 * is the age of its oldest unanswered request exactly (progress is the last
 * answer, or the moment it went from idle to busy).
 *
 * PONGs are not progress: a member that answers PINGs but stalls requests
 * is exactly what this must see. A streamed response counts as answered at
 * its head, so long streams do not make a member look stuck.
 */

/** Silence below this (ms) is never overdue: timer and event-loop jitter on a busy client. */
export const OVERDUE_MIN_MS = 2;
/** Silence up to this many times the member's typical latency is normal. */
export const OVERDUE_SLACK = 4;
/**
 * A draw that lands on a member this overdue (silent for twice the expected
 * time) is drawn again: both members drawn may be stuck (two members on one
 * frozen backend), and the cheaper of two stuck members is no answer.
 */
export const AVOID_FACTOR = 2;
/** Weight of a new latency sample in the member's typical latency (a plain EWMA: no clock, no exp). */
const SAMPLE_WEIGHT = 0.125;

export class Progress {
  /** Requests started and neither answered nor ended. */
  pending = 0;
  /** When the member last made progress (or went from nothing pending to one), pool clock ms. */
  since = 0;
  /**
   * Typical latency of answered requests, ms; NaN before the first. A plain
   * number field (not `number | undefined`): V8 then updates it in place
   * rather than allocating a boxed number on every sample.
   */
  typical = Number.NaN;

  /**
   * A request was handed to the member. The caller reads the clock only when
   * nothing was pending (a clock read costs ~60 ns on a VM: not on every pick).
   */
  start(now: number): void {
    if (this.pending++ === 0) this.since = now;
  }

  /** Another request while some are pending: the silence keeps counting from `since`. */
  more(): void {
    this.pending++;
  }

  /** A response (or its head) arrived: progress. `latencyMs` is a sample when known. */
  answer(now: number, latencyMs?: number): void {
    if (this.pending > 0) this.pending--;
    this.since = now;
    if (latencyMs !== undefined && latencyMs >= 0 && Number.isFinite(latencyMs)) {
      this.typical = Number.isNaN(this.typical) ? latencyMs : this.typical + (latencyMs - this.typical) * SAMPLE_WEIGHT;
    }
  }

  /** A request ended without an answer (cut, failed): not progress. */
  drop(): void {
    if (this.pending > 0) this.pending--;
  }
}

/**
 * The multiplier on a member's cost: 1 while its silence is within what its
 * latency makes normal (`expected`: OVERDUE_SLACK × its typical latency, at
 * least its PING round trip and OVERDUE_MIN_MS), then 1 + (silence −
 * expected) / expected, so it grows linearly and without bound: a member
 * silent for 100 ms against an expected 2 ms costs 50 times its count. Pure.
 */
export function overdueFactor(p: Progress, now: number, rtt: number | undefined): number {
  if (p.pending === 0) return 1;
  const expected = Math.max(OVERDUE_MIN_MS, Number.isNaN(p.typical) ? 0 : OVERDUE_SLACK * p.typical, rtt ?? 0);
  const late = now - p.since - expected;
  return late > 0 ? 1 + late / expected : 1;
}

/**
 * When a PING sent at `sentAt` and still unanswered becomes overdue: after
 * AVOID_FACTOR × the time a member silent that long on requests would be
 * expected to take, here OVERDUE_SLACK × its PING round trip (at least
 * OVERDUE_MIN_MS). A member with nothing pending cannot be overdue on
 * requests, and an idle member on a frozen backend would otherwise look fine
 * until its PING times out (hundreds of ms) — by then, its latency estimate
 * decayed while it idled, the cheapest member of all. Pure.
 */
export function pingDeadline(sentAt: number, rtt: number | undefined): number {
  return sentAt + AVOID_FACTOR * Math.max(OVERDUE_MIN_MS, OVERDUE_SLACK * (rtt ?? 0));
}

/**
 * Whether the member was overtaken: it still holds a request older than one
 * another member has answered since, by more than its own typical latency
 * (`answeredStart`: the latest start of any answered request, the pool's).
 *
 * While requests are pending, one of them started no later than `since`
 * (the last answer left them pending, or `since` is when the first of them
 * started), so `since + typical < answeredStart` means a request that began
 * after this member's should have answered was answered elsewhere first.
 * That is order, not elapsed time: a frozen backend is seen within about
 * one healthy round trip plus its typical latency, whatever the clock says,
 * and a stall of our own event loop cannot fake it (answers that arrived
 * during the stall are read in arrival order, the older first). It ends the
 * moment the member answers anything (`since` moves past every start so
 * far). A request that ended unanswered (drop) can leave `since` older than
 * the requests still pending; the member then looks overtaken until its
 * next answer, which a healthy member gives within its latency. Pure.
 */
export function overtaken(p: Progress, answeredStart: number): boolean {
  const typical = p.typical;
  return p.pending > 0 && p.since + (typical === typical ? typical : 0) < answeredStart;
}

import { systemClock, type Clock, type Timer } from "./clock.js";

/** One pending deadline: what DeadlineQueue.add (and Http2Channel.schedule) return; pass it to cancel() (or unschedule()). */
export interface Deadline {
  readonly due: number;
}

interface Entry<A> extends Deadline {
  due: number;
  fn: ((arg: A) => void) | undefined;
  arg: A | undefined;
  prev: Entry<A> | undefined;
  next: Entry<A> | undefined;
}

/**
 * Request deadlines without a Node timer each. A timer per request costs a
 * few µs to arm and clear (more when its list empties and libuv re-arms, as
 * at concurrency 1), while requests of one channel almost always end long
 * before their deadline, in the order they started. So deadlines live in one
 * list sorted by due time — a new one goes at the tail in O(1) when it is the
 * latest, as requests with the same timeout always are — and one timer,
 * armed for the earliest, fires at most once per timeout period: cancelling
 * only unlinks, and when the timer finds nothing due it re-arms for the new
 * head. Timeouts fire when due, within the timer's 1 ms resolution, like
 * setTimeout. The timer never keeps the process alive.
 *
 * One queue per channel, on the channel's clock (a fake clock drives its
 * deadlines too); the channel's close() calls `dropWhenIdle()`, so the
 * queue's timer does not outlive the channel's last request.
 */
export class DeadlineQueue {
  readonly #clock: Clock;
  #head: Entry<unknown> | undefined;
  #tail: Entry<unknown> | undefined;
  #timer: Timer | undefined;
  /** When the armed timer fires (ms, clock time). */
  #armedFor = Number.POSITIVE_INFINITY;
  #size = 0;
  /** Set by dropWhenIdle(): once nothing is pending, the timer goes too. */
  #dropWhenEmpty = false;

  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
  }

  /** Deadlines pending. */
  get size(): number {
    return this.#size;
  }

  /** Calls fn(arg) `ms` from now unless cancelled first (no closure needed: pass what it works on as arg). */
  add<A>(ms: number, fn: (arg: A) => void, arg: A): Deadline {
    const due = this.#clock.now() + ms;
    const e: Entry<A> = { due, fn, arg, prev: undefined, next: undefined };
    this.#insert(e as Entry<unknown>);
    this.#size++;
    if (due < this.#armedFor) this.#arm(due);
    return e;
  }

  /** Forgets a deadline; a second cancel, or one after it fired, does nothing. */
  cancel(deadline: Deadline): void {
    const e = deadline as Entry<unknown>;
    if (e.fn === undefined) return;
    e.fn = undefined;
    e.arg = undefined;
    this.#unlink(e);
    // Not on every emptying (at concurrency 1 that is every request: a timer cleared and re-armed each time).
    if (this.#size === 0 && this.#dropWhenEmpty) this.#disarm();
  }

  /**
   * The owner is closing: drop the timer now if nothing is pending, or as
   * soon as the last pending deadline is cancelled or fires, so a closed
   * channel leaves no timer behind. Deadlines added later still fire.
   */
  dropWhenIdle(): void {
    this.#dropWhenEmpty = true;
    if (this.#size === 0) this.#disarm();
  }

  #disarm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  #insert(e: Entry<unknown>): void {
    // From the tail: requests with one timeout arrive in due order, so this is O(1) but for mixed timeouts.
    let after = this.#tail;
    while (after && after.due > e.due) after = after.prev;
    e.prev = after;
    e.next = after ? after.next : this.#head;
    if (e.next) e.next.prev = e;
    else this.#tail = e;
    if (after) after.next = e;
    else this.#head = e;
  }

  #unlink(e: Entry<unknown>): void {
    if (e.prev) e.prev.next = e.next;
    else this.#head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.#tail = e.prev;
    e.prev = e.next = undefined;
    this.#size--;
  }

  #arm(due: number): void {
    this.#timer?.cancel();
    this.#armedFor = due;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.ceil(due - this.#clock.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    let e = this.#head;
    while (e && e.due <= now) {
      const { fn, arg } = e;
      this.cancel(e);
      try {
        fn?.(arg);
      } catch (err) {
        // One failing callback must not strand the deadlines after it.
        queueMicrotask(() => {
          throw err;
        });
      }
      e = this.#head;
    }
    if (this.#head) this.#arm(this.#head.due);
  }
}

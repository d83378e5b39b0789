import { abortReason } from "../core/abort.js";
import { systemClock, type Clock } from "../core/clock.js";

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
  cleanup(): void;
}

/**
 * A bounded FIFO of callers waiting for something to become available. Each
 * waiter has its own deadline and AbortSignal; nothing waits forever and the
 * queue never holds more than `limit` (the caller gets `onFull()`'s error).
 *
 * A Set keeps insertion order and deletes in O(1), so a waiter that times out
 * or aborts is gone at once, even while nobody is being served (an outage).
 */
export class AcquireQueue<T> {
  #waiters = new Set<Waiter<T>>();

  constructor(
    readonly limit: number,
    readonly clock: Clock = systemClock,
  ) {}

  get length(): number {
    return this.#waiters.size;
  }

  wait(timeoutMs: number, signal: AbortSignal | undefined, onTimeout: () => Error, onFull: () => Error): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#waiters.size >= this.limit) return Promise.reject(onFull());
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.#drop(w);
        reject(onTimeout());
      }, timeoutMs);
      const onAbort = (): void => {
        this.#drop(w);
        reject(abortReason(signal as AbortSignal));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const w: Waiter<T> = {
        resolve,
        reject,
        cleanup: () => {
          timer.cancel();
          signal?.removeEventListener("abort", onAbort);
        },
      };
      this.#waiters.add(w);
    });
  }

  /** Hands values to waiters in FIFO order while `take()` yields one. */
  serve(take: () => T | undefined): void {
    for (const w of this.#waiters) {
      const v = take();
      if (v === undefined) return;
      this.#drop(w);
      w.resolve(v);
    }
  }

  /** Fails every waiter (channel closing). */
  rejectAll(error: Error): void {
    for (const w of [...this.#waiters]) {
      this.#drop(w);
      w.reject(error);
    }
  }

  #drop(w: Waiter<T>): void {
    if (!this.#waiters.delete(w)) return;
    w.cleanup();
  }
}

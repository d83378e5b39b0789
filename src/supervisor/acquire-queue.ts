import { abortReason } from "../core/abort.js";

interface Waiter<T> {
  done: boolean;
  resolve(value: T): void;
  reject(error: Error): void;
  cleanup(): void;
}

/**
 * A bounded FIFO of callers waiting for something to become available. Each
 * waiter has its own deadline and AbortSignal; nothing waits forever and the
 * queue never holds more than `limit` (the caller gets `onFull()`'s error).
 */
export class AcquireQueue<T> {
  #waiters: Array<Waiter<T>> = [];
  #head = 0;
  #count = 0;

  constructor(readonly limit: number) {}

  get length(): number {
    return this.#count;
  }

  wait(timeoutMs: number, signal: AbortSignal | undefined, onTimeout: () => Error, onFull: () => Error): Promise<T> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#count >= this.limit) return Promise.reject(onFull());
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#drop(w);
        reject(onTimeout());
      }, timeoutMs);
      const onAbort = (): void => {
        this.#drop(w);
        reject(abortReason(signal as AbortSignal));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const w: Waiter<T> = {
        done: false,
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      this.#waiters.push(w);
      this.#count++;
    });
  }

  /** Hands values to waiters in FIFO order while `take()` yields one. */
  serve(take: () => T | undefined): void {
    while (this.#count > 0) {
      const w = this.#peek();
      if (!w) return;
      const v = take();
      if (v === undefined) return;
      this.#drop(w);
      w.resolve(v);
    }
  }

  /** Fails every waiter (channel closing). */
  rejectAll(error: Error): void {
    const pending = this.#waiters.slice(this.#head).filter((w) => !w.done);
    for (const w of pending) {
      this.#drop(w);
      w.reject(error);
    }
  }

  #peek(): Waiter<T> | undefined {
    while (this.#head < this.#waiters.length && (this.#waiters[this.#head] as Waiter<T>).done) this.#head++;
    this.#compact();
    return this.#waiters[this.#head];
  }

  #drop(w: Waiter<T>): void {
    if (w.done) return;
    w.done = true;
    w.cleanup();
    this.#count--;
    if (this.#count === 0) {
      this.#waiters = [];
      this.#head = 0;
    }
  }

  #compact(): void {
    // Under a sustained backlog the array never empties; drop the served prefix now and then.
    if (this.#head > 1024 && this.#head * 2 > this.#waiters.length) {
      this.#waiters = this.#waiters.slice(this.#head);
      this.#head = 0;
    }
  }
}

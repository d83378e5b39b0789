/**
 * A value that changes over time, read as an async iterator with
 * current-state semantics: a reader sees the state as it is when it looks,
 * not every edge. Each iterator yields the current value at once, then waits
 * for the next change. If the value flips and flips back before a reader
 * looks, the reader is woken once and sees the value as it is then (so a flap
 * is reported once, never as a backlog). Any number of readers may iterate at
 * once; none of them can make the writer wait or buffer.
 */
export class StatusStream<T> {
  #value: T;
  #version = 0;
  #ended = false;
  #waiters = new Set<() => void>();

  constructor(initial: T) {
    this.#value = initial;
  }

  get current(): T {
    return this.#value;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Sets the value; readers wake only if it differs from the current one. */
  set(value: T): void {
    if (this.#ended || Object.is(value, this.#value)) return;
    this.#value = value;
    this.#version++;
    this.#wake();
  }

  /** Ends every iterator after it has seen the final value. */
  end(finalValue?: T): void {
    if (this.#ended) return;
    if (finalValue !== undefined && !Object.is(finalValue, this.#value)) {
      this.#value = finalValue;
      this.#version++;
    }
    this.#ended = true;
    this.#wake();
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /** Waits until the version moves past `seen` or the stream ends. */
  #changed(seen: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#version !== seen) return Promise.resolve(true);
    if (this.#ended || signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (): void => {
        this.#waiters.delete(wake);
        signal?.removeEventListener("abort", onAbort);
      };
      const wake = (): void => {
        done();
        resolve(this.#version !== seen);
      };
      const onAbort = (): void => {
        done();
        resolve(false);
      };
      this.#waiters.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Iterates current states; stops when the stream ends or `signal` aborts. */
  async *watch(signal?: AbortSignal): AsyncGenerator<T, void, undefined> {
    let seen = this.#version;
    yield this.#value;
    while (true) {
      const moved = await this.#changed(seen, signal);
      if (!moved) return;
      seen = this.#version;
      yield this.#value;
      if (this.#ended) return;
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    return this.watch();
  }
}

/**
 * A minimal typed listener set. Emitting with no listeners costs one length
 * check, so hot paths can emit unconditionally. A throwing listener is
 * reported on the next tick and never breaks the emitter's own state.
 *
 * `size` counts listeners only: an emitter that builds an event just for
 * listeners (one per request) skips it when `size` is 0. An observer
 * (`observe()`, a library part watching for a few event types of its own)
 * hears everything that is emitted but does not count, so it does not make
 * every request pay for events nobody reads.
 */
export class Listeners<E> {
  #fns: Array<(event: E) => void> = [];
  #observers: Array<(event: E) => void> = [];

  get size(): number {
    return this.#fns.length;
  }

  add(fn: (event: E) => void): () => void {
    this.#fns = [...this.#fns, fn];
    return () => {
      this.#fns = this.#fns.filter((f) => f !== fn);
    };
  }

  /** Hears every event emitted, without counting in `size`; returns the function that stops it. */
  observe(fn: (event: E) => void): () => void {
    this.#observers = [...this.#observers, fn];
    return () => {
      this.#observers = this.#observers.filter((f) => f !== fn);
    };
  }

  emit(event: E): void {
    const fns = this.#fns;
    const observers = this.#observers;
    if (fns.length === 0 && observers.length === 0) return;
    for (const fn of observers) call(fn, event);
    for (const fn of fns) call(fn, event);
  }
}

function call<E>(fn: (event: E) => void, event: E): void {
  try {
    fn(event);
  } catch (err) {
    queueMicrotask(() => {
      throw err;
    });
  }
}

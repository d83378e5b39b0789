/**
 * A minimal typed listener set. Emitting with no listeners costs one length
 * check, so hot paths can emit unconditionally. A throwing listener is
 * reported on the next tick and never breaks the emitter's own state.
 */
export class Listeners<E> {
  #fns: Array<(event: E) => void> = [];

  get size(): number {
    return this.#fns.length;
  }

  add(fn: (event: E) => void): () => void {
    this.#fns = [...this.#fns, fn];
    return () => {
      this.#fns = this.#fns.filter((f) => f !== fn);
    };
  }

  emit(event: E): void {
    const fns = this.#fns;
    if (fns.length === 0) return;
    for (const fn of fns) {
      try {
        fn(event);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/**
 * "Something changed": whoever waits for a condition (ready(), close()'s
 * grace period) awaits next() and checks again. The supervisor fires it
 * after every batch of the regulator's actions.
 */
export class ChangeSignal {
  #waiters = new Set<() => void>();

  next(): Promise<void> {
    return new Promise((resolve) => this.#waiters.add(resolve));
  }

  fire(): void {
    if (this.#waiters.size === 0) return;
    const ws = [...this.#waiters];
    this.#waiters.clear();
    for (const w of ws) w();
  }
}

/** Round r runs the clients in order on even rounds and reversed on odd ones, so no client always goes first. */
export function orderFor<T>(round: number, items: readonly T[]): T[] {
  return round % 2 === 0 ? [...items] : [...items].reverse();
}

/** Rounds from BENCH_ROUNDS (1..9), else the scenario's default. */
export function roundsFromEnv(fallback: number): number {
  const n = Number(process.env.BENCH_ROUNDS);
  return Number.isInteger(n) && n >= 1 && n <= 9 ? n : fallback;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

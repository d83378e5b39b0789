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

/**
 * BENCH_PEERS=id,id,…: run only these clients (to look into one of them
 * quickly). A filtered run does not rewrite the scenario's report: that
 * always holds every client, measured in one run.
 */
export function peersFromEnv<T extends { id: string }>(all: readonly T[]): { peers: T[]; filtered: boolean } {
  const want = (process.env.BENCH_PEERS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (want.length === 0) return { peers: [...all], filtered: false };
  const unknown = want.filter((id) => !all.some((p) => p.id === id));
  if (unknown.length > 0) throw new Error(`BENCH_PEERS: no client ${unknown.join(", ")} (known: ${all.map((p) => p.id).join(", ")})`);
  return { peers: all.filter((p) => want.includes(p.id)), filtered: true };
}

/**
 * The request-path matrix the throughput-style benches share (issue 15's):
 * 64 B and 16 KiB bodies at concurrency 1, 16 and 256, and the one way
 * they are named in tables and narrowed from the environment.
 */
export interface Cell {
  readonly bytes: number;
  readonly concurrency: number;
}

export const CELLS: readonly Cell[] = [
  { bytes: 64, concurrency: 1 },
  { bytes: 64, concurrency: 16 },
  { bytes: 64, concurrency: 256 },
  { bytes: 16_384, concurrency: 1 },
  { bytes: 16_384, concurrency: 16 },
  { bytes: 16_384, concurrency: 256 },
];

/** "64 B × 16", "16 KiB × 256": as the tables say it. */
export const cellName = (c: Cell): string => `${c.bytes >= 1024 ? `${c.bytes / 1024} KiB` : `${c.bytes} B`} × ${c.concurrency}`;

/** The cells an environment variable names (`64x16,16384x1`), or every cell when it is unset or empty. */
export function cellsFromEnv(variable: string): readonly Cell[] {
  const want = (process.env[variable] ?? "").split(",").filter(Boolean);
  return want.length ? CELLS.filter((c) => want.includes(`${c.bytes}x${c.concurrency}`)) : CELLS;
}

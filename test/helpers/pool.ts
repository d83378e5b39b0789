import type { Pool, PoolMemberRef } from "../../src/pool/pool.js";

/** Whether the pool's usable index holds the member (it takes picks). */
export const isUsable = (m: PoolMemberRef): boolean => m.usableIndex >= 0;

/** Members outlier ejection has taken out of the usable index. */
export const ejectedCount = <C>(pool: Pool<C>): number => [...pool.members()].filter((m) => m.outlier.ejected).length;

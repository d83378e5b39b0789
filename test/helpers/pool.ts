import type { PoolMemberRef } from "../../src/pool/pool.js";

/** Whether the pool's usable index holds the member (it takes picks). */
export const isUsable = (m: PoolMemberRef): boolean => m.usableIndex >= 0;

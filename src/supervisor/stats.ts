import type { ConnectionStatus, MemberState } from "../core/events.js";
import type { PoolMemberRef } from "../pool/pool.js";
import type { AddressEntry } from "./address-book.js";

export interface MemberStats {
  id: number;
  slot: number;
  address: string;
  state: MemberState;
  rttMs: number | undefined;
  inFlight: number;
  maxConcurrent: number | null;
  lastError: string | undefined;
  connectedSince: string | undefined;
}

export interface SupervisorStats {
  target: string;
  status: ConnectionStatus;
  wanted: number;
  ready: number;
  usable: number;
  degraded: boolean;
  queued: number;
  addresses: Array<{ address: string; failures: number; coolingForMs: number; lastError: string | undefined }>;
  members: MemberStats[];
  /** Where addresses come from and how fresh they are. */
  resolution: {
    target: string;
    resolvedAt: string | undefined;
    ttlMs: number | null;
    nextRefreshInMs: number | null;
    lastError: string | undefined;
    /**
     * Why the channel has no address, when it has none: the failed lookup,
     * or what each server answered for each family ("127.0.0.1:53 answered
     * NODATA for api.test A; …").
     */
    noAddresses: string | undefined;
  };
  lastError: string | undefined;
}

/**
 * One member's line: its state from the regulator's record, its load from the
 * pool, its last PING failure from its health checker, `connectedSince` (wall
 * ms) from when the regulator saw it proven.
 */
export function memberStats(m: PoolMemberRef, slot: number, state: MemberState, lastError: Error | undefined, connectedSince: number | undefined): MemberStats {
  return {
    id: m.id,
    slot,
    address: m.key,
    state,
    rttMs: m.rtt === undefined ? undefined : Math.round(m.rtt * 1000) / 1000,
    inFlight: m.inFlight,
    maxConcurrent: Number.isFinite(m.maxConcurrent) ? m.maxConcurrent : null,
    lastError: lastError?.message,
    connectedSince: connectedSince === undefined ? undefined : new Date(connectedSince).toISOString(),
  };
}

export function addressStats(entries: readonly AddressEntry[], now: number): SupervisorStats["addresses"] {
  return entries.map((e) => ({
    address: e.key,
    failures: e.failures,
    coolingForMs: Math.max(0, Math.round(e.coolingUntil - now)),
    lastError: e.lastError?.message,
  }));
}

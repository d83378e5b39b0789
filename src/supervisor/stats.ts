import type { Clock } from "../core/clock.js";
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

/** What the supervisor knows of the last resolution. */
export interface Resolution {
  at: number | undefined;
  ttl: number | undefined;
  error: Error | undefined;
  /** Why the last set was empty (undefined when it had addresses). */
  empty: string | undefined;
}

/** Why a channel has no address: never resolved (the error), or resolved to none (what was answered). */
export function noAddressReason(r: Resolution | undefined): string | undefined {
  if (!r || (r.at !== undefined && r.empty === undefined)) return undefined;
  return r.error?.message ?? r.empty;
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

/** `r.at` is a reading of `clock.now()`; the wall time shown is derived from it. */
export function resolutionStats(target: string, r: Resolution | undefined, clock: Clock): SupervisorStats["resolution"] {
  const finite = r?.ttl !== undefined && Number.isFinite(r.ttl);
  const now = clock.now();
  return {
    target,
    resolvedAt: r?.at === undefined ? undefined : new Date(clock.wall() - (now - r.at)).toISOString(),
    ttlMs: finite ? (r?.ttl as number) : null,
    nextRefreshInMs: finite && r?.at !== undefined ? Math.max(0, r.at + (r.ttl as number) - now) : null,
    lastError: r?.error?.message,
    noAddresses: noAddressReason(r),
  };
}

import type { MemberState } from "../pool/member.js";
import type { ConnectionStatus } from "./reconnect.js";

/** A member as events and stats describe it. */
export interface MemberInfo {
  id: number;
  address: string;
  slot: number;
}

/**
 * Everything that happens inside a channel, as typed events. Emitted
 * synchronously; free when nobody listens.
 */
export type ChannelEvent =
  | { type: "resolve"; addresses: string[]; ttl: number }
  | { type: "resolve-failed"; error: Error }
  | { type: "connect-attempt"; slot: number; address: string; attempt: number }
  | { type: "connect-ok"; member: MemberInfo; rtt: number }
  | { type: "connect-failed"; slot: number; address: string; error: Error }
  | { type: "state"; member: MemberInfo; from: MemberState; to: MemberState; reason: string }
  | { type: "ping"; member: MemberInfo; rtt: number }
  | { type: "ping-failed"; member: MemberInfo; error: Error }
  | { type: "evicted"; member: MemberInfo; reason: string }
  | { type: "draining"; member: MemberInfo; reason: string }
  | { type: "degraded"; degraded: boolean; healthy: number }
  | { type: "status"; status: ConnectionStatus };

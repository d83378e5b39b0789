/**
 * The shared vocabulary of what happens inside a channel: member states,
 * connection status, and the typed events every part emits or consumes.
 * Producers (supervisor, transports) and consumers (metrics, users) meet
 * here, so neither has to import the other.
 */

/**
 * connecting → ready ⇄ unhealthy → closed, plus draining (serves in-flight
 * work, takes no new picks, replaced before it closes).
 */
export type MemberState = "connecting" | "ready" | "unhealthy" | "draining" | "closed";

export type ConnectionStatus = "connected" | "disconnected";

/** A member as events and stats describe it. */
export interface MemberInfo {
  id: number;
  address: string;
  slot: number;
}

/** Why a member was taken out of service. */
export type EvictionReason = "unhealthy" | "peer-closed";

/** Why a member was asked to drain. */
export type DrainReason = "goaway" | "lame-duck" | "address-removed" | "rebalanced";

/** How a request ended, as metrics label it. */
export type RequestOutcome = "ok" | "error" | "timeout" | "no-member" | "queue-full" | "aborted" | "closed";

/**
 * Everything that happens inside a channel, as typed events. Emitted
 * synchronously; free when nobody listens.
 */
export type ChannelEvent =
  | { type: "resolve"; addresses: string[]; ttl: number }
  | { type: "resolve-failed"; error: Error }
  | { type: "connect-attempt"; slot: number; address: string; attempt: number }
  | { type: "connect-ok"; member: MemberInfo; rtt: number }
  /** A connection exists and joined the pool (state connecting). */
  | { type: "member-added"; member: MemberInfo }
  /** A member left the pool for good (state closed). */
  | { type: "member-removed"; member: MemberInfo; reason: string }
  | { type: "connect-failed"; slot: number; address: string; error: Error }
  | { type: "state"; member: MemberInfo; from: MemberState; to: MemberState; reason: string }
  | { type: "ping"; member: MemberInfo; rtt: number }
  | { type: "ping-failed"; member: MemberInfo; error: Error }
  /** A busy member went silent for health.suspectAfter: picks avoid it and it is PINGed at once. */
  | { type: "suspect"; member: MemberInfo }
  | { type: "evicted"; member: MemberInfo; reason: EvictionReason; detail: string }
  | { type: "draining"; member: MemberInfo; reason: DrainReason; detail: string }
  | { type: "gave-up"; slot: number; error: Error }
  | { type: "degraded"; degraded: boolean; healthy: number }
  | { type: "status"; status: ConnectionStatus }
  | { type: "request"; outcome: RequestOutcome; durationMs: number; retries: number; code: string | undefined; address: string | undefined }
  /** A subscription moved to another member after its member went away; `gapMs` from loss to re-subscribed. */
  | { type: "subscription-moved"; subject: string; from: string | undefined; to: string; gapMs: number }
  /** A subscription's reader fell behind its bounded buffer; `count` messages were dropped, oldest first. */
  | { type: "messages-dropped"; subject: string; count: number }
  /** The async iterator's bounded buffer overflowed; `count` events were dropped. */
  | { type: "events-dropped"; count: number };

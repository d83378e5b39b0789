/**
 * The shared vocabulary of what happens inside a channel: member states,
 * connection status, and the typed events every part emits or consumes.
 * Producers (supervisor, transports) and consumers (metrics, users) meet
 * here, so neither has to import the other.
 */

import type { DnsAnswerKind } from "./dns-answer.js";
import type { GaveUpError } from "./errors.js";

// DNS answers live in their own file (errors.ts needs them too, and events.ts needs errors.ts): re-exported here.
export { familyOf, isFailedAnswer, type DnsAnswerKind, type FamilyAnswer } from "./dns-answer.js";

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

/** Why request outcomes ejected a member (outlier detection; Envoy's detectors). */
export type EjectionReason = "consecutive-5xx" | "consecutive-gateway" | "consecutive-local";

/** Why a member was asked to drain. */
export type DrainReason = "goaway" | "lame-duck" | "address-removed" | "rebalanced" | "surplus";

/** How a request ended, as metrics label it. */
export type RequestOutcome = "ok" | "error" | "timeout" | "no-member" | "queue-full" | "overloaded" | "aborted" | "closed";

/**
 * Everything that happens inside a channel, as typed events. Emitted
 * synchronously; free when nobody listens.
 */
export type ChannelEvent =
  | { type: "resolve"; addresses: string[]; ttl: number }
  | { type: "resolve-failed"; error: Error }
  /**
   * One family of a DNS lookup failed (timeout, SERVFAIL, REFUSED, NOTIMP,
   * a malformed answer). It keeps `kept` addresses from its last good
   * answer; the lookup itself may still have succeeded on the other family.
   */
  | {
      type: "resolve-family-failed";
      name: string;
      family: "ipv4" | "ipv6" | "srv";
      answer: DnsAnswerKind;
      server: string | undefined;
      kept: number;
      message: string;
    }
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
  /** Request outcomes ejected a member: it stays connected and PINGed but takes no picks for `durationMs`. */
  | { type: "ejected"; member: MemberInfo; reason: EjectionReason; durationMs: number }
  /** An ejection's time is up: the member takes picks again. */
  | { type: "ejection-ended"; member: MemberInfo }
  | { type: "draining"; member: MemberInfo; reason: DrainReason; detail: string }
  | { type: "gave-up"; slot: number; error: Error }
  | { type: "degraded"; degraded: boolean; healthy: number }
  /** The member count changed: members that follow load grew or shrank by one. */
  | { type: "members"; from: number; to: number; reason: string }
  | { type: "status"; status: ConnectionStatus }
  /**
   * A call ended. `retries`: attempts re-sent after a failure; `hedges`:
   * extra attempts sent while the first was still waiting (hedge option);
   * `hedgeWon`: the answer came from one of those; `address`: the member
   * that answered (or failed last).
   */
  | {
      type: "request";
      outcome: RequestOutcome;
      durationMs: number;
      retries: number;
      hedges: number;
      hedgeWon: boolean;
      code: string | undefined;
      address: string | undefined;
    }
  /**
   * A retry (or hedge) was not sent because the channel's retry budget was
   * spent (`hedge-load`: a hedge held back by `hedge.maxExtraLoad`, said once
   * per call; it waits in line and may still go when room is made);
   * `address` is the member the failed or waiting attempt went to.
   */
  | { type: "retry-budget-exhausted"; kind: "retry" | "hedge" | "hedge-load"; address: string }
  /** A subscription moved to another member after its member went away; `gapMs` from loss to re-subscribed. */
  | { type: "subscription-moved"; subject: string; from: string | undefined; to: string; gapMs: number }
  /**
   * A subscription's reader fell behind its bounded buffer (maxPending messages or
   * maxPendingBytes); `count` messages were dropped, oldest first. One event per burst.
   */
  | { type: "messages-dropped"; subject: string; count: number }
  /**
   * A NATS server sent `-ERR` on a live connection: a permission violation (with the
   * operation and subject), an auth problem (an expired JWT), or another protocol error.
   * `message` is the server's own words.
   */
  | {
      type: "server-error";
      address: string;
      kind: "permission" | "auth" | "protocol";
      operation: "publish" | "subscription" | undefined;
      subject: string | undefined;
      message: string;
    }
  /** The async iterator's bounded buffer overflowed; `count` events were dropped. */
  | { type: "events-dropped"; count: number };

/**
 * What a standalone Reconnect handle does, as typed events. They live here,
 * beside ChannelEvent, so that metrics can consume them without importing
 * the supervisor that produces them.
 */
export type ReconnectEvent =
  /** A dial starts (`attempt` counts from 1 within one disconnected period). */
  | { type: "attempt"; attempt: number }
  | { type: "failure"; attempt: number; error: Error; /** ms until the next attempt (jitter included) */ delay: number }
  | { type: "connected"; attempt: number }
  /** The connection was lost; `error` is the cause when lost() named one. Not emitted on close(). */
  | { type: "disconnected"; error: Error | undefined }
  | { type: "gave-up"; error: GaveUpError }
  /** The async iterator's bounded buffer overflowed; `count` events were dropped. */
  | { type: "events-dropped"; count: number };

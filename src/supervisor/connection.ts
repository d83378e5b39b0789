import type { Address } from "../core/address.js";
import type { DialtoneError } from "../core/errors.js";

/** What a transport tells the supervisor about one live connection. */
export type ConnectionEvent =
  /** The connection is gone; `error` when it did not close on our request. */
  | { type: "closed"; error: Error | undefined }
  /** The peer asked us to stop sending new work (HTTP/2 GOAWAY, NATS lame duck). */
  | { type: "draining"; kind: "goaway" | "lame-duck"; reason: string }
  /** The peer's concurrent-stream limit changed (HTTP/2 SETTINGS). */
  | { type: "limits"; maxConcurrent: number };

/**
 * The contract between the supervisor and a protocol: one connection to one
 * address that can be PINGed, closed, and that reports what happens to it.
 */
export interface MemberConnection {
  /** Sends a protocol-level PING; resolves with the round trip in ms. */
  ping(timeoutMs: number): Promise<number>;
  /** The peer's concurrent-stream limit; Infinity when it set none. */
  readonly maxConcurrent: number;
  /** Sets the single listener the supervisor uses. */
  onEvent(listener: (event: ConnectionEvent) => void): void;
  /**
   * graceful: take no new work, let in-flight work finish, then close.
   * Otherwise destroy now, failing the work still in flight with `reason`
   * (never ending it as if it had completed).
   */
  close(graceful: boolean, reason?: DialtoneError): void;
}

/** Dials one address. Must honour `signal` and fail with a typed error naming the address. */
export interface Connector<C extends MemberConnection> {
  connect(address: Address, signal: AbortSignal): Promise<C>;
}

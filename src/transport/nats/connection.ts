import { errors as natsErrors, type NatsConnection } from "@nats-io/transport-node";
import type { DeadlineQueue } from "../../core/deadlines.js";
import type { ChannelEvent } from "../../core/events.js";
import type { ConnectionEvent, MemberConnection } from "../../supervisor/connection.js";
import { ReplyMux } from "./reply-mux.js";

export type ServerErrorEvent = Extract<ChannelEvent, { type: "server-error" }>;

/**
 * One NATS connection pinned to one server: no client reconnects, no
 * cluster-update rewrites. PING is the protocol's PING/PONG (rtt()); the
 * server's lame duck signal becomes `draining`; a close, `closed`.
 */
export class NatsMemberConnection implements MemberConnection {
  readonly nc: NatsConnection;
  readonly address: string;
  /** Request/reply on this connection: one shared reply subscription; deadlines in the channel's queue. */
  readonly requests: ReplyMux;
  readonly maxConcurrent = Number.POSITIVE_INFINITY;
  /**
   * Runs before a graceful close drains the connection: the channel moves
   * this member's subscriptions elsewhere first, so none goes quiet.
   */
  beforeDrain: (() => Promise<void>) | undefined;
  #listener: ((e: ConnectionEvent) => void) | undefined;
  #discovered: ((urls: string[]) => void) | undefined;
  #error: Error | undefined;
  /** Hears every `-ERR` the server sends on this connection (the client reports them only on its status stream). */
  onServerError: ((event: ServerErrorEvent) => void) | undefined;

  constructor(nc: NatsConnection, address: string, deadlines: DeadlineQueue) {
    this.nc = nc;
    this.address = address;
    this.requests = new ReplyMux(nc, deadlines);
    void this.#watch();
    void nc.closed().then((err) => {
      this.requests.close();
      this.#listener?.({ type: "closed", error: err instanceof Error ? err : this.#error });
    });
  }

  /** Servers the cluster advertises (INFO connect_urls), as host:port strings. */
  get connectUrls(): string[] {
    return this.nc.info?.connect_urls ?? [];
  }

  /** Sets who hears of servers the cluster advertises, now and on every INFO update. */
  onDiscovered(fn: (urls: string[]) => void): void {
    this.#discovered = fn;
    if (this.connectUrls.length > 0) fn(this.connectUrls);
  }

  onEvent(listener: (event: ConnectionEvent) => void): void {
    this.#listener = listener;
  }

  ping(_timeoutMs: number): Promise<number> {
    return this.nc.rtt();
  }

  close(graceful: boolean): void {
    if (this.nc.isClosed()) return;
    if (!graceful) {
      void this.nc.close().catch(() => {});
      return;
    }
    const hook = this.beforeDrain ?? (() => Promise.resolve());
    void hook()
      .catch(() => {})
      .then(() => (this.nc.isClosed() || this.nc.isDraining() ? undefined : this.nc.drain()))
      .catch(() => this.nc.close().catch(() => {}));
  }

  async #watch(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (s.type === "ldm") this.#listener?.({ type: "draining", kind: "lame-duck", reason: `lame duck mode (${s.server})` });
        else if (s.type === "update") this.#discovered?.(this.connectUrls);
        else if (s.type === "error") {
          // A permission violation is about one subject; it is not why a connection would close.
          if (!(s.error instanceof natsErrors.PermissionViolationError)) this.#error = s.error;
          // A refused publish fails the request that sent it, as the client's own request() does.
          else if (s.error.operation === "publish") this.requests.failPublish(s.error.subject, s.error);
          this.onServerError?.(serverError(this.address, s.error));
        }
      }
    } catch {
      // The status iterator ends with the connection.
    }
  }
}

/** The client's parsed `-ERR` as an event: permission violations name their operation and subject. */
function serverError(address: string, err: Error): ServerErrorEvent {
  if (err instanceof natsErrors.PermissionViolationError) {
    return { type: "server-error", address, kind: "permission", operation: err.operation, subject: err.subject, message: err.message };
  }
  const auth = err instanceof natsErrors.AuthorizationError || err instanceof natsErrors.UserAuthenticationExpiredError;
  return { type: "server-error", address, kind: auth ? "auth" : "protocol", operation: undefined, subject: undefined, message: err.message };
}

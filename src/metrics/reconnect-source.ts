import type { ConnectionStatus, ReconnectEvent } from "../core/events.js";

/**
 * What the metrics need from a Reconnect handle: its typed events and a
 * snapshot to read at scrape time. Declared here, on the consuming side, so
 * that metrics/ never imports the supervisor; the handle satisfies it
 * structurally.
 */
export interface ReconnectMetricsSource {
  /** The default `name` label. */
  readonly name: string;
  on(listener: (event: ReconnectEvent) => void): () => void;
  stats(): {
    status: ConnectionStatus;
    /** Unix time in ms; undefined while disconnected. */
    connectedSince: number | undefined;
    /** ms now being waited before the next attempt; 0 when not waiting. */
    backoffDelay: number;
    gaveUp: boolean;
  };
}

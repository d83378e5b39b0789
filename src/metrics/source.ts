import type { ChannelEvent, ConnectionStatus, MemberState } from "../core/events.js";

/**
 * What the metrics need from a channel: its events and a snapshot to read at
 * scrape time. Any channel (HTTP/2, NATS) satisfies it structurally.
 */
export interface MetricsSource {
  /** The `channel` label. */
  readonly name: string;
  on(listener: (event: ChannelEvent) => void): () => void;
  stats(): {
    wanted: number;
    ready: number;
    degraded: boolean;
    status: ConnectionStatus;
    members: ReadonlyArray<{ state: MemberState }>;
    addresses: ReadonlyArray<unknown>;
  };
}

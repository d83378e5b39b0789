import type { ClientHttp2Session, ClientHttp2Stream } from "node:http2";
import type { DeadlineQueue } from "../../core/deadlines.js";

/**
 * What an exchange needs from the connection it runs on (Http2Connection is
 * the one implementation). A file of its own so that the connection (which
 * runs application checks), the check (which sends exchanges) and the
 * exchange each import this type rather than each other: no import cycle.
 */
export interface StreamHost {
  readonly session: ClientHttp2Session;
  readonly address: string;
  readonly closed: boolean;
  /** The last-stream-id of a GOAWAY we received: streams above it were not processed. */
  readonly goawayLastStreamId: number | undefined;
  /** The channel's request deadlines: one queue and one timer, on the channel's clock. */
  readonly deadlines: DeadlineQueue;
  /** Records a stream the exchange opened; `drain` reads out what a complete response still holds unread. */
  streamOpened(stream: ClientHttp2Stream, drain?: Drainable): void;
  streamClosed(stream: ClientHttp2Stream): void;
}

/** What reads out a complete response's unread rest before the session's end discards it (the exchange itself). */
export interface Drainable {
  drainUnread(): void;
}

/** An application check (health.check) run on one member's own session; rejects when the application is not serving. */
export type ConnectionCheck = (conn: StreamHost, timeoutMs: number) => Promise<void>;

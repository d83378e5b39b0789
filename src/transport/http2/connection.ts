import { constants, type ClientHttp2Session, type ClientHttp2Stream, type Settings } from "node:http2";
import type { Duplex } from "node:stream";
import type { Clock } from "../../core/clock.js";
import type { DeadlineQueue } from "../../core/deadlines.js";
import { MemberLostError, type DialtoneError } from "../../core/errors.js";
import type { ConnectionEvent, MemberConnection } from "../../supervisor/connection.js";
import type { ConnectionCheck, Drainable, StreamHost } from "./stream-host.js";

/** HTTP/2's "no limit" for SETTINGS_MAX_CONCURRENT_STREAMS (2^32 - 1), and anything past int32. */
const UNLIMITED = 2 ** 31;
/** How long a closing connection waits for its last frames to reach the socket before destroying it. */
const FLUSH_MS = 1000;

/** What a connection is made with, beside its session and address (the connector gives them). */
export interface Http2ConnectionOptions {
  /** The channel's target, for messages. */
  target: string;
  /** The socket under the session, so a close can flush and end it. */
  socket?: Duplex | undefined;
  /** The application check run with every PING (health.check). */
  check?: ConnectionCheck | undefined;
  /** The channel's clock: the PING's time budget and the close's flush timer. */
  clock: Clock;
  /** The channel's request deadlines, which every exchange on this connection joins. */
  deadlines: DeadlineQueue;
}

/**
 * One HTTP/2 session to one address. PING is a real HTTP/2 PING frame; GOAWAY
 * turns into `draining` (Node closes the session once its streams finish);
 * SETTINGS_MAX_CONCURRENT_STREAMS into `limits`.
 *
 * Every stream it ends on purpose (a non-graceful close: eviction, a drain
 * past its timeout, the channel closed past its grace) or loses with the
 * socket ends as a failure: RST_STREAM CANCEL on the wire and an 'error'
 * carrying the DialtoneError that says why. Node alone would end them with
 * NO_ERROR (session.destroy() without an error) or a bare CANCEL (a socket
 * that closed), which a reader such as connect-node takes for a clean end or
 * the caller's own cancel.
 */
export class Http2Connection implements MemberConnection, StreamHost {
  readonly session: ClientHttp2Session;
  readonly address: string;
  readonly deadlines: DeadlineQueue;
  /** The last-stream-id of a GOAWAY we received: streams above it were not processed. */
  goawayLastStreamId: number | undefined;
  #listener: ((e: ConnectionEvent) => void) | undefined;
  #error: Error | undefined;
  #closed = false;
  #closing = false;
  /** Our open streams, so a close or a lost socket can fail each one; the value takes a complete response's unread rest. */
  readonly #streams = new Map<ClientHttp2Stream, Drainable | undefined>();

  readonly #target: string;
  readonly #socket: Duplex | undefined;
  readonly #check: ConnectionCheck | undefined;
  readonly #clock: Clock;

  constructor(session: ClientHttp2Session, address: string, options: Http2ConnectionOptions) {
    const { target, socket } = options;
    this.session = session;
    this.address = address;
    this.deadlines = options.deadlines;
    this.#target = target;
    this.#socket = socket;
    this.#check = options.check;
    this.#clock = options.clock;
    // Ahead of Node's own listeners, which end our streams without an error (or with a bare ECONNRESET).
    socket?.prependListener("error", (err: Error) => this.#cut(new MemberLostError(target, address, `connection error: ${err.message}`, { cause: err })));
    socket?.prependListener("close", () => this.#cut(new MemberLostError(target, address, "connection closed by peer")));
    session.on("error", (err: Error) => {
      this.#error = err;
    });
    session.on("goaway", (code: number, lastStreamID: number) => {
      this.goawayLastStreamId = lastStreamID;
      this.#emit({ type: "draining", kind: "goaway", reason: `GOAWAY (code ${code}, last stream ${lastStreamID})` });
    });
    session.on("remoteSettings", (s: Settings) => {
      this.#emit({ type: "limits", maxConcurrent: limitOf(s) });
    });
    session.on("close", () => {
      this.#closed = true;
      this.#emit({ type: "closed", error: this.#error });
    });
  }

  get maxConcurrent(): number {
    return limitOf(this.session.remoteSettings);
  }

  get closed(): boolean {
    return this.#closed || this.session.destroyed || this.session.closed;
  }

  onEvent(listener: (event: ConnectionEvent) => void): void {
    this.#listener = listener;
  }

  /**
   * A real PING frame; with an application check (health.check), the check
   * then runs on this same session, and its failure fails the PING: the
   * member is as unhealthy as one that stopped answering PINGs.
   */
  async ping(timeoutMs: number): Promise<number> {
    const started = this.#clock.now();
    const rtt = await this.#pingFrame();
    if (this.#check) await this.#check(this, Math.max(1, timeoutMs - (this.#clock.now() - started)));
    return rtt;
  }

  #pingFrame(): Promise<number> {
    return new Promise((resolve, reject) => {
      try {
        const sent = this.session.ping((err, duration) => (err ? reject(err) : resolve(duration)));
        // Node caps outstanding PINGs; a peer that lets them pile up is not answering.
        if (!sent) reject(new Error("too many unanswered PINGs outstanding"));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Records a stream we opened, so a graceful close knows when nothing is left and a hard one can fail it. */
  track(stream: ClientHttp2Stream): void {
    this.streamOpened(stream);
    stream.once("close", () => this.streamClosed(stream));
  }

  /**
   * The same record, for a caller that already listens for the stream's close: call streamClosed() from it.
   * `drain` reads out what a complete response still holds unread, before the session's end discards it.
   */
  streamOpened(stream: ClientHttp2Stream, drain?: Drainable): void {
    this.#streams.set(stream, drain);
  }

  streamClosed(stream: ClientHttp2Stream): void {
    this.#streams.delete(stream);
    if (this.#closing && this.#streams.size === 0) this.#finishClose();
  }

  /**
   * graceful: GOAWAY, let our streams finish, then close. Otherwise fail every
   * open stream with `reason` (RST_STREAM CANCEL) and destroy the session.
   */
  close(graceful: boolean, reason?: DialtoneError): void {
    if (this.session.destroyed) return;
    if (!graceful) {
      this.#closed = true;
      this.#cut(reason ?? new MemberLostError(this.#target, this.address, "connection closed"));
      // Node writes the RST_STREAMs just submitted on its next turn; destroying the session at once would drop them.
      setImmediate(() => {
        if (!this.session.destroyed) this.session.destroy();
      });
      return;
    }
    this.#closing = true;
    this.session.close();
    if (this.#streams.size === 0) this.#finishClose();
  }

  /**
   * Closing a stream with CANCEL first puts RST_STREAM CANCEL on the wire and
   * fixes its rstCode; destroying it with the error then emits 'error' (Node
   * would pick INTERNAL_ERROR for a stream destroyed with an error while open).
   */
  #cut(reason: DialtoneError): void {
    for (const [stream, drain] of this.#streams) {
      // A closed stream already ended at the HTTP/2 level (END_STREAM both ways, or a reset):
      // what is left is its reader's, and a complete response must not become an error.
      if (stream.destroyed) continue;
      if (stream.closed) {
        drain?.drainUnread();
        continue;
      }
      stream.close(constants.NGHTTP2_CANCEL);
      stream.destroy(reason);
    }
  }

  /**
   * After session.close(), Node waits for the peer to close the TCP
   * connection, and a server that sent GOAWAY but keeps its session open
   * never does: the member would linger forever. Once none of our streams is
   * left, we end the session and its socket ourselves.
   */
  #finishClose(): void {
    setImmediate(() => {
      if (!this.session.destroyed) this.session.destroy();
      const socket = this.#socket;
      if (!socket || socket.destroyed) return;
      // Our last frames (the RST_STREAM CANCELs of a close past its grace) leave before the socket
      // goes: end it and destroy it once flushed, or after a second if a frozen peer never reads.
      const late = this.#clock.setTimeout(() => socket.destroy(), FLUSH_MS);
      socket.end(() => {
        late.cancel();
        socket.destroy();
      });
    });
  }

  #emit(e: ConnectionEvent): void {
    this.#listener?.(e);
  }
}

function limitOf(s: Settings | undefined): number {
  const n = s?.maxConcurrentStreams;
  return n === undefined || n >= UNLIMITED ? Number.POSITIVE_INFINITY : n;
}

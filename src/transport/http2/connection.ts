import type { ClientHttp2Session, ClientHttp2Stream, Settings } from "node:http2";
import type { Duplex } from "node:stream";
import type { ConnectionEvent, MemberConnection } from "../../supervisor/connection.js";
import type { ConnectionCheck } from "./app-check.js";

/** HTTP/2's "no limit" for SETTINGS_MAX_CONCURRENT_STREAMS (2^32 - 1), and anything past int32. */
const UNLIMITED = 2 ** 31;

/**
 * One HTTP/2 session to one address. PING is a real HTTP/2 PING frame; GOAWAY
 * turns into `draining` (Node closes the session once its streams finish);
 * SETTINGS_MAX_CONCURRENT_STREAMS into `limits`.
 */
export class Http2Connection implements MemberConnection {
  readonly session: ClientHttp2Session;
  readonly address: string;
  /** The last-stream-id of a GOAWAY we received: streams above it were not processed. */
  goawayLastStreamId: number | undefined;
  #listener: ((e: ConnectionEvent) => void) | undefined;
  #error: Error | undefined;
  #closed = false;
  #closing = false;
  #open = 0;

  readonly #socket: Duplex | undefined;
  readonly #check: ConnectionCheck | undefined;

  constructor(session: ClientHttp2Session, address: string, socket?: Duplex, check?: ConnectionCheck) {
    this.session = session;
    this.address = address;
    this.#socket = socket;
    this.#check = check;
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
    const started = performance.now();
    const rtt = await this.#pingFrame();
    if (this.#check) await this.#check(this, Math.max(1, timeoutMs - (performance.now() - started)));
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

  /** Counts a stream we opened, so a graceful close knows when nothing is left. */
  track(stream: ClientHttp2Stream): void {
    this.streamOpened();
    stream.once("close", () => this.streamClosed());
  }

  /** The same count, for a caller that already listens for the stream's close: call streamClosed() from it. */
  streamOpened(): void {
    this.#open++;
  }

  streamClosed(): void {
    this.#open--;
    if (this.#closing && this.#open === 0) this.#finishClose();
  }

  close(graceful: boolean): void {
    if (this.session.destroyed) return;
    if (!graceful) return void this.session.destroy();
    this.#closing = true;
    this.session.close();
    if (this.#open === 0) this.#finishClose();
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
      this.#socket?.destroy();
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

import type { ClientHttp2Session, Settings } from "node:http2";
import type { ConnectionEvent, MemberConnection } from "../../supervisor/connection.js";

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

  constructor(session: ClientHttp2Session, address: string) {
    this.session = session;
    this.address = address;
    session.on("error", (err: Error) => {
      this.#error = err;
    });
    session.on("goaway", (code: number, lastStreamID: number) => {
      this.goawayLastStreamId = lastStreamID;
      this.#emit({ type: "draining", reason: `GOAWAY (code ${code}, last stream ${lastStreamID})` });
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

  ping(_timeoutMs: number): Promise<number> {
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

  close(graceful: boolean): void {
    if (this.session.destroyed) return;
    if (graceful) this.session.close();
    else this.session.destroy();
  }

  #emit(e: ConnectionEvent): void {
    this.#listener?.(e);
  }
}

function limitOf(s: Settings | undefined): number {
  const n = s?.maxConcurrentStreams;
  return n === undefined || n >= UNLIMITED ? Number.POSITIVE_INFINITY : n;
}

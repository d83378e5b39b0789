import { connect as h2connect, type ClientHttp2Session, type SecureClientSessionOptions } from "node:http2";
import { isIP, connect as netConnect } from "node:net";
import type { Duplex } from "node:stream";
import { checkServerIdentity, connect as tlsConnect, type ConnectionOptions } from "node:tls";
import { addressKey, type Address } from "../../core/address.js";
import { systemClock, type Clock } from "../../core/clock.js";
import { DeadlineQueue } from "../../core/deadlines.js";
import { ConnectError } from "../../core/errors.js";
import type { Connector } from "../../supervisor/connection.js";
import { Http2Connection } from "./connection.js";
import type { ConnectionCheck } from "./stream-host.js";

export interface Http2TlsOptions {
  /** Trusted CA certificates (PEM). Default: Node's bundled roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate and key for mTLS (PEM). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Verification is on by default; turning it off is for tests only. */
  rejectUnauthorized?: boolean;
  /** Overrides the name used for SNI and certificate checks (default: the target's host). */
  servername?: string;
}

export interface Http2ConnectorOptions {
  /** The target URL: scheme picks h2c or TLS; its host is SNI, cert name and :authority. */
  url: URL;
  target: string;
  tls: Http2TlsOptions;
  connectTimeout: number;
  /** An application check run with every PING (health.check). */
  check?: ConnectionCheck | undefined;
  /** Our SETTINGS to the peer. */
  settings?: SecureClientSessionOptions["settings"];
  /** The channel's clock: the connect timeout, and its connections' timers (default: the system clock). */
  clock?: Clock;
  /** The channel's request deadlines, shared by every connection (default: one queue of this connector's, on its clock). */
  deadlines?: DeadlineQueue;
}

/**
 * Dials one resolved IP but speaks to the target's host name: TLS SNI and
 * certificate verification use it, and so does :authority (Node takes it from
 * the authority URL, while createConnection decides where the socket goes).
 */
export class Http2Connector implements Connector<Http2Connection> {
  #o: Http2ConnectorOptions;
  #secure: boolean;
  #hostname: string;
  readonly #clock: Clock;
  readonly #deadlines: DeadlineQueue;

  constructor(options: Http2ConnectorOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#deadlines = options.deadlines ?? new DeadlineQueue(this.#clock);
    this.#secure = options.url.protocol === "https:";
    this.#hostname = options.url.hostname.replace(/^\[(.*)\]$/, "$1");
  }

  connect(address: Address, signal: AbortSignal): Promise<Http2Connection> {
    const key = addressKey(address);
    return new Promise<Http2Connection>((resolve, reject) => {
      let session: ClientHttp2Session | undefined;
      let socket: Duplex | undefined;
      let settled = false;
      const fail = (message: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        cleanup();
        session?.destroy();
        reject(new ConnectError(this.#o.target, key, message, { cause }));
      };
      const timer = this.#clock.setTimeout(() => fail(`connect timed out after ${this.#o.connectTimeout} ms`), this.#o.connectTimeout);
      const onAbort = (): void => fail("connect aborted", signal.reason);
      const cleanup = (): void => {
        timer.cancel();
        signal.removeEventListener("abort", onAbort);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });

      try {
        session = h2connect(this.#o.url.origin, {
          settings: this.#o.settings,
          createConnection: () => (socket = this.#socket(address)),
        });
      } catch (err) {
        return fail(err instanceof Error ? err.message : String(err), err);
      }
      const s = session;
      s.once("error", (err: Error) => fail(describe(err), err));
      s.once("close", () => fail("connection closed during handshake"));
      s.once("connect", () => {
        if (settled) return;
        settled = true;
        cleanup();
        s.removeAllListeners("error");
        s.removeAllListeners("close");
        resolve(new Http2Connection(s, key, { target: this.#o.target, socket, check: this.#o.check, clock: this.#clock, deadlines: this.#deadlines }));
      });
    });
  }

  #socket(address: Address): ReturnType<typeof netConnect> {
    if (!this.#secure) return netConnect({ host: address.host, port: address.port, noDelay: true });
    const t = this.#o.tls;
    const name = t.servername ?? this.#hostname;
    const opts: ConnectionOptions = {
      host: address.host,
      port: address.port,
      ALPNProtocols: ["h2"],
      ca: t.ca,
      cert: t.cert,
      key: t.key,
      rejectUnauthorized: t.rejectUnauthorized ?? true,
    };
    if (!isIP(name)) {
      opts.servername = name;
    } else {
      // SNI cannot carry an IP literal (RFC 6066), so none is sent; the certificate must then
      // name the target's IP (an IP SAN), checked against the target, not whatever address
      // discovery dialed. Leaving checkServerIdentity in place but undefined made Node fail
      // every dial with ERR_INTERNAL_ASSERTION.
      opts.checkServerIdentity = (_host, cert) => checkServerIdentity(name, cert);
    }
    const socket = tlsConnect(opts);
    socket.setNoDelay(true);
    return socket;
  }
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

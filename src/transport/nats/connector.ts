import { readFileSync } from "node:fs";
import { connect, credsAuthenticator, errors as natsErrors, nkeyAuthenticator, type ConnectionOptions, type NatsConnection } from "@nats-io/transport-node";
import { addressKey, type Address } from "../../core/address.js";
import { DeadlineQueue } from "../../core/deadlines.js";
import { ConnectError } from "../../core/errors.js";
import type { Connector } from "../../supervisor/connection.js";
import type { NatsAuth, NatsAuthenticator } from "./auth.js";
import { NatsMemberConnection } from "./connection.js";
import { NatsAuthError } from "./errors.js";
import { clientTls, type ResolvedNatsTls } from "./tls.js";

export type { NatsAuth } from "./auth.js";
export type { NatsTls } from "./tls.js";

export interface NatsConnectorOptions {
  target: string;
  name: string;
  auth: NatsAuth;
  authenticator: NatsAuthenticator | undefined;
  tls: ResolvedNatsTls | undefined;
  /** The host name a member dialing `address` speaks to; undefined for IP-literal targets. */
  tlsName: (address: Address) => string | undefined;
  connectTimeout: number;
  /** Called on a member's connection as soon as it exists, before anyone else sees it. */
  adopt?: (conn: NatsMemberConnection) => void;
  /** The channel's request deadlines, on its clock, shared by every member (default: a queue of this connector's on the system clock). */
  deadlines?: DeadlineQueue;
}

/**
 * Dials one server with the official client, pinned to it: reconnect off,
 * no randomizing, cluster updates ignored (the channel, not the client,
 * decides where members go). Auth and TLS pass through to the client; TLS
 * speaks to the target's host name, not the dialed IP.
 *
 * The client keeps timers of its own (the connect timeout given here, its
 * backstop PINGs) on the system clock: they live inside nats.js, which takes
 * no clock. dialtone's own timers (request deadlines, health PINGs, the dial's
 * abort) run on the channel's.
 */
export class NatsConnector implements Connector<NatsMemberConnection> {
  #o: NatsConnectorOptions;
  #n = 0;
  readonly #deadlines: DeadlineQueue;

  constructor(options: NatsConnectorOptions) {
    this.#o = options;
    this.#deadlines = options.deadlines ?? new DeadlineQueue();
  }

  async connect(address: Address, signal: AbortSignal): Promise<NatsMemberConnection> {
    const key = addressKey(address);
    if (signal.aborted) throw new ConnectError(this.#o.target, key, "connect aborted");
    let nc: NatsConnection;
    try {
      nc = await connect(this.#options(address, key));
    } catch (err) {
      throw this.#connectError(err, key);
    }
    if (signal.aborted) {
      await nc.close().catch(() => {});
      throw new ConnectError(this.#o.target, key, "connect aborted");
    }
    const conn = new NatsMemberConnection(nc, key, this.#deadlines);
    this.#o.adopt?.(conn);
    return conn;
  }

  #options(address: Address, key: string): ConnectionOptions {
    const a = this.#o.auth;
    const opts: ConnectionOptions = {
      servers: key,
      reconnect: false,
      noRandomize: true,
      ignoreClusterUpdates: true,
      name: `${this.#o.name} #${++this.#n}`,
      timeout: this.#o.connectTimeout,
      // dialtone PINGs on its own schedule; the client's own PINGs are only a slow backstop.
      pingInterval: 60_000,
      maxPingOut: 2,
      user: a.user,
      pass: a.pass,
      token: a.token,
    };
    if (this.#o.tls) opts.tls = clientTls(this.#o.tls, address, this.#o.tlsName(address));
    if (a.nkeySeed) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(a.nkeySeed));
    // Read at every connect: a creds file rotated on disk is used by the next member dialed.
    if (a.credsFile) opts.authenticator = credsAuthenticator(readFileSync(a.credsFile));
    if (this.#o.authenticator) opts.authenticator = this.#o.authenticator;
    return opts;
  }

  /** The server's refusal of credentials is its own type; everything else is a ConnectError naming the cause. */
  #connectError(err: unknown, key: string): Error {
    const e = err instanceof Error ? err : new Error(String(err));
    const auth =
      e instanceof natsErrors.AuthorizationError || e instanceof natsErrors.UserAuthenticationExpiredError
        ? e
        : e.cause instanceof natsErrors.AuthorizationError
          ? e.cause
          : undefined;
    if (auth) return new NatsAuthError(this.#o.target, key, auth.message, { cause: err });
    const code = (e as NodeJS.ErrnoException).code;
    const message = e.message || code || "connection failed";
    return new ConnectError(this.#o.target, key, code && !message.includes(code) ? `${code}: ${message}` : message, { cause: err });
  }
}

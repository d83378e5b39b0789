import { readFileSync } from "node:fs";
import { connect, credsAuthenticator, nkeyAuthenticator, type ConnectionOptions } from "@nats-io/transport-node";
import { addressKey, type Address } from "../../core/address.js";
import { ConnectError } from "../../core/errors.js";
import type { Connector } from "../../supervisor/connection.js";
import { NatsMemberConnection } from "./connection.js";

export interface NatsAuth {
  token?: string;
  user?: string;
  pass?: string;
  /** An nkey seed ("SU…"). */
  nkeySeed?: string;
  /** Path of a .creds file (JWT + nkey seed). */
  credsFile?: string;
}

export interface NatsTls {
  ca?: string;
  cert?: string;
  key?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface NatsConnectorOptions {
  target: string;
  name: string;
  auth: NatsAuth;
  tls: NatsTls | undefined;
  connectTimeout: number;
}

/**
 * Dials one server with the official client, pinned to it: reconnect off,
 * no randomizing, cluster updates ignored (the channel, not the client,
 * decides where members go). Auth and TLS pass through to the client.
 */
export class NatsConnector implements Connector<NatsMemberConnection> {
  #o: NatsConnectorOptions;
  #n = 0;

  constructor(options: NatsConnectorOptions) {
    this.#o = options;
  }

  async connect(address: Address, signal: AbortSignal): Promise<NatsMemberConnection> {
    const key = addressKey(address);
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
      tls: this.#o.tls ?? undefined,
    };
    if (a.nkeySeed) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(a.nkeySeed));
    if (a.credsFile) opts.authenticator = credsAuthenticator(readFileSync(a.credsFile));
    if (signal.aborted) throw new ConnectError(this.#o.target, key, "connect aborted");
    let nc;
    try {
      nc = await connect(opts);
    } catch (err) {
      const e = err as Error & { code?: string };
      throw new ConnectError(this.#o.target, key, e.message || String(err), { cause: err });
    }
    if (signal.aborted) {
      await nc.close().catch(() => {});
      throw new ConnectError(this.#o.target, key, "connect aborted");
    }
    return new NatsMemberConnection(nc, key);
  }
}

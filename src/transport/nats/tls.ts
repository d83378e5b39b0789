import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import type { TlsOptions } from "@nats-io/transport-node";
import type { Address } from "../../core/address.js";
import { ConfigError } from "../../core/errors.js";
import { checkKeys, optionalString, requireObject } from "../../core/options-check.js";

/** NATS TLS as callers give it: PEM text or file paths; cert and key in pairs. */
export interface NatsTls {
  ca?: string;
  cert?: string;
  key?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** The name to verify the server's certificate against (and send as SNI), when it is not the target's host name. */
  servername?: string;
}

/** What every dial of a channel uses. `undefined` settings mean plaintext unless the server offers TLS (as nats.js does). */
export interface ResolvedNatsTls {
  /** Client TLS options as given; TLS is required on every member. */
  options: NatsTls;
  /** Handshake before INFO (server `handshake_first`). */
  handshakeFirst: boolean;
}

/** nats.js passes its `tls` object to node:tls.connect, so SNI and the identity check can ride along. */
export type NatsClientTls = TlsOptions & {
  servername?: string;
  checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
};

const TLS_KEYS: Readonly<Record<keyof NatsTls, true>> = { ca: true, cert: true, key: true, caFile: true, certFile: true, keyFile: true, servername: true };

/**
 * TLS is on when the target says `tls://`, `tls` is given, or `tlsFirst` is
 * set; then it is required (a plaintext server is an error, as in the Go and
 * Rust clients), since a TLS option that silently fell back to plaintext
 * would send credentials in the clear.
 */
export function resolveNatsTls(input: unknown, tlsRequired: boolean, tlsFirst: boolean): ResolvedNatsTls | undefined {
  if (input === undefined) return tlsRequired || tlsFirst ? { options: {}, handshakeFirst: tlsFirst } : undefined;
  const t = requireObject("tls", input);
  checkKeys("tls", t, Object.keys(TLS_KEYS));
  const tls: NatsTls = {};
  for (const k of Object.keys(TLS_KEYS) as Array<keyof NatsTls>) {
    const v = optionalString(`tls.${k}`, t[k]);
    if (v !== undefined) tls[k] = v;
  }
  for (const [cert, key] of [
    ["cert", "key"],
    ["certFile", "keyFile"],
  ] as const) {
    if ((tls[cert] === undefined) !== (tls[key] === undefined))
      throw new ConfigError(`tls.${tls[cert] === undefined ? cert : key}`, `needs tls.${tls[cert] === undefined ? key : cert} too`);
  }
  if (tls.servername === "") throw new ConfigError("tls.servername", "expected a host name");
  return { options: tls, handshakeFirst: tlsFirst };
}

/**
 * The client TLS options for one dial. The member dials an IP, but the
 * certificate must name the host it speaks to: `name` (the target's host
 * name, or tls.servername) is sent as SNI and checked. With no name (an
 * IP-literal target) the certificate must name the dialed IP: SNI cannot
 * carry an IP (RFC 6066), so the check is set explicitly — without it Node
 * would check "localhost".
 */
export function clientTls(t: ResolvedNatsTls, address: Address, name: string | undefined): NatsClientTls {
  const { servername: _override, ...pems } = t.options;
  const out: NatsClientTls = { ...pems, handshakeFirst: t.handshakeFirst };
  const verifyAs = t.options.servername ?? name ?? address.host;
  if (isIP(verifyAs) === 0) out.servername = verifyAs;
  out.checkServerIdentity = (_host, cert) => checkServerIdentity(verifyAs, cert);
  return out;
}

import { isIP } from "node:net";
import type { Clock } from "../../core/clock.js";
import { ipAddress, parseHostPort, type Address } from "../../core/address.js";
import { requireInteger, requireTimeout } from "../../core/duration.js";
import { ConfigError } from "../../core/errors.js";
import { describeType, optionalBoolean } from "../../core/options-check.js";
import type { Resolver } from "../../resolve/resolver.js";
import { resolverFor } from "../../resolve/target.js";
import type { BackoffOptions } from "../../supervisor/backoff.js";
import { resolveHedge } from "../../dispatch/hedge-timing.js";
import { resolveCommon, type CommonChannelOptions, type ResolvedCommon } from "../common-options.js";
import { resolveAuth, type NatsAuth, type NatsAuthenticator } from "./auth.js";
import { resolveBackoffHook, type BackoffDelay } from "./backoff-hook.js";
import { DEFAULT_MAX_CONTROL_LINE } from "./limits.js";
import { NamedServersResolver } from "./named-servers.js";
import { hostNames, parseServerList } from "./servers.js";
import { resolveNatsTls, type NatsTls, type ResolvedNatsTls } from "./tls.js";

export interface NatsChannelOptions extends Omit<CommonChannelOptions, "backoff"> {
  /**
   * The cluster, in any form NATS clients take: `nats://10.0.0.5:4222,10.0.0.6:4222`,
   * `nats://a:4222,nats://b:4222` (spaces allowed), an array of URLs, `tls://…`
   * (TLS required), with `user:pass@` or `token@` (moved into auth).
   */
  target: string | readonly string[];
  /**
   * Do not add the servers the cluster advertises (INFO connect_urls). Set it
   * behind a TCP load balancer, where advertised addresses may be unreachable.
   */
  ignoreDiscoveredServers?: boolean;
  auth?: NatsAuth;
  /** nats.js `authenticator`: called with the server's nonce on every connect, so credentials can rotate. */
  authenticator?: NatsAuthenticator;
  tls?: NatsTls;
  /** TLS handshake before the server's INFO (server `handshake_first`); implies TLS. */
  tlsFirst?: boolean;
  /** Default request timeout, ms (default 5000). */
  requestTimeout?: number;
  /**
   * Per-attempt timeout for idempotent requests, ms (off by default): with
   * no reply within it, the request is asked again on another member (the
   * first may still answer: the first reply wins), up to twice, within the
   * retry budget. Shorthand for `hedge: { delay: attemptTimeout, max: 2,
   * maxExtraLoad: false }` (a lost request must be asked again whatever the
   * share); not together with `hedge`. Without either, idempotent requests get
   * NATS_DEFAULT_HEDGE; `hedge: false` turns hedging off.
   */
  attemptTimeout?: number;
  /** Messages a subscription buffers for a slow reader before dropping the oldest (default 65536). */
  maxPending?: number;
  /** Bytes a subscription buffers for a slow reader before dropping the oldest (default 64 MiB, as nats.go). */
  maxPendingBytes?: number;
  /** Redial backoff for member slots: the numbers, or `(attempt) => ms` (async-nats reconnect_delay_callback). */
  backoff?: Partial<BackoffOptions> | BackoffDelay;
  /** Fill member slots in the order servers are listed instead of a per-process shuffle (nats no-randomize). */
  retainServerOrder?: boolean;
  /**
   * The servers' `max_control_line`, bytes (default 4096, nats-server's
   * default; servers do not announce it). A subject whose control line would
   * pass it fails its call with a BadRequestError instead of making the
   * server close the member's connection.
   */
  maxControlLine?: number;
}

export interface ResolvedNatsOptions extends ResolvedCommon {
  target: string;
  resolver: Resolver;
  learnServers: boolean;
  auth: NatsAuth;
  authenticator: NatsAuthenticator | undefined;
  tls: ResolvedNatsTls | undefined;
  /** The host name a member dialing `address` speaks to (TLS SNI and certificate checks); undefined: the dialed IP. */
  tlsName: (address: Address) => string | undefined;
  requestTimeout: number;
  maxPending: number;
  maxPendingBytes: number;
  /** A backoff function, validated and wrapped; undefined when the numbers are used. */
  backoffDelay: BackoffDelay | undefined;
  retainServerOrder: boolean;
  maxControlLine: number;
}

/**
 * The NATS channel's hedge when none is given: an idempotent request with no
 * reply after the channel's running p95 is asked once more on another
 * member, for at most 5 % of idempotent calls (hedge's own defaults). Requests
 * not marked idempotent are never hedged.
 */
export const NATS_DEFAULT_HEDGE = Object.freeze({ delay: "p95", max: 1, maxExtraLoad: 0.05 } as const);

/** The NATS channel's own option keys, beside COMMON_KEYS: with them, every key createNatsChannel takes (the broker's config accepts each). */
export const NATS_KEYS: readonly string[] = [
  "target",
  "ignoreDiscoveredServers",
  "auth",
  "authenticator",
  "tls",
  "tlsFirst",
  "requestTimeout",
  "attemptTimeout",
  "maxPending",
  "maxPendingBytes",
  "retainServerOrder",
  "maxControlLine",
];

/**
 * Validates everything up front. Credentials in the target move into
 * `auth`, as NATS clients read them; the channel's target, name, errors,
 * events, stats and metric labels only ever see the target without them.
 */
/** Checks NATS channel options as createNatsChannel would, without making a channel or opening a socket. */
export function validateNatsOptions(o: NatsChannelOptions): void {
  resolveNatsOptions(o);
}

export function resolveNatsOptions(o: NatsChannelOptions): ResolvedNatsOptions {
  if (o === null || typeof o !== "object") throw new ConfigError("options", "expected an object");
  const raw: unknown = o.target;
  const isList = Array.isArray(raw) && raw.length > 0 && raw.every((s) => typeof s === "string");
  if (!(typeof raw === "string" && raw !== "") && !isList)
    throw new ConfigError("target", "required: a server URL, a comma-separated list, or an array of URLs (e.g. nats://127.0.0.1:4222)");
  const list = parseServerList(raw as string | readonly string[]);
  const { target, servers } = list;
  const backoffDelay = resolveBackoffHook(o.backoff);
  const common = resolveCommon({ ...o, backoff: backoffDelay ? undefined : (o.backoff as Partial<BackoffOptions> | undefined) }, target, NATS_KEYS);
  if (o.attemptTimeout !== undefined) {
    if (common.hedge)
      throw new ConfigError("attemptTimeout", "give attemptTimeout or hedge, not both (attemptTimeout is hedge: { delay: attemptTimeout, max: 2 })");
    // NATS cannot tell a lost request from a slow one: asking again elsewhere, first reply winning, is the timeout's retry.
    common.hedge = { delay: requireTimeout("attemptTimeout", o.attemptTimeout), max: 2, maxExtraLoad: false };
  } else if (o.hedge === undefined) {
    // Idempotent requests are hedged unless told otherwise (hedge: false): a request published to a
    // server that froze is never answered nor refused, and asking again elsewhere is its only retry.
    common.hedge = resolveHedge(NATS_DEFAULT_HEDGE);
  }
  const { auth, authenticator } = resolveAuth(o.auth, list.credentials, o.authenticator);
  const tlsFirst = optionalBoolean("tlsFirst", o.tlsFirst) ?? false;
  const tls = resolveNatsTls(o.tls, list.tlsRequired, tlsFirst);
  let resolver: Resolver;
  let nameOf: (a: Address) => string | undefined = () => undefined;
  if (o.discovery === undefined) {
    const r = targetResolver(target, servers, common.clock);
    resolver = r;
    nameOf = (a) => r.nameOf(a);
  } else if (typeof o.discovery === "string") resolver = resolverFor(o.discovery, 4222, o.dns, common.clock);
  else if (typeof o.discovery === "object" && typeof o.discovery.start === "function") resolver = o.discovery;
  else throw new ConfigError("discovery", `expected a discovery string or a Resolver, got ${describeType(o.discovery)}`);
  // Addresses from discovery, or learned from the cluster, speak to the target's (first) host name.
  const fallbackName = hostNames(servers, target)[0];
  return {
    ...common,
    target,
    resolver,
    learnServers: !(optionalBoolean("ignoreDiscoveredServers", o.ignoreDiscoveredServers) ?? false),
    auth,
    authenticator,
    tls,
    tlsName: (a) => nameOf(a) ?? fallbackName,
    requestTimeout: requireTimeout("requestTimeout", o.requestTimeout ?? 5000),
    maxPending: requireInteger("maxPending", o.maxPending ?? 65_536, 1),
    maxPendingBytes: requireInteger("maxPendingBytes", o.maxPendingBytes ?? 64 * 1024 * 1024, 1),
    backoffDelay,
    retainServerOrder: optionalBoolean("retainServerOrder", o.retainServerOrder) ?? false,
    // Below 256 no request's reply subject fits; nats-server refuses a max_control_line over 2^31 − 1.
    maxControlLine: requireInteger("maxControlLine", o.maxControlLine ?? DEFAULT_MAX_CONTROL_LINE, 256),
  };
}

/** IP literals as they are; host names each resolved, and remembered for TLS. */
function targetResolver(target: string, items: readonly string[], clock: Clock): NamedServersResolver {
  return new NamedServersResolver(target, items, clock);
}

/** Parses INFO connect_urls entries ("10.0.0.5:4222", "[::1]:4222"); names are skipped. */
export function advertisedAddresses(urls: readonly string[], target: string): Address[] {
  const out: Address[] = [];
  for (const u of urls) {
    try {
      const hp = parseHostPort(u.replace(/^nats:\/\//, ""), target, 4222);
      if (isIP(hp.host)) out.push(ipAddress(hp.host, hp.port, target));
    } catch {
      // A server advertising something unparsable is not worth failing over.
    }
  }
  return out;
}

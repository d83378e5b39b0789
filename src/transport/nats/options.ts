import { isIP } from "node:net";
import { ipAddress, parseHostPort, type Address } from "../../core/address.js";
import { requireInteger, requireTimeout } from "../../core/duration.js";
import { ConfigError, TargetError } from "../../core/errors.js";
import { checkKeys, optionalBoolean, optionalString, requireObject } from "../../core/options-check.js";
import { redactTarget } from "../../core/redact.js";
import type { Resolver } from "../../resolve/resolver.js";
import { StaticResolver } from "../../resolve/static-resolver.js";
import { hostResolver, resolverFor } from "../../resolve/target.js";
import { resolveCommon, type CommonChannelOptions, type ResolvedCommon } from "../common-options.js";
import type { NatsAuth, NatsTls } from "./connector.js";

export interface NatsChannelOptions extends CommonChannelOptions {
  /** The cluster: `nats://10.0.0.5:4222,10.0.0.6:4222` (IPs or one host name). */
  target: string;
  /**
   * Do not add the servers the cluster advertises (INFO connect_urls). Set it
   * behind a TCP load balancer, where advertised addresses may be unreachable.
   */
  ignoreDiscoveredServers?: boolean;
  auth?: NatsAuth;
  tls?: NatsTls;
  /** Default request timeout, ms (default 5000). */
  requestTimeout?: number;
  /** Messages a subscription buffers for a slow reader before dropping the oldest (default 65536). */
  maxPending?: number;
}

export interface ResolvedNatsOptions extends ResolvedCommon {
  target: string;
  resolver: Resolver;
  learnServers: boolean;
  auth: NatsAuth;
  tls: NatsTls | undefined;
  requestTimeout: number;
  maxPending: number;
}

/**
 * Validates everything up front. Credentials in the target
 * (`nats://user:pass@host:4222`, or `nats://token@host:4222`) move into
 * `auth`, as NATS clients read them; the channel's target, name, errors,
 * events, stats and metric labels only ever see the target without them.
 */
export function resolveNatsOptions(o: NatsChannelOptions): ResolvedNatsOptions {
  if (o === null || typeof o !== "object") throw new ConfigError("options", "expected an object");
  const raw: unknown = o.target;
  if (typeof raw !== "string" || raw === "") throw new ConfigError("target", "required (e.g. nats://127.0.0.1:4222)");
  const shown = redactTarget(raw);
  const m = /^(nats|tls):\/\/(.+)$/i.exec(raw);
  if (!m) throw new TargetError(shown, 'expected nats://host:port[,host:port…] (or "tls://")');
  const { servers, credentials } = splitCredentials(m[2] as string, shown);
  // Rebuilt only when it held user-info, so targets without credentials keep their spelling (and their metric label).
  const target = raw.includes("@") ? `${(m[1] as string).toLowerCase()}://${servers.join(",")}` : raw;
  const common = resolveCommon(o, target, ["target", "ignoreDiscoveredServers", "auth", "tls", "requestTimeout", "maxPending"]);
  const auth = resolveAuth(o.auth, credentials);
  const tls = resolveNatsTls(o.tls);
  let resolver: Resolver;
  if (o.discovery === undefined) resolver = targetResolver(target, servers);
  else if (typeof o.discovery === "string") resolver = resolverFor(o.discovery, 4222, o.dns);
  else if (typeof o.discovery === "object" && typeof o.discovery.start === "function") resolver = o.discovery;
  else throw new ConfigError("discovery", "expected a discovery string or a Resolver");
  return {
    ...common,
    target,
    resolver,
    learnServers: !(optionalBoolean("ignoreDiscoveredServers", o.ignoreDiscoveredServers) ?? false),
    auth,
    tls,
    requestTimeout: requireTimeout("requestTimeout", o.requestTimeout ?? 5000),
    maxPending: requireInteger("maxPending", o.maxPending ?? 65_536, 1),
  };
}

/**
 * Splits `u:p@a:4222,u:p@b:4222` into servers without user-info and the one
 * set of credentials they carry: `user:pass` is user/pass, a bare `name` is a
 * token (as nats.go reads it), both percent-decoded. Every server of the
 * channel uses the same auth, so servers with different credentials are a
 * ConfigError; one that names none uses the others'. No message here quotes
 * a list item once any item has user-info: it could be half a password.
 */
function splitCredentials(list: string, shown: string): { servers: string[]; credentials: NatsAuth | undefined } {
  const items = list.replace(/\/$/, "").split(",").map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new TargetError(shown, "no servers listed");
  const secret = list.includes("@");
  let credentials: NatsAuth | undefined;
  const servers = items.map((item, i) => {
    const at = item.lastIndexOf("@");
    const server = at < 0 ? item : item.slice(at + 1);
    if (at >= 0) {
      const found = parseUserInfo(item.slice(0, at), shown);
      if (credentials !== undefined && !sameAuth(credentials, found)) {
        throw new ConfigError("target", "the servers carry different credentials: give one set (or use auth)");
      }
      credentials = found;
    }
    if (secret) {
      // Parsed here, messages replaced, so parseHostPort's message (which quotes its input) never sees a credential fragment.
      try {
        parseHostPort(server, shown, 4222);
      } catch {
        throw new TargetError(shown, `server ${i + 1} of the list is not host[:port] (percent-encode "@", ":" and "," in credentials)`);
      }
    }
    return server;
  });
  return { servers, credentials };
}

function parseUserInfo(userInfo: string, shown: string): NatsAuth {
  const colon = userInfo.indexOf(":");
  let user: string;
  let pass: string | undefined;
  try {
    user = decodeURIComponent(colon < 0 ? userInfo : userInfo.slice(0, colon));
    pass = colon < 0 ? undefined : decodeURIComponent(userInfo.slice(colon + 1));
  } catch {
    throw new TargetError(shown, "malformed percent-encoding in the credentials");
  }
  if (user === "") throw new TargetError(shown, "credentials without a user name");
  return pass === undefined ? { token: user } : { user, pass };
}

function sameAuth(a: NatsAuth, b: NatsAuth): boolean {
  return a.user === b.user && a.pass === b.pass && a.token === b.token;
}

const AUTH_KEYS: Readonly<Record<keyof NatsAuth, true>> = { token: true, user: true, pass: true, nkeySeed: true, credsFile: true };
const TLS_KEYS: Readonly<Record<keyof NatsTls, true>> = { ca: true, cert: true, key: true, caFile: true, certFile: true, keyFile: true };

/**
 * `auth` is checked key by key (`auth: { user, password }` used to connect
 * with no password at all) and holds one method: user/pass, token, nkey seed
 * or creds file. Credentials from the target URL count as `auth`; giving
 * both is a ConfigError rather than a guess at which one wins.
 */
function resolveAuth(input: unknown, fromUrl: NatsAuth | undefined): NatsAuth {
  if (input === undefined) return fromUrl ?? {};
  const a = requireObject("auth", input);
  checkKeys("auth", a, Object.keys(AUTH_KEYS));
  const auth: NatsAuth = {};
  for (const k of Object.keys(AUTH_KEYS) as Array<keyof NatsAuth>) {
    const v = optionalString(`auth.${k}`, a[k]);
    if (v !== undefined) auth[k] = v;
  }
  const given = Object.keys(auth).length > 0;
  if (given && fromUrl !== undefined) throw new ConfigError("auth", "credentials are in both the target URL and auth: give them in one place");
  if (!given) return fromUrl ?? {};
  if (auth.pass !== undefined && auth.user === undefined) throw new ConfigError("auth.pass", "needs auth.user");
  const methods = [auth.user !== undefined, auth.token !== undefined, auth.nkeySeed !== undefined, auth.credsFile !== undefined].filter(Boolean).length;
  if (methods > 1) throw new ConfigError("auth", "give one of user/pass, token, nkeySeed or credsFile, not several");
  return auth;
}

/** NATS TLS: PEM text or file paths, each a string; cert and key come in pairs. */
function resolveNatsTls(input: unknown): NatsTls | undefined {
  if (input === undefined) return undefined;
  const t = requireObject("tls", input);
  checkKeys("tls", t, Object.keys(TLS_KEYS));
  const tls: NatsTls = {};
  for (const k of Object.keys(TLS_KEYS) as Array<keyof NatsTls>) {
    const v = optionalString(`tls.${k}`, t[k]);
    if (v !== undefined) tls[k] = v;
  }
  for (const [cert, key] of [["cert", "key"], ["certFile", "keyFile"]] as const) {
    if ((tls[cert] === undefined) !== (tls[key] === undefined)) throw new ConfigError(`tls.${tls[cert] === undefined ? cert : key}`, `needs tls.${tls[cert] === undefined ? key : cert} too`);
  }
  return tls;
}

/** `nats://a:4222,b:4222`: IP literals become a static set; a single host name is resolved. */
function targetResolver(target: string, items: readonly string[]): Resolver {
  const hosts = items.map((item) => parseHostPort(item, target, 4222));
  if (hosts.every((h) => isIP(h.host))) return new StaticResolver(target, hosts.map((h) => ipAddress(h.host, h.port, target)));
  if (hosts.length === 1) return hostResolver(target, (hosts[0] as { host: string }).host, (hosts[0] as { port: number }).port);
  throw new TargetError(target, "mix host names only one at a time: list IP literals, or one name (or use discovery: dns:///name:port)");
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

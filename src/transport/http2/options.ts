import { requireInteger, requireTimeout } from "../../core/duration.js";
import { ConfigError, TargetError } from "../../core/errors.js";
import { checkKeys, optionalBoolean, optionalPem, optionalString, requireObject } from "../../core/options-check.js";
import { redactTarget } from "../../core/redact.js";
import type { Resolver } from "../../resolve/resolver.js";
import { hostResolver, resolverFor } from "../../resolve/target.js";
import { resolveCommon, type CommonChannelOptions, type ResolvedCommon } from "../common-options.js";
import type { Http2TlsOptions } from "./connector.js";

export interface Http2ChannelOptions extends CommonChannelOptions {
  /** The service URL: http:// is h2c, https:// is TLS. Its host is SNI, certificate name and :authority. */
  target: string | URL;
  tls?: Http2TlsOptions;
  /** Default whole-request timeout, ms (default 30000). */
  requestTimeout?: number;
  /** Extra attempts for requests HTTP/2 proves unprocessed (default 2). */
  maxRetries?: number;
  /** Largest response body collected by request(), bytes (default 64 MiB). */
  maxResponseBytes?: number;
}

export interface ResolvedHttp2Options extends ResolvedCommon {
  url: URL;
  target: string;
  resolver: Resolver;
  tls: Http2TlsOptions;
  requestTimeout: number;
  maxRetries: number;
  maxResponseBytes: number;
}

/** The HTTP/2 channel's own option keys, beside COMMON_KEYS: with them, every key createHttp2Channel takes (the broker's config accepts each). */
export const HTTP2_KEYS: readonly string[] = ["target", "tls", "requestTimeout", "maxRetries", "maxResponseBytes"];

/**
 * Checks HTTP/2 channel options as createHttp2Channel would, without making a
 * channel (no resolver starts, no socket opens): for tools that check a
 * configuration ahead of time (`dialtone broker --check`). Throws the same
 * ConfigError / TargetError.
 */
export function validateHttp2Options(o: Http2ChannelOptions): void {
  resolveHttp2Options(o);
}

/** Validates everything up front: bad configuration fails here, never later. */
export function resolveHttp2Options(o: Http2ChannelOptions): ResolvedHttp2Options {
  if (o === null || typeof o !== "object") throw new ConfigError("options", "expected an object");
  const url = parseTarget(o.target);
  const target = url.origin;
  const common = resolveCommon(o, target, HTTP2_KEYS, { appCheck: true });
  if (url.protocol !== "https:" && o.tls !== undefined) throw new ConfigError("tls", "TLS options need an https:// target");
  const defaultPort = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  let resolver: Resolver;
  if (o.discovery === undefined) resolver = hostResolver(target, hostname, defaultPort, common.clock);
  else if (typeof o.discovery === "string") resolver = resolverFor(o.discovery, defaultPort, o.dns, common.clock);
  else if (typeof o.discovery === "object" && typeof o.discovery.start === "function") resolver = o.discovery;
  else throw new ConfigError("discovery", "expected a discovery string or a Resolver");
  return {
    ...common,
    url,
    target,
    resolver,
    tls: resolveTls(o.tls),
    requestTimeout: requireTimeout("requestTimeout", o.requestTimeout ?? 30_000),
    maxRetries: requireInteger("maxRetries", o.maxRetries ?? 2, 0),
    maxResponseBytes: requireInteger("maxResponseBytes", o.maxResponseBytes ?? 64 * 1024 * 1024, 0),
  };
}

const TLS_KEYS: Readonly<Record<keyof Http2TlsOptions, true>> = { ca: true, cert: true, key: true, rejectUnauthorized: true, servername: true };

/**
 * `tls` is checked key by key: `tls: { caFile }` used to be ignored and
 * end in a certificate error far from its cause. Node's other TLS options are
 * not passed through, so they are unknown here too.
 */
function resolveTls(input: unknown): Http2TlsOptions {
  if (input === undefined) return {};
  const t = requireObject("tls", input);
  checkKeys("tls", t, Object.keys(TLS_KEYS));
  optionalPem("tls.ca", t.ca, true);
  optionalPem("tls.cert", t.cert, false);
  optionalPem("tls.key", t.key, false);
  if ((t.cert === undefined) !== (t.key === undefined)) throw new ConfigError(t.cert === undefined ? "tls.cert" : "tls.key", "mTLS needs both cert and key");
  optionalBoolean("tls.rejectUnauthorized", t.rejectUnauthorized);
  optionalString("tls.servername", t.servername);
  return t as Http2TlsOptions;
}

/**
 * The target URL, origin only. Every TargetError carries the redacted
 * string: a password in the target must not reach a message or a log.
 */
function parseTarget(t: string | URL | undefined): URL {
  if (t === undefined || t === null || t === "") throw new ConfigError("target", "required (e.g. http://api.internal:8080)");
  const raw = String(t);
  const shown = redactTarget(raw);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetError(shown, "not a URL (expected http://host:port or https://host:port)");
  }
  if (url.username !== "" || url.password !== "" || raw.includes("@")) {
    // HTTP/2 has no user-info: credentials belong in a header the caller sends.
    throw new TargetError(shown, "credentials in the target are not supported (send an authorization header instead)");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TargetError(shown, `unknown scheme "${url.protocol}" (expected http: for h2c or https: for TLS)`);
  }
  if (url.hostname === "") throw new TargetError(shown, "missing host");
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) {
    throw new TargetError(shown, "the target is an origin only: no path, query or fragment");
  }
  return url;
}

import { requireDuration, requireInteger } from "../../core/duration.js";
import { ConfigError, TargetError } from "../../core/errors.js";
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

/** Validates everything up front: bad configuration fails here, never later. */
export function resolveHttp2Options(o: Http2ChannelOptions): ResolvedHttp2Options {
  if (o === null || typeof o !== "object") throw new ConfigError("options", "expected an object");
  const url = parseTarget(o.target);
  const target = url.origin;
  const common = resolveCommon(o, target, ["target", "tls", "requestTimeout", "maxRetries", "maxResponseBytes"]);
  if (url.protocol !== "https:" && o.tls !== undefined) throw new ConfigError("tls", "TLS options need an https:// target");
  const defaultPort = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  let resolver: Resolver;
  if (o.discovery === undefined) resolver = hostResolver(target, hostname, defaultPort);
  else if (typeof o.discovery === "string") resolver = resolverFor(o.discovery, defaultPort, o.dns);
  else if (typeof o.discovery === "object" && typeof o.discovery.start === "function") resolver = o.discovery;
  else throw new ConfigError("discovery", "expected a discovery string or a Resolver");
  return {
    ...common,
    url,
    target,
    resolver,
    tls: o.tls ?? {},
    requestTimeout: requireDuration("requestTimeout", o.requestTimeout ?? 30_000),
    maxRetries: requireInteger("maxRetries", o.maxRetries ?? 2, 0),
    maxResponseBytes: requireInteger("maxResponseBytes", o.maxResponseBytes ?? 64 * 1024 * 1024, 0),
  };
}

function parseTarget(t: string | URL | undefined): URL {
  if (t === undefined || t === null || t === "") throw new ConfigError("target", "required (e.g. http://api.internal:8080)");
  const raw = String(t);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetError(raw, "not a URL (expected http://host:port or https://host:port)");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TargetError(raw, `unknown scheme "${url.protocol}" (expected http: for h2c or https: for TLS)`);
  }
  if (url.hostname === "") throw new TargetError(raw, "missing host");
  if ((url.pathname !== "/" && url.pathname !== "") || url.search || url.hash || url.username) {
    throw new TargetError(raw, "the target is an origin only: no path, query, fragment or credentials");
  }
  return url;
}

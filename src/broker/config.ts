import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { parseDuration, requireInteger } from "../core/duration.js";
import { ConfigError } from "../core/errors.js";
import { checkKeys, describeType, requireObject } from "../core/options-check.js";
import { redactTarget } from "../core/redact.js";
import { parseListenAddress, type ListenAddress } from "./listen-address.js";
import { resolveChannelOptions } from "./upstream-options.js";

/**
 * The broker's configuration, fully validated: every duration in ms, every
 * listener parsed and checked for loopback, every upstream's channel options
 * with durations converted. Anything wrong is a ConfigError naming the
 * setting's dotted path (`upstreams.api.health.timeout`), at start.
 */
export interface BrokerConfig {
  listen: ListenAddress[];
  /** undefined: no admin listener. */
  admin: ListenAddress | undefined;
  allowRemote: boolean;
  /** Browser origins (`https://app.example`, lower case) whose requests the NATS bridge and the admin listener take; others with an Origin get 403. */
  allowOrigins: ReadonlySet<string>;
  idle: { timeout: number; checkInterval: number };
  shutdownGrace: number;
  limits: BrokerLimits;
  upstreams: UpstreamConfig[];
}

export interface BrokerLimits {
  /** Ingress connections per listener at once (beyond: refused by the kernel accept path). */
  maxConnections: number;
  /** h2c SETTINGS_MAX_CONCURRENT_STREAMS per ingress connection. */
  maxStreams: number;
  /** Longest wait for a request's head (HTTP/1.1) or the connection preface: slowloris cut-off. */
  headersTimeout: number;
  /** Longest an HTTP/1.1 request may take to arrive whole; 0 = no limit (bodies stream). */
  requestTimeout: number;
  /** Idle ingress connections are closed after this. */
  idleTimeout: number;
  /** Largest request body the NATS bridge buffers (413 past it). */
  maxBodyBytes: number;
  /** Largest ingress request header block (431 past it). */
  maxHeaderBytes: number;
}

export type UpstreamKind = "http2" | "nats";

export interface UpstreamConfig {
  name: string;
  kind: UpstreamKind;
  /** As written; may hold credentials (nats://u:p@…), so show only `redactTarget(target)`. */
  target: string;
  hosts: string[];
  default: boolean;
  warm: boolean;
  /** Channel options besides `target`, durations in ms, files read, checked by the library. */
  options: Record<string, unknown>;
}

export const DEFAULT_LISTEN = "http://127.0.0.1:7000";
export const DEFAULT_ADMIN = "http://127.0.0.1:9901";
/** Upstreams are named in config; this only keeps a generated file from spawning thousands of pools. */
export const MAX_UPSTREAMS = 256;

const TOP_KEYS = ["listen", "admin", "allowRemote", "allowOrigins", "idle", "shutdownGrace", "limits", "upstreams"] as const;
const IDLE_KEYS = ["timeout", "checkInterval"] as const;
const LIMIT_KEYS = ["maxConnections", "maxStreams", "headersTimeout", "requestTimeout", "idleTimeout", "maxBodyBytes", "maxHeaderBytes"] as const;
const UPSTREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const HOST_NAME = /^[a-z0-9*]([a-z0-9.-]*[a-z0-9])?$/;

const DEFAULTS = {
  idle: { timeout: 30 * 60_000, checkInterval: 5 * 60_000 },
  shutdownGrace: 10_000,
  limits: {
    maxConnections: 1024,
    maxStreams: 256,
    headersTimeout: 10_000,
    requestTimeout: 0,
    idleTimeout: 120_000,
    maxBodyBytes: 1024 * 1024,
    maxHeaderBytes: 64 * 1024,
  } satisfies BrokerLimits,
};

/** Reads a YAML (or JSON: YAML is a superset) config file into a plain value. */
export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError("--config", `cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return parseConfigText(text, path);
}

export function parseConfigText(text: string, source: string): unknown {
  try {
    // maxAliasCount bounds the "billion laughs" expansion of a hostile file.
    return parseYaml(text, { maxAliasCount: 100, prettyErrors: true }) ?? {};
  } catch (err) {
    // yaml's messages quote the offending line, which may hold a password: keep only the position.
    const e = err as { linePos?: Array<{ line: number; col: number }>; code?: string };
    const at = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "";
    throw new ConfigError("--config", `${JSON.stringify(source)} is not valid YAML or JSON${at}${e.code ? ` (${e.code})` : ""}`);
  }
}

/**
 * Validates a parsed config (file, flags and environment already merged) and
 * fills in defaults. `baseDir` resolves relative TLS file paths.
 */
export function resolveConfig(raw: unknown): BrokerConfig {
  const c = requireObject("config", raw ?? {});
  checkKeys("", c, TOP_KEYS);
  const allowRemote = optionalBool("allowRemote", c.allowRemote) ?? false;
  const listenRaw = c.listen === undefined ? [DEFAULT_LISTEN] : Array.isArray(c.listen) ? c.listen : [c.listen];
  if (listenRaw.length === 0) throw new ConfigError("listen", "needs at least one address");
  if (listenRaw.length > 16) throw new ConfigError("listen", "at most 16 listeners");
  const listen = listenRaw.map((v, i) => parseListenAddress(`listen[${i}]`, v, allowRemote));
  const admin =
    c.admin === undefined
      ? parseListenAddress("admin", DEFAULT_ADMIN, allowRemote)
      : c.admin === false || c.admin === "off"
        ? undefined
        : parseListenAddress("admin", c.admin, allowRemote);

  const idleRaw = requireObject("idle", c.idle ?? {});
  checkKeys("idle", idleRaw, IDLE_KEYS);
  const idle = {
    timeout: duration("idle.timeout", idleRaw.timeout, DEFAULTS.idle.timeout),
    checkInterval: duration("idle.checkInterval", idleRaw.checkInterval, DEFAULTS.idle.checkInterval),
  };
  if (idle.timeout > 0 && idle.checkInterval === 0) throw new ConfigError("idle.checkInterval", "must be above 0 when idle.timeout is set");

  const limitsRaw = requireObject("limits", c.limits ?? {});
  checkKeys("limits", limitsRaw, LIMIT_KEYS);
  const d = DEFAULTS.limits;
  const limits: BrokerLimits = {
    maxConnections: int("limits.maxConnections", limitsRaw.maxConnections, d.maxConnections, 1, 1_000_000),
    maxStreams: int("limits.maxStreams", limitsRaw.maxStreams, d.maxStreams, 1, 1_000_000),
    headersTimeout: positive("limits.headersTimeout", limitsRaw.headersTimeout, d.headersTimeout),
    requestTimeout: duration("limits.requestTimeout", limitsRaw.requestTimeout, d.requestTimeout),
    idleTimeout: positive("limits.idleTimeout", limitsRaw.idleTimeout, d.idleTimeout),
    maxBodyBytes: int("limits.maxBodyBytes", limitsRaw.maxBodyBytes, d.maxBodyBytes, 0, 512 * 1024 * 1024),
    maxHeaderBytes: int("limits.maxHeaderBytes", limitsRaw.maxHeaderBytes, d.maxHeaderBytes, 1024, 1024 * 1024),
  };

  const upstreamsRaw = requireObject("upstreams", c.upstreams ?? {});
  const names = Object.keys(upstreamsRaw);
  if (names.length > MAX_UPSTREAMS) throw new ConfigError("upstreams", `at most ${MAX_UPSTREAMS} upstreams`);
  const upstreams = names.map((name) => resolveUpstream(name, upstreamsRaw[name]));
  checkRoutes(upstreams);
  return {
    listen,
    admin,
    allowRemote,
    allowOrigins: origins(c.allowOrigins),
    idle,
    shutdownGrace: duration("shutdownGrace", c.shutdownGrace, DEFAULTS.shutdownGrace),
    limits,
    upstreams,
  };
}

function resolveUpstream(name: string, raw: unknown): UpstreamConfig {
  const p = `upstreams.${name}`;
  if (!UPSTREAM_NAME.test(name)) throw new ConfigError(p, "an upstream name is letters, digits, '_', '.' or '-' (at most 63), starting with a letter or digit");
  const u = requireObject(p, raw);
  if (typeof u.target !== "string" || u.target === "")
    throw new ConfigError(`${p}.target`, `required: the service URL (http://…, https://… or nats://…), got ${describeType(u.target)}`);
  const target = u.target;
  const kind = u.kind === undefined ? (/^(nats|tls):\/\//i.test(target) ? "nats" : "http2") : u.kind;
  if (kind !== "http2" && kind !== "nats") throw new ConfigError(`${p}.kind`, `expected "http2" or "nats", got ${JSON.stringify(kind)}`);
  if (kind === "nats" && (u.hosts !== undefined || u.default !== undefined)) {
    throw new ConfigError(`${p}.${u.hosts !== undefined ? "hosts" : "default"}`, `a nats upstream is reached through /nats/${name}/…, not by Host`);
  }
  const hostsRaw = u.hosts ?? [];
  if (!Array.isArray(hostsRaw)) throw new ConfigError(`${p}.hosts`, `expected a list of host names, got ${describeType(hostsRaw)}`);
  const hosts = hostsRaw.map((h: unknown, i: number) => {
    if (typeof h !== "string" || !HOST_NAME.test(h.toLowerCase()) || h.length > 253)
      throw new ConfigError(`${p}.hosts[${i}]`, `expected a host name without port (api.internal), got ${JSON.stringify(h)}`);
    return h.toLowerCase();
  });
  const options = resolveChannelOptions(p, kind, target, name, u);
  return {
    name,
    kind,
    target,
    hosts,
    default: optionalBool(`${p}.default`, u.default) ?? false,
    warm: optionalBool(`${p}.warm`, u.warm) ?? false,
    options,
  };
}

/** Every host routes to one upstream, and at most one upstream is the default. */
function checkRoutes(upstreams: UpstreamConfig[]): void {
  const seen = new Map<string, string>();
  let def: string | undefined;
  for (const u of upstreams) {
    if (u.default) {
      if (def !== undefined) throw new ConfigError(`upstreams.${u.name}.default`, `upstream ${def} is already the default`);
      def = u.name;
    }
    for (const h of u.hosts) {
      const other = seen.get(h);
      if (other !== undefined) throw new ConfigError(`upstreams.${u.name}.hosts`, `${h} is already routed to upstream ${other}`);
      seen.set(h, u.name);
    }
  }
}

/** `allowOrigins`: origins as a browser sends them (scheme://host[:port], no path); default none. */
function origins(raw: unknown): ReadonlySet<string> {
  if (raw === undefined) return new Set();
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length > 64) throw new ConfigError("allowOrigins", "at most 64 origins");
  return new Set(
    list.map((o: unknown, i: number) => {
      const option = `allowOrigins[${i}]`;
      if (typeof o !== "string") throw new ConfigError(option, `expected an origin such as "https://app.example", got ${describeType(o)}`);
      let url: URL | undefined;
      try {
        url = new URL(o);
      } catch {
        url = undefined;
      }
      if (url === undefined || url.origin === "null" || url.origin !== o.trim().replace(/\/$/, "").toLowerCase()) {
        throw new ConfigError(
          option,
          `expected an origin as browsers send it (scheme://host[:port], lower case, no path), got ${JSON.stringify(o.slice(0, 100))}`,
        );
      }
      return url.origin;
    }),
  );
}

function duration(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "string" && typeof value !== "number")
    throw new ConfigError(option, `expected a duration such as 250ms, 5s or 30m, got ${describeType(value)}`);
  return parseDuration(option, value);
}

function positive(option: string, value: unknown, fallback: number): number {
  const v = duration(option, value, fallback);
  if (v === 0) throw new ConfigError(option, "must be above 0");
  return v;
}

function int(option: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  // Flags and environment variables arrive as strings.
  const n = typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : value;
  return requireInteger(option, n, min, max);
}

function optionalBool(option: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "boolean") return value;
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new ConfigError(option, `expected true or false, got ${describeType(value)}`);
}

/** What an operator may see of an upstream: never its credentials. */
export function describeUpstream(u: UpstreamConfig): { name: string; kind: UpstreamKind; target: string; hosts: string[]; default: boolean; warm: boolean } {
  return { name: u.name, kind: u.kind, target: redactTarget(u.target), hosts: u.hosts, default: u.default, warm: u.warm };
}

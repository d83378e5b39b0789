import { readFileSync } from "node:fs";
import { parseDuration } from "../core/duration.js";
import { describeType, requireObject } from "../core/options-check.js";
import { ConfigError, validateHttp2Options, validateNatsOptions, type Http2ChannelOptions, type NatsChannelOptions } from "../index.js";

/** Keys of an upstream that are the broker's own (routing and lifecycle); every other key is a channel option. */
export const BROKER_UPSTREAM_KEYS: readonly string[] = ["kind", "target", "hosts", "default", "warm"];
/** TLS material by path (the broker reads the files at start); the HTTP/2 channel takes the bytes as ca / cert / key. */
const HTTP2_TLS_FILES: Readonly<Record<string, string>> = { caFile: "ca", certFile: "cert", keyFile: "key" };
/** What a config file may write where the library takes milliseconds. */
const DURATION_TEXT = /^\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h)\s*$/;

/**
 * An upstream's channel options, checked by the library's own validator
 * (validateHttp2Options / validateNatsOptions): the one list of keys, the
 * same did-you-mean, and every option the library gains is accepted here
 * with no change to the broker. Durations may be written "250ms" or "5s":
 * where the library refuses a string because it wants milliseconds
 * (ConfigError.expected === "duration"), the string is converted and the
 * check runs again — so the library, not a list kept here, says which
 * options are durations. Errors are re-rooted at `upstreams.<name>.…`.
 */
export function resolveChannelOptions(
  path: string,
  kind: "http2" | "nats",
  target: string,
  name: string,
  raw: Record<string, unknown>,
): Record<string, unknown> {
  const options = copyPlain(raw) as Record<string, unknown>;
  for (const k of BROKER_UPSTREAM_KEYS) delete options[k];
  if (kind === "http2" && options.tls !== undefined) options.tls = http2Tls(`${path}.tls`, options.tls);
  // Each pass converts one duration; an upstream has far fewer options than this.
  for (let pass = 0; pass < 64; pass++) {
    try {
      checkUpstream(path, kind, target, name, options);
      return options;
    } catch (err) {
      // checkUpstream re-roots the option at `path`: convert at the library's own path.
      if (!(err instanceof ConfigError) || err.expected !== "duration" || !convertDuration(options, err.option.slice(path.length + 1), err.option)) throw err;
    }
  }
  throw new ConfigError(path, "too many options");
}

/**
 * Checks an upstream's options as creating its channel would, but without
 * making one: the library's validators start no resolver and open no
 * socket, so `--check` dials nothing.
 */
export function checkUpstream(path: string, kind: "http2" | "nats", target: string, name: string, options: Record<string, unknown>): void {
  const { discovery, ...rest } = options;
  // Target errors are not ConfigErrors and name no option: checking without discovery first tells whether the
  // target or the discovery string is to blame (the validators are pure, so twice costs nothing).
  check(path, kind, { name, ...rest, target }, "target");
  if (discovery !== undefined) check(path, kind, { name, ...rest, discovery, target }, "discovery");
}

function check(path: string, kind: "http2" | "nats", options: Record<string, unknown>, blame: "target" | "discovery"): void {
  try {
    if (kind === "nats") validateNatsOptions(options as unknown as NatsChannelOptions);
    else validateHttp2Options(options as unknown as Http2ChannelOptions);
  } catch (err) {
    if (err instanceof ConfigError) {
      const message = err.message.replace(/^invalid option [^:]*: /, "").replace(/\(did you mean ([^?]+)\?\)/, `(did you mean ${path}.$1?)`);
      throw new ConfigError(`${path}.${err.option}`, message, err.expected);
    }
    if (err instanceof Error) throw new ConfigError(`${path}.${blame}`, err.message);
    throw err;
  }
}

/** Replaces the duration text at a dotted path with its milliseconds; false when there is none to convert (the library's error stands). */
function convertDuration(options: Record<string, unknown>, dotted: string, shown: string): boolean {
  const keys = dotted.split(".");
  let parent: unknown = options;
  for (const k of keys.slice(0, -1)) parent = isPlain(parent) ? parent[k] : undefined;
  const last = keys[keys.length - 1] as string;
  if (!isPlain(parent) || typeof parent[last] !== "string" || !DURATION_TEXT.test(parent[last])) return false;
  parent[last] = parseDuration(shown, parent[last]);
  return true;
}

/** A deep copy of plain objects and arrays (what YAML gives), so conversions never touch the parsed file. */
function copyPlain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copyPlain);
  if (isPlain(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copyPlain(x)]));
  return v;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * Config files name TLS material by path; the channel takes the bytes. Read
 * at start so a missing file fails then. Every other TLS key goes to the
 * library's check as written.
 */
function http2Tls(option: string, raw: unknown): Record<string, unknown> {
  const t = requireObject(option, raw);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) {
    const to = HTTP2_TLS_FILES[k];
    if (to === undefined) {
      out[k] = v;
      continue;
    }
    if (t[to] !== undefined) throw new ConfigError(`${option}.${k}`, `give ${k} or ${to}, not both`);
    if (typeof v !== "string") throw new ConfigError(`${option}.${k}`, `expected a file path, got ${describeType(v)}`);
    try {
      out[to] = readFileSync(v);
    } catch (err) {
      throw new ConfigError(`${option}.${k}`, `cannot read ${JSON.stringify(v)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return out;
}

import { parseArgs } from "node:util";
import { ConfigError } from "../core/errors.js";
import { requireObject } from "../core/options-check.js";
import { Broker } from "./broker.js";
import { readConfigFile, resolveConfig, type BrokerConfig } from "./config.js";

export const BROKER_HELP = `dialtone broker: a sidecar that keeps warm HTTP/2 and NATS pools for local clients

usage:
  dialtone broker --config broker.yaml [flags]
  dialtone broker --upstream 'api=http://127.0.0.1:8080;default' [flags]

Every setting is a config key, a flag and a DIALTONE_* variable; flags win
over variables, variables over the file. Durations take 250ms, 5s, 30m.

  --config FILE                 YAML or JSON config                 DIALTONE_CONFIG
  --listen ADDR (repeatable)    http://127.0.0.1:7000, unix:///p    DIALTONE_LISTEN (comma-separated)
  --admin ADDR|off              admin listener (127.0.0.1:9901)     DIALTONE_ADMIN
  --allow-remote                listen beyond loopback              DIALTONE_ALLOW_REMOTE=1
  --allow-origin URL (repeatable)  browser Origin allowed on the NATS bridge and admin (none)
                                                                    DIALTONE_ALLOW_ORIGINS (comma-separated)
  --upstream SPEC (repeatable)  NAME=TARGET[;hosts=a,b][;default][;warm][;members=N][;discovery=D][;kind=nats]
                                                                    DIALTONE_UPSTREAMS (SPECs separated by spaces)
  --idle-timeout D              close a channel idle this long (30m; 0 = never)     DIALTONE_IDLE_TIMEOUT
  --idle-check-interval D       how often to look (5m)              DIALTONE_IDLE_CHECK_INTERVAL
  --shutdown-grace D            in-flight time on SIGTERM (10s)     DIALTONE_SHUTDOWN_GRACE
  --max-connections N           per listener (1024)                 DIALTONE_MAX_CONNECTIONS
  --max-streams N               h2c streams per connection (256)    DIALTONE_MAX_STREAMS
  --headers-timeout D           slowloris cut-off (10s)             DIALTONE_HEADERS_TIMEOUT
  --request-timeout D           HTTP/1.1 whole-request limit (0 = none)  DIALTONE_REQUEST_TIMEOUT
  --idle-connection-timeout D   idle ingress connections (2m)       DIALTONE_IDLE_CONNECTION_TIMEOUT
  --max-body-bytes N            NATS bridge bodies (1048576)        DIALTONE_MAX_BODY_BYTES
  --max-header-bytes N          ingress header block (65536)        DIALTONE_MAX_HEADER_BYTES
  --check                       validate the config and exit (0 ok, 2 bad)
  --help

Signals: SIGHUP reloads upstreams from the config file; SIGTERM/SIGINT drain
and exit 0. See docs/broker.md.`;

/** flag name → [config path, environment variable] */
const SCALARS: Record<string, [string[], string]> = {
  admin: [["admin"], "DIALTONE_ADMIN"],
  "idle-timeout": [["idle", "timeout"], "DIALTONE_IDLE_TIMEOUT"],
  "idle-check-interval": [["idle", "checkInterval"], "DIALTONE_IDLE_CHECK_INTERVAL"],
  "shutdown-grace": [["shutdownGrace"], "DIALTONE_SHUTDOWN_GRACE"],
  "max-connections": [["limits", "maxConnections"], "DIALTONE_MAX_CONNECTIONS"],
  "max-streams": [["limits", "maxStreams"], "DIALTONE_MAX_STREAMS"],
  "headers-timeout": [["limits", "headersTimeout"], "DIALTONE_HEADERS_TIMEOUT"],
  "request-timeout": [["limits", "requestTimeout"], "DIALTONE_REQUEST_TIMEOUT"],
  "idle-connection-timeout": [["limits", "idleTimeout"], "DIALTONE_IDLE_CONNECTION_TIMEOUT"],
  "max-body-bytes": [["limits", "maxBodyBytes"], "DIALTONE_MAX_BODY_BYTES"],
  "max-header-bytes": [["limits", "maxHeaderBytes"], "DIALTONE_MAX_HEADER_BYTES"],
};

type Flags = Record<string, string | boolean | string[] | undefined>;

function parseFlags(argv: string[]): Flags {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {
    help: { type: "boolean" },
    check: { type: "boolean" },
    config: { type: "string" },
    listen: { type: "string", multiple: true },
    "allow-origin": { type: "string", multiple: true },
    upstream: { type: "string", multiple: true },
    "allow-remote": { type: "boolean" },
  };
  for (const k of Object.keys(SCALARS)) options[k] = { type: "string" };
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values as Flags;
  } catch (err) {
    throw new ConfigError("flags", `${(err as Error).message} (try dialtone broker --help)`);
  }
}

/**
 * The merged raw config: the file (--config or DIALTONE_CONFIG), then
 * DIALTONE_* variables, then flags. Re-run on SIGHUP so a reload sees the
 * same overrides as the start did.
 */
export function loadBrokerConfig(flags: Flags, env: NodeJS.ProcessEnv): BrokerConfig {
  const file = (flags.config as string | undefined) ?? env.DIALTONE_CONFIG;
  const raw: Record<string, unknown> = file ? { ...requireObject("config", readConfigFile(file)) } : {};
  const set = (path: string[], value: unknown): void => {
    let o = raw;
    for (const k of path.slice(0, -1)) {
      const next = o[k];
      o = o[k] = next !== null && typeof next === "object" && !Array.isArray(next) ? { ...(next as Record<string, unknown>) } : {};
    }
    o[path[path.length - 1] as string] = value === "off" && path[0] === "admin" ? false : value;
  };
  for (const [, [path, name]] of Object.entries(SCALARS)) if (env[name] !== undefined && env[name] !== "") set(path, env[name]);
  if (env.DIALTONE_LISTEN)
    set(
      ["listen"],
      env.DIALTONE_LISTEN.split(",").map((s) => s.trim()),
    );
  if (env.DIALTONE_ALLOW_REMOTE) set(["allowRemote"], env.DIALTONE_ALLOW_REMOTE);
  if (env.DIALTONE_ALLOW_ORIGINS)
    set(
      ["allowOrigins"],
      env.DIALTONE_ALLOW_ORIGINS.split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    );
  const envUpstreams = env.DIALTONE_UPSTREAMS ? env.DIALTONE_UPSTREAMS.split(/\s+/).filter(Boolean) : [];
  for (const [flag, [path]] of Object.entries(SCALARS)) if (typeof flags[flag] === "string") set(path, flags[flag]);
  if (Array.isArray(flags.listen) && flags.listen.length > 0) set(["listen"], flags.listen);
  if (flags["allow-remote"] === true) set(["allowRemote"], true);
  if (Array.isArray(flags["allow-origin"]) && flags["allow-origin"].length > 0) set(["allowOrigins"], flags["allow-origin"]);
  const specs = [...envUpstreams, ...(Array.isArray(flags.upstream) ? flags.upstream : [])];
  if (specs.length > 0) {
    const ups = { ...(raw.upstreams !== undefined ? requireObject("upstreams", raw.upstreams) : {}) };
    for (const spec of specs) {
      const [name, u] = parseUpstreamSpec(spec);
      ups[name] = u;
    }
    raw.upstreams = ups;
  }
  return resolveConfig(raw);
}

/** `api=http://127.0.0.1:8080;hosts=a,b;default;warm;members=2;discovery=static:///…` */
export function parseUpstreamSpec(spec: string): [string, Record<string, unknown>] {
  const [head = "", ...rest] = spec.split(";");
  const eq = head.indexOf("=");
  if (eq <= 0)
    throw new ConfigError("--upstream", `expected NAME=TARGET[;hosts=a,b][;default][;warm], got ${JSON.stringify(head.replace(/\/\/[^@/]*@/, "//***@"))}`);
  const name = head.slice(0, eq);
  const u: Record<string, unknown> = { target: head.slice(eq + 1) };
  for (const part of rest) {
    const i = part.indexOf("=");
    const k = i < 0 ? part : part.slice(0, i);
    const v = i < 0 ? undefined : part.slice(i + 1);
    if (k === "default" || k === "warm") u[k] = v === undefined ? true : v;
    else if (k === "hosts") u.hosts = (v ?? "").split(",").filter(Boolean);
    else if (k === "members" || k === "maxQueue" || k === "maxRetries") u[k] = Number(v);
    else if (k === "discovery" || k === "kind" || k === "balancer" || /Timeout$|Grace$/.test(k)) u[k] = v;
    else
      throw new ConfigError(
        `--upstream ${name}`,
        `unknown setting ${JSON.stringify(k)} (hosts, default, warm, members, discovery, kind, balancer, *Timeout; the rest go in the config file)`,
      );
  }
  return [name, u];
}

function log(record: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
}

/**
 * `dialtone broker …`: runs until SIGTERM/SIGINT, then drains and resolves
 * 0. Prints one JSON line on stdout once listening ({"listening": [...],
 * "admin": ...}) so supervisors and tests learn ephemeral ports.
 */
export async function runBroker(argv: string[], version: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const flags = parseFlags(argv);
  if (flags.help) {
    console.log(BROKER_HELP);
    return 0;
  }
  const config = loadBrokerConfig(flags, env);
  if (flags.check) {
    Broker.check(config);
    console.log(
      `config ok: ${config.listen.length} listener(s), ${config.upstreams.length} upstream(s)${config.upstreams.length ? `: ${config.upstreams.map((u) => u.name).join(", ")}` : ""}`,
    );
    return 0;
  }
  const broker = await Broker.start(config, version);
  process.stdout.write(`${JSON.stringify({ listening: broker.listen, admin: broker.admin ?? null })}\n`);
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log({ msg: "stopping", signal });
      broker.close().then(
        () => {
          log({ msg: "stopped" });
          resolve(0);
        },
        (err: unknown) => {
          log({ msg: "stop failed", error: err instanceof Error ? err.message : String(err) });
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
    process.on("SIGHUP", () => {
      if (stopping) return;
      let next: BrokerConfig;
      try {
        next = loadBrokerConfig(flags, env);
      } catch (err) {
        log({ msg: "reload refused: config invalid, keeping the running one", error: err instanceof Error ? err.message : String(err) });
        return;
      }
      broker.reload(next).then(
        (r) => log({ msg: "reloaded", ...r }),
        (err: unknown) => log({ msg: "reload refused", error: err instanceof Error ? err.message : String(err) }),
      );
    });
  });
}

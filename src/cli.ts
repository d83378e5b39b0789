#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runBroker } from "./broker/command.js";
import { parseDuration } from "./core/duration.js";
import { ConfigError, DialtoneError } from "./core/errors.js";
import { createHttp2Channel } from "./transport/http2/channel.js";
import { createNatsChannel } from "./transport/nats/channel.js";

const HELP = `dialtone: always-warm connection pools

usage:
  dialtone probe <url> [--discovery D] [--members N] [--wait 5s] [--ca file]
      Warm a channel to <url> (http:// or https:// for HTTP/2; nats:// or
      tls://, or a comma-separated list, for NATS), print its stats as JSON,
      exit 0 if every member became ready within --wait, 1 otherwise.
  dialtone broker --config broker.yaml [--check] [flags]
      The sidecar broker: HTTP/1.1 + h2c ingress, NATS bridge, admin page
      (dialtone broker --help lists every flag).
  dialtone --version | --help

Durations take 250ms, 5s, 2m.`;

/** The --ca file as text; a missing or unreadable file is a clear ConfigError, not a raw ENOENT. */
function readCaFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (code ?? "unreadable");
    throw new ConfigError("--ca", `cannot read the CA file ${JSON.stringify(path)}: ${why}`);
  }
}

function version(): string {
  return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  // The broker has its own flags (and DIALTONE_* variables); parse them there.
  if (argv[0] === "broker") return await runBroker(argv.slice(1), version());
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: "boolean", short: "h" },
      version: { type: "boolean" },
      discovery: { type: "string" },
      members: { type: "string" },
      wait: { type: "string" },
      ca: { type: "string" },
    },
  });
  if (values.version) {
    console.log(version());
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  if (command === "probe") {
    const target = rest[0];
    if (!target) throw new DialtoneError("ERR_DIALTONE_USAGE", "probe needs a URL, e.g. dialtone probe http://127.0.0.1:8080 or nats://127.0.0.1:4222");
    const wait = parseDuration("--wait", values.wait ?? "5s");
    const ca = values.ca === undefined ? undefined : readCaFile(values.ca);
    const common = { discovery: values.discovery, members: values.members === undefined ? undefined : Number(values.members) };
    // nats://, tls:// (and lists of them) are NATS; anything else is an HTTP/2 URL.
    const ch = /^\s*(nats|tls):\/\//i.test(target)
      ? createNatsChannel({ target, ...common, tls: ca ? { ca } : undefined })
      : createHttp2Channel({ target, ...common, tls: ca ? { ca } : undefined });
    let ok = true;
    try {
      // The CLI's channel runs on the system clock (no clock option given), so the system's timer is its clock's.
      await ch.ready(AbortSignal.timeout(wait));
    } catch {
      ok = false;
    }
    console.log(JSON.stringify(ch.stats(), null, 2));
    await ch.close();
    return ok ? 0 : 1;
  }
  throw new DialtoneError("ERR_DIALTONE_USAGE", `unknown command ${JSON.stringify(command)} (try --help)`);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`dialtone: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 2;
  },
);

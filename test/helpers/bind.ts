import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startDnsChild, systemBinary, zoneFileName, type DnsChild, type DnsChildConfig } from "./dns-child.js";

/**
 * A real BIND 9 (named) on 127.0.0.1: primary for the zones, recursive
 * (no DNSSEC validation) for the forwarded ones. In the foreground (-g:
 * logs to stderr, no setuid, no daemon), IPv4 only, one worker thread; the
 * options put every file it writes (pid, session key, managed keys) in the
 * temp dir, and `controls { }` turns rndc off, so nothing under /etc or
 * /run is touched.
 */
export function startBind(config: DnsChildConfig, probe: string): Promise<DnsChild> {
  return startDnsChild(
    "named",
    systemBinary("named", "bind9"),
    config,
    (dir, port, c) => {
      const lines = [
        "options {",
        `  directory "${dir}";`,
        `  pid-file "${join(dir, "named.pid")}";`,
        `  session-keyfile "${join(dir, "session.key")}";`,
        `  managed-keys-directory "${dir}";`,
        `  listen-on port ${port} { 127.0.0.1; };`,
        "  listen-on-v6 { none; };",
        "  recursion yes;",
        "  allow-query { any; };",
        "  allow-recursion { any; };",
        "  dnssec-validation no;",
        "  notify no;",
        "};",
        "controls { };",
      ];
      for (const origin of Object.keys(c.zones)) lines.push(`zone "${origin}" { type primary; file "${zoneFileName(origin)}"; };`);
      for (const [zone, server] of Object.entries(c.forwards ?? {})) {
        const [host, p] = server.split(":");
        lines.push(`zone "${zone}" { type forward; forward only; forwarders { ${host} port ${p}; }; };`);
      }
      const file = join(dir, "named.conf");
      writeFileSync(file, lines.join("\n") + "\n");
      return ["-g", "-4", "-n", "1", "-c", file];
    },
    probe,
  );
}

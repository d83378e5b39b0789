import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startDnsChild, systemBinary, zoneFileName, type DnsChild, type DnsChildConfig } from "./dns-child.js";

/**
 * A real unbound (a recursive resolver) on 127.0.0.1: the zones are
 * auth-zones it resolves from as if from upstream (answers carry RA, CNAME
 * chains into another zone are followed as a recursive would), and each
 * forward sends that zone to another server. In the foreground (-d), with
 * no chroot, no user switch, no remote control and no syslog, so it runs
 * unprivileged-safe from a temp dir; "test." is a special-use name that
 * unbound answers NXDOMAIN by default, so that default is switched off.
 */
export function startUnbound(config: DnsChildConfig, probe: string): Promise<DnsChild> {
  return startDnsChild(
    "unbound",
    systemBinary("unbound", "unbound"),
    config,
    (dir, port, c) => {
      const lines = [
        "server:",
        "  interface: 127.0.0.1",
        `  port: ${port}`,
        "  do-daemonize: no",
        '  chroot: ""',
        '  username: ""',
        `  directory: "${dir}"`,
        `  pidfile: "${join(dir, "unbound.pid")}"`,
        "  use-syslog: no",
        '  logfile: ""',
        "  verbosity: 0",
        "  do-ip6: no",
        "  num-threads: 1",
        "  so-reuseport: no",
        "  access-control: 127.0.0.0/8 allow",
        '  module-config: "iterator"',
        // Forwarding to another server on loopback is the point here.
        "  do-not-query-localhost: no",
        '  local-zone: "test." nodefault',
        // A forwarder that stops answering must be asked again at the next query, not held down for minutes.
        "  infra-host-ttl: 1",
      ];
      for (const origin of Object.keys(c.zones)) {
        lines.push(
          "auth-zone:",
          `  name: "${origin}"`,
          `  zonefile: "${join(dir, zoneFileName(origin))}"`,
          "  for-downstream: no",
          "  for-upstream: yes",
          "  fallback-enabled: no",
        );
      }
      for (const [zone, server] of Object.entries(c.forwards ?? {})) {
        const [host, p] = server.split(":");
        lines.push("forward-zone:", `  name: "${zone}"`, `  forward-addr: ${host}@${p}`);
      }
      lines.push("remote-control:", "  control-enable: no", "");
      const file = join(dir, "unbound.conf");
      writeFileSync(file, lines.join("\n"));
      return ["-d", "-c", file];
    },
    probe,
  );
}

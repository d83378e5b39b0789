import { readFileSync } from "node:fs";
import { isIP } from "node:net";

/** name (lower case, no trailing dot) → IP literals, in file order. */
export type HostsTable = Map<string, string[]>;

export function parseHosts(text: string): HostsTable {
  const table: HostsTable = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) continue;
    const [ip, ...names] = line.split(/\s+/);
    if (!ip || !isIP(ip.replace(/%.*$/, ""))) continue;
    for (const n of names) {
      const key = n.toLowerCase().replace(/\.$/, "");
      const list = table.get(key) ?? [];
      if (!list.includes(ip)) list.push(ip);
      table.set(key, list);
    }
  }
  return table;
}

/** Reads a hosts file; a missing or unreadable one is an empty table. */
export function readHosts(path = "/etc/hosts"): HostsTable {
  try {
    return parseHosts(readFileSync(path, "utf8"));
  } catch {
    return new Map();
  }
}

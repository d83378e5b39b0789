import { readFileSync } from "node:fs";
import { isIP } from "node:net";

/** The parts of resolv.conf(5) a stub resolver needs. Times are ms. */
export interface ResolvConf {
  /** "ip:port" or "[v6]:port". */
  nameservers: string[];
  search: string[];
  ndots: number;
  timeout: number;
  attempts: number;
  rotate: boolean;
}

/** glibc's defaults: 5 s per try, 2 attempts, ndots 1. */
export const RESOLV_DEFAULTS: Readonly<ResolvConf> = Object.freeze({
  nameservers: ["127.0.0.1:53"],
  search: [],
  ndots: 1,
  timeout: 5000,
  attempts: 2,
  rotate: false,
});

/** Parses resolv.conf text. Unknown lines are ignored, as the C library does. */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: string[] = [];
  let search: string[] = [];
  let { ndots, timeout, attempts, rotate } = RESOLV_DEFAULTS;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    if (!line) continue;
    const [key, ...rest] = line.split(/\s+/);
    if (key === "nameserver" && rest[0]) {
      const ip = rest[0].replace(/%.*$/, "");
      const fam = isIP(ip);
      if (fam === 4) nameservers.push(`${ip}:53`);
      else if (fam === 6) nameservers.push(`[${ip}]:53`);
    } else if (key === "search" || key === "domain") {
      search = rest.map((d) => d.replace(/\.$/, "")).filter(Boolean);
    } else if (key === "options") {
      for (const opt of rest) {
        const [name, value] = opt.split(":");
        const n = Number(value);
        if (name === "ndots" && Number.isInteger(n) && n >= 0) ndots = Math.min(n, 15);
        else if (name === "timeout" && Number.isFinite(n) && n > 0) timeout = Math.min(n, 30) * 1000;
        else if (name === "attempts" && Number.isInteger(n) && n > 0) attempts = Math.min(n, 5);
        else if (name === "rotate") rotate = true;
      }
    }
  }
  return { nameservers: nameservers.length ? nameservers : [...RESOLV_DEFAULTS.nameservers], search, ndots, timeout, attempts, rotate };
}

/** Reads and parses a resolv.conf; a missing file gives the defaults. */
export function readResolvConf(path = "/etc/resolv.conf"): ResolvConf {
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    // No resolv.conf: the C library falls back to the local server, and so do we.
  }
  return parseResolvConf(text);
}

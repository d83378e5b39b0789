import { isIP } from "node:net";
import { TargetError } from "./errors.js";

/** One dialable endpoint: an IP literal and a port. */
export interface Address {
  readonly host: string;
  readonly port: number;
  /** 4 or 6 for IP literals. */
  readonly family: 4 | 6;
  /** Relative weight (SRV); 1 when the source has none. */
  readonly weight?: number;
}

/** "127.0.0.2:8443" or "[::1]:8443": the key every part uses for an address. */
export function addressKey(a: Pick<Address, "host" | "port">): string {
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * Splits "host:port" / "[v6]:port" / "host" (with defaultPort). Throws a
 * TargetError naming the input when the port is missing or out of range.
 */
export function parseHostPort(input: string, target: string, defaultPort?: number): { host: string; port: number } {
  let host: string;
  let portText: string | undefined;
  const s = input.trim();
  if (s.startsWith("[")) {
    const end = s.indexOf("]");
    if (end < 0) throw new TargetError(target, `unclosed "[" in ${JSON.stringify(input)}`);
    host = s.slice(1, end);
    const rest = s.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) throw new TargetError(target, `unexpected ${JSON.stringify(rest)} after "]"`);
      portText = rest.slice(1);
    }
    if (isIP(host) !== 6) throw new TargetError(target, `${JSON.stringify(host)} is not an IPv6 address`);
  } else {
    const colons = s.split(":").length - 1;
    if (colons > 1) {
      // A bare IPv6 literal without brackets and without a port.
      host = s;
      if (isIP(host) !== 6) throw new TargetError(target, `${JSON.stringify(s)} is not host:port (IPv6 needs [brackets])`);
    } else if (colons === 1) {
      const i = s.indexOf(":");
      host = s.slice(0, i);
      portText = s.slice(i + 1);
    } else {
      host = s;
    }
  }
  if (host === "") throw new TargetError(target, `empty host in ${JSON.stringify(input)}`);
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) throw new TargetError(target, `missing port in ${JSON.stringify(input)}`);
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(portText)) throw new TargetError(target, `bad port ${JSON.stringify(portText)} in ${JSON.stringify(input)}`);
    port = Number(portText);
  }
  if (port < 1 || port > 65535) throw new TargetError(target, `port ${port} out of range in ${JSON.stringify(input)}`);
  return { host, port };
}

/** An Address from an IP literal, or a TargetError when it is not one. */
export function ipAddress(host: string, port: number, target: string, weight?: number): Address {
  const family = isIP(host);
  if (family !== 4 && family !== 6) throw new TargetError(target, `${JSON.stringify(host)} is not an IP address`);
  return weight === undefined ? { host, port, family } : { host, port, family, weight };
}

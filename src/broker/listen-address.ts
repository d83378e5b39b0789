import { isIP } from "node:net";
import { ConfigError } from "../core/errors.js";

/** Where a broker listener binds: a TCP host:port or a unix socket path. */
export type ListenAddress = { kind: "tcp"; host: string; port: number; text: string } | { kind: "unix"; path: string; text: string };

/**
 * Parses `http://127.0.0.1:7000`, `127.0.0.1:7000`, `[::1]:7000` or
 * `unix:///run/dialtone/broker.sock`. Unless `allowRemote`, a TCP address
 * must be loopback: a sidecar that listens on every interface is an open
 * proxy into the backends it keeps warm, so that takes an explicit flag.
 */
export function parseListenAddress(option: string, value: unknown, allowRemote: boolean): ListenAddress {
  if (typeof value !== "string" || value.trim() === "")
    throw new ConfigError(option, `expected "http://127.0.0.1:7000" or "unix:///path/to.sock", got ${JSON.stringify(value)}`);
  const text = value.trim();
  if (text.startsWith("unix:")) {
    const path = text.replace(/^unix:(\/\/)?/, "");
    if (!path.startsWith("/"))
      throw new ConfigError(option, `unix socket path must be absolute (unix:///run/dialtone/broker.sock), got ${JSON.stringify(text)}`);
    // sun_path holds 108 bytes on Linux (104 on macOS); longer paths fail at bind with an unhelpful EINVAL.
    if (Buffer.byteLength(path) > 100) throw new ConfigError(option, `unix socket path is longer than 100 bytes: ${JSON.stringify(path)}`);
    return { kind: "unix", path, text };
  }
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  } catch {
    throw new ConfigError(option, `${JSON.stringify(text)} is not an address (use http://127.0.0.1:7000 or unix:///path)`);
  }
  if (url.protocol !== "http:")
    throw new ConfigError(option, `only http:// (HTTP/1.1 and h2c) and unix:// listeners are supported, got ${JSON.stringify(url.protocol)}`);
  if (url.pathname !== "/" || url.search !== "" || url.username !== "" || url.password !== "") {
    throw new ConfigError(option, `a listen address is host:port only, got ${JSON.stringify(text.replace(/\/\/[^@/]*@/, "//***@"))}`);
  }
  // WHATWG URL drops a default port (":80" reads as ""), so take it from the text.
  const port = url.port !== "" ? Number(url.port) : /:(\d{1,5})\/?$/.test(text) ? 80 : undefined;
  if (port === undefined) throw new ConfigError(option, `${JSON.stringify(text)} needs a port`);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (!allowRemote && !isLoopback(host)) {
    throw new ConfigError(
      option,
      `${host} is not a loopback address; the broker listens only on 127.0.0.0/8, ::1 or unix sockets unless --allow-remote is given`,
    );
  }
  return { kind: "tcp", host, port, text: `http://${url.host}` };
}

export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.split(".")[0] === "127";
  if (isIP(host) === 6) return host === "::1" || host === "0:0:0:0:0:0:0:1";
  return false;
}

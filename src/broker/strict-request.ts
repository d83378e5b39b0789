import type { IncomingHttpHeaders } from "node:http";
import type { Failure } from "./error-response.js";

/**
 * What a strict intermediary refuses before routing, as HAProxy does: each
 * check returns the Failure to send (with its reason in x-dialtone-error),
 * or undefined. Pure: headers in, a verdict out.
 */

/** HTTP/1.1: more than one Host field line is a 400 (RFC 9112 §3.2: a proxy routing by the first would be fooled). */
export function ambiguousHostH1(rawHeaders: readonly string[]): Failure | undefined {
  let hosts = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 4 && name.toLowerCase() === "host" && ++hosts > 1) return AMBIGUOUS_HOST_H1;
  }
  return undefined;
}

/** HTTP/2: a `host` field that names another authority than `:authority` makes the request malformed (RFC 9113 §8.3.1). */
export function ambiguousHostH2(headers: IncomingHttpHeaders): Failure | undefined {
  const host = headers.host;
  if (host === undefined) return undefined;
  const authority = headers[":authority"];
  if (Array.isArray(host) || host.includes(",")) return AMBIGUOUS_HOST_H2;
  if (typeof authority === "string" && authority !== "" && authority.toLowerCase() !== host.trim().toLowerCase()) return AMBIGUOUS_HOST_H2;
  return undefined;
}

/**
 * A request to switch protocols (WebSocket, …): the broker forwards
 * requests, not tunnels, so it says so instead of answering the handshake
 * with an ordinary response. `Upgrade: h2c` alone is ignored, as RFC 9110
 * §7.8 lets a server do (the request is served over HTTP/1.1; h2c with
 * prior knowledge is what the broker speaks).
 */
export function upgradeRefused(headers: IncomingHttpHeaders): Failure | undefined {
  const upgrade = headers.upgrade;
  if (upgrade === undefined || upgrade === "") return undefined;
  const protocols = upgrade.split(",").map((p) => p.trim().toLowerCase());
  if (protocols.every((p) => p === "h2c" || p === "")) return undefined;
  return {
    status: 501,
    code: UNSUPPORTED,
    reason: "the broker does not upgrade connections (WebSocket and other protocols): send plain requests, or h2c with prior knowledge",
  };
}

export const CONNECT_REFUSED: Failure = {
  status: 501,
  code: "ERR_DIALTONE_BROKER_UNSUPPORTED",
  reason: "the broker forwards requests, it is not a tunnel: CONNECT is not supported",
};

/**
 * Cross-site requests: a browser sends `Origin` with a page's cross-origin
 * requests (and same-origin ones that are not GET or HEAD), so a web page
 * on this host could otherwise POST to the NATS bridge or read the admin
 * endpoints. A request that carries an Origin not in `allowOrigins` is
 * refused; requests without one (curl, services, a page's own same-origin
 * GETs) are not cross-site and pass.
 */
export function originRefused(headers: IncomingHttpHeaders, allowOrigins: ReadonlySet<string>): Failure | undefined {
  const origin = headers.origin;
  if (origin === undefined) return undefined;
  if (typeof origin === "string" && allowOrigins.has(origin.toLowerCase())) return undefined;
  return { status: 403, code: "ERR_DIALTONE_BROKER_ORIGIN", reason: "cross-site request refused: its Origin is not in allowOrigins" };
}

const UNSUPPORTED = "ERR_DIALTONE_BROKER_UNSUPPORTED";
const AMBIGUOUS_HOST_H1: Failure = {
  status: 400,
  code: "ERR_DIALTONE_BAD_REQUEST",
  reason: "more than one Host header: ambiguous target (RFC 9112 section 3.2)",
};
const AMBIGUOUS_HOST_H2: Failure = {
  status: 400,
  code: "ERR_DIALTONE_BAD_REQUEST",
  reason: "the host header names another authority than :authority (RFC 9113 section 8.3.1)",
};

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1) and HTTP/2's connection-specific ones
 * (RFC 9113 §8.2.2) describe one connection, not the message: a proxy must
 * not forward them. `host` goes too: the channel sets :authority to its
 * target's host, which is what the backend's certificate names.
 */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  "te",
  "trailer",
  "expect",
  "host",
]);

/** Names listed in a Connection header are hop-by-hop for that message too (undefined: none listed, the usual case). */
function connectionListed(headers: IncomingHttpHeaders): Set<string> | undefined {
  const c = headers.connection;
  if (typeof c !== "string") return undefined;
  const listed = new Set<string>();
  for (const n of c.split(",")) listed.add(n.trim().toLowerCase());
  return listed;
}

/** Every field but pseudo-headers, hop-by-hop ones and those the Connection header lists. Runs per request: a for-in, no entry arrays. */
function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const listed = connectionListed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || name.charCodeAt(0) === 58 /* ":" */ || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/**
 * The request fields to send upstream. `te: trailers` survives because gRPC
 * needs it (and it is the one TE HTTP/2 allows). Values are passed as they
 * are: the channel's own checks refuse anything a session would choke on,
 * with a BadRequestError that the ingress turns into a 400.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out = endToEnd(headers);
  const te = headers.te;
  if (typeof te === "string" && /(^|,)\s*trailers\s*(;|,|$)/i.test(te)) out.te = "trailers";
  return out;
}

/** Response (or trailer) fields to send back to the client: no pseudo-headers, nothing hop-by-hop. */
export function clientResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  return endToEnd(headers);
}

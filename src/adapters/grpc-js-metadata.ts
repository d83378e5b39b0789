/**
 * grpc-js Metadata ↔ HTTP/2 headers for `dialtone/grpc-js`, with grpc-js's
 * own Metadata class doing the `-bin` base64 both ways.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import grpc from "@grpc/grpc-js";

/**
 * Names a caller's metadata may not carry: the ones gRPC's transport sets
 * itself (PROTOCOL-HTTP2.md) and HTTP/1 connection-specific fields that
 * HTTP/2 forbids (Node would throw, or reset the stream). grpc-js overwrites
 * some of these silently; a call that sets one here fails INTERNAL before
 * anything is sent, so the mistake shows.
 */
const RESERVED = new Set(["content-type", "te", "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings"]);

/** grpc-js's user-agent form, so servers that look at it see a grpc-js client (and which one). */
export const USER_AGENT = "grpc-node-js dialtone";

/** The request headers for a call, or the reason its metadata is refused. */
export function requestHeaders(md: grpc.Metadata, timeout: string | undefined): { headers: OutgoingHttpHeaders } | { refused: string } {
  let user: OutgoingHttpHeaders;
  try {
    user = md.toHttp2Headers();
  } catch (err) {
    return { refused: `Invalid metadata: ${(err as Error).message}` };
  }
  const headers: OutgoingHttpHeaders = {};
  for (const key in user) {
    if (key.startsWith("grpc-") || key.startsWith(":") || RESERVED.has(key)) {
      return { refused: `Metadata key "${key}" is reserved for gRPC's transport and may not be set by the caller` };
    }
    headers[key] = user[key];
  }
  headers["content-type"] = "application/grpc";
  headers["te"] = "trailers";
  headers["grpc-accept-encoding"] = "identity,deflate,gzip";
  if (headers["user-agent"] === undefined) headers["user-agent"] = USER_AGENT;
  if (timeout !== undefined) headers["grpc-timeout"] = timeout;
  return { headers };
}

/**
 * The longest grpc-timeout sent, 2147483 s (just under 2^31 ms, about 24.8
 * days). A grpc-js server arms one Node timer for the header's value as a
 * 32-bit integer of milliseconds: a longer one overflows, and the server
 * ends the call DEADLINE_EXCEEDED at once (as it does for grpc-js's own
 * client, which sends the full value). The client's own deadline still
 * ends the call when due.
 */
const LONGEST_TIMEOUT_MS = 2_147_483_000;

/**
 * grpc-timeout as grpc-js writes it: at most 8 digits, in the finest unit
 * that fits, rounded up so the server never sees less time than is left —
 * but never more than LONGEST_TIMEOUT_MS (above).
 */
export function timeoutHeader(ms: number): string {
  if (ms > LONGEST_TIMEOUT_MS) return `${LONGEST_TIMEOUT_MS / 1000}S`;
  const units: Array<[string, number]> = [
    ["m", 1],
    ["S", 1000],
    ["M", 60_000],
    ["H", 3_600_000],
  ];
  for (const [unit, factor] of units) {
    const amount = Math.max(1, Math.ceil(ms / factor));
    if (amount < 1e8) return `${amount}${unit}`;
  }
  return "99999999H";
}

/** Response headers or trailers as grpc-js Metadata (pseudo-headers left out, `-bin` values decoded). */
export function toMetadata(headers: IncomingHttpHeaders): grpc.Metadata {
  try {
    return grpc.Metadata.fromHttp2Headers(headers);
  } catch {
    return new grpc.Metadata();
  }
}

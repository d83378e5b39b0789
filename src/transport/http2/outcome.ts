import type { IncomingHttpHeaders } from "node:http2";
import type { AttemptOutcome } from "../../pool/outlier.js";

/** gRPC's UNAVAILABLE: the server (or a proxy) says it cannot serve now — a gateway error to outlier detection. */
const GRPC_UNAVAILABLE = "14";

/**
 * An HTTP/2 answer as outlier detection counts it (Envoy): 502, 503, 504
 * and gRPC UNAVAILABLE (in the headers of a trailers-only response, or the
 * trailers) are gateway errors, any other 5xx a 5xx, the rest "ok".
 */
export function http2Outcome(status: number, headers: IncomingHttpHeaders, trailers?: IncomingHttpHeaders): AttemptOutcome {
  if (headers["grpc-status"] === GRPC_UNAVAILABLE || trailers?.["grpc-status"] === GRPC_UNAVAILABLE) return "gateway";
  if (status === 502 || status === 503 || status === 504) return "gateway";
  return status >= 500 ? "5xx" : "ok";
}

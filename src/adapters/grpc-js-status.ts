/**
 * How a call that did not end with a grpc-status ends, decided as grpc-js's
 * subchannel-call.ts and grpc's doc/statuscodes.md do: what the HTTP status
 * and the RST_STREAM code mean, and what each dialtone failure means.
 */
import type { IncomingHttpHeaders } from "node:http2";
import grpc from "@grpc/grpc-js";
import { DialtoneError } from "../core/errors.js";
import { toMetadata } from "./grpc-js-metadata.js";
import { GRPC_UNAVAILABLE_CODES } from "./grpc-unavailable.js";

const Status = grpc.status;
export type GrpcStatus = grpc.StatusObject;

/** The gRPC status in a trailer block (or a trailers-only head), undefined when it carries none. */
export function statusFromTrailers(headers: IncomingHttpHeaders): GrpcStatus | undefined {
  const raw = headers["grpc-status"];
  if (raw === undefined) return undefined;
  const metadata = toMetadata(headers);
  metadata.remove("grpc-status");
  metadata.remove("grpc-message");
  const code = Number(Array.isArray(raw) ? raw[0] : raw);
  const message = headers["grpc-message"];
  let details = "";
  if (typeof message === "string") {
    try {
      details = decodeURI(message);
    } catch {
      details = message;
    }
  }
  // grpc-status-details-bin stays in the metadata, as grpc-js leaves it for the caller to decode.
  return { code: Number.isInteger(code) && code >= 0 && code <= 16 ? code : Status.UNKNOWN, details, metadata };
}

/** grpc-js's mapHttpStatusCode: a response that carried no grpc-status. */
export function statusFromHttp(httpStatus: number, headers: IncomingHttpHeaders = {}): GrpcStatus {
  const codes: Record<number, grpc.status> = {
    400: Status.INTERNAL,
    401: Status.UNAUTHENTICATED,
    403: Status.PERMISSION_DENIED,
    404: Status.UNIMPLEMENTED,
    429: Status.UNAVAILABLE,
    502: Status.UNAVAILABLE,
    503: Status.UNAVAILABLE,
    504: Status.UNAVAILABLE,
  };
  return { code: codes[httpStatus] ?? Status.UNKNOWN, details: `Received HTTP status code ${httpStatus}`, metadata: toMetadata(headers) };
}

/** RST_STREAM codes as grpc-js reads them (subchannel-call.ts), by Node's NGHTTP2_* name. */
const RST: Record<string, grpc.status> = {
  NGHTTP2_REFUSED_STREAM: Status.UNAVAILABLE,
  NGHTTP2_CANCEL: Status.CANCELLED,
  NGHTTP2_ENHANCE_YOUR_CALM: Status.RESOURCE_EXHAUSTED,
  NGHTTP2_INADEQUATE_SECURITY: Status.PERMISSION_DENIED,
};

/** The status for a call that failed with `err` (a dialtone error, or Node's). */
export function statusFromError(err: unknown): GrpcStatus {
  const metadata = toMetadata({});
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof DialtoneError) {
    if (GRPC_UNAVAILABLE_CODES.has(err.code)) return { code: Status.UNAVAILABLE, details: message, metadata };
    if (err.code === "ERR_DIALTONE_REQUEST_TIMEOUT") return { code: Status.DEADLINE_EXCEEDED, details: "Deadline exceeded", metadata };
    if (err.code === "ERR_DIALTONE_ABORTED") return { code: Status.CANCELLED, details: "Cancelled on client", metadata };
    if (err.code === "ERR_DIALTONE_STREAM") {
      const name = /NGHTTP2_[A-Z_]+/.exec(`${message} ${(err.cause as Error | undefined)?.message ?? ""}`)?.[0];
      const code = name === undefined ? undefined : RST[name];
      return { code: code ?? Status.INTERNAL, details: message, metadata };
    }
    // Bad input, a request body that failed, an incomplete response: grpc-js calls these INTERNAL.
    return { code: Status.INTERNAL, details: message, metadata };
  }
  return { code: Status.INTERNAL, details: message, metadata };
}

import type { DialtoneErrorCode } from "../core/errors.js";

/**
 * The DialtoneError codes that mean "the connection went away or is not
 * there", which gRPC's doc/statuscodes.md makes UNAVAILABLE (a caller may
 * retry): a member lost, evicted or closed with the channel, a stream the
 * peer refused or never saw, no member within the acquire timeout (the
 * message names the last connection error), a channel not ready or given
 * up, a refused dial. One list for both gRPC adapters (dialtone/connect and
 * dialtone/grpc-js), so they read a failure alike.
 */
export const GRPC_UNAVAILABLE_CODES: ReadonlySet<DialtoneErrorCode> = new Set<DialtoneErrorCode>([
  "ERR_DIALTONE_MEMBER_LOST",
  "ERR_DIALTONE_CLOSED",
  "ERR_DIALTONE_NOT_SENT",
  "ERR_DIALTONE_REFUSED_STREAM",
  "ERR_DIALTONE_GOAWAY",
  "ERR_DIALTONE_NO_MEMBER",
  "ERR_DIALTONE_NOT_READY",
  "ERR_DIALTONE_QUEUE_FULL",
  "ERR_DIALTONE_OVERLOADED",
  "ERR_DIALTONE_GAVE_UP",
  "ERR_DIALTONE_CONNECT",
]);

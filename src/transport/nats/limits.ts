import type { MsgHdrs, NatsConnection } from "@nats-io/transport-node";
import { BadRequestError } from "../../core/errors.js";

/**
 * The server's size limits, checked before anything is written: a message
 * over them is the caller's error, and must cost nothing else.
 *
 * nats-server closes a connection whose control line (`PUB <subject>
 * <reply> <size>`, `SUB <subject> <queue> <sid>`) is longer than its
 * `max_control_line` — the member, and every request in flight on it, would
 * be lost for one caller's long subject — and nats.js throws a generic
 * error for a message over `max_payload`. `max_payload` is in the server's
 * INFO, so it is read from the connection the call was picked for;
 * `max_control_line` is not announced (nats.java takes it as a client
 * option too), so it is the channel's `maxControlLine` option, by default
 * nats-server's own default.
 */

/** nats-server's default `max_control_line` (MAX_CONTROL_LINE_SIZE), bytes. */
export const DEFAULT_MAX_CONTROL_LINE = 4096;

/**
 * Bytes a request's control line holds besides its subject: the reply
 * subject (`_INBOX.` + a 22-character nuid + `.` + a counter token of at
 * most 11 base-36 digits) and two sizes of up to 10 digits, with the spaces
 * between. An upper bound: a subject it refuses is at most a few dozen bytes
 * short of what the server would have taken.
 */
const REQUEST_LINE_EXTRA = 1 + (7 + 22 + 1 + 11) + 2 * (1 + 10);
/** A publish: no reply subject, two sizes. */
const PUBLISH_LINE_EXTRA = 2 * (1 + 10);
/** A subscription: the sid (a counter) and the space before it; a queue group adds itself and a space. */
const SUBSCRIBE_LINE_EXTRA = 1 + 10;

/** The subject's control line fits the server's `max_control_line`; else a BadRequestError (too-large) for that call alone. */
export function checkControlLine(target: string, subject: string, maxControlLine: number, kind: "request" | "publish" | "subscribe", queue?: string): void {
  const extra =
    kind === "request"
      ? REQUEST_LINE_EXTRA
      : kind === "publish"
        ? PUBLISH_LINE_EXTRA
        : SUBSCRIBE_LINE_EXTRA + (queue === undefined ? 0 : 1 + Buffer.byteLength(queue));
  // No byte count while the subject clearly fits: n UTF-16 units take at most 3n bytes.
  if (subject.length * 3 + extra <= maxControlLine) return;
  const line = Buffer.byteLength(subject) + extra;
  if (line <= maxControlLine) return;
  const what = queue === undefined ? "subject makes" : "subject and queue group make";
  throw new BadRequestError(
    target,
    "subject",
    `the ${what} a control line of up to ${line} bytes, over the server's max_control_line of ${maxControlLine} (it would close the connection)`,
    { reason: "too-large" },
  );
}

/**
 * The header block and payload fit the `max_payload` the connected server
 * announced in its INFO (nats.js counts both against it, as the server
 * does); else a BadRequestError (too-large) naming the part that is too big.
 */
export function checkPayloadSize(target: string, nc: NatsConnection, data: string | Uint8Array | undefined, headers: MsgHdrs | undefined): void {
  const max = nc.info?.max_payload;
  if (max === undefined || !(max > 0)) return;
  // No byte count while the message clearly fits: n UTF-16 units take at most 3n bytes.
  if (headers === undefined && (data === undefined || (typeof data === "string" ? data.length * 3 : data.byteLength) <= max)) return;
  const dataBytes = data === undefined ? 0 : typeof data === "string" ? Buffer.byteLength(data) : data.byteLength;
  const headerBytes = headers === undefined ? 0 : encodedLength(headers);
  if (dataBytes + headerBytes <= max) return;
  if (headerBytes > max) {
    throw new BadRequestError(target, "headers", `the header block is ${headerBytes} bytes, over the server's max_payload of ${max} bytes`, {
      reason: "too-large",
    });
  }
  const hdr = headerBytes > 0 ? ` (with a ${headerBytes}-byte header block)` : "";
  throw new BadRequestError(target, "data", `the message is ${dataBytes + headerBytes} bytes${hdr}, over the server's max_payload of ${max} bytes`, {
    reason: "too-large",
  });
}

/** The header block as nats.js will write it (its MsgHdrsImpl has encode(); the public MsgHdrs type does not say so). */
function encodedLength(h: MsgHdrs): number {
  return (h as MsgHdrs & { encode(): Uint8Array }).encode().length;
}

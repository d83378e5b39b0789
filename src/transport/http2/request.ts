import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http2";
import { abortReason } from "../../core/abort.js";
import { RequestError, RequestTimeoutError } from "../../core/errors.js";
import type { Http2Connection } from "./connection.js";

export interface Http2RequestInit {
  method?: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** ms for the whole request, including waiting for a member and retries. */
  timeout?: number;
  /** The caller asserts the request may be sent twice; allows retry after any failure but a timeout. */
  idempotent?: boolean;
}

export interface Http2Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Sends one request on one connection and collects the response. A failure
 * is a RequestError whose `unprocessed` is true only when HTTP/2 proves the
 * peer never processed the request:
 * - the stream was reset with REFUSED_STREAM (also how nghttp2 ends streams
 *   above a GOAWAY's last-stream-id);
 * - its id is above the last-stream-id of a GOAWAY we received;
 * - the session refused it before it left the process (closed, GOAWAY'd).
 */
export function sendOnConnection(
  conn: Http2Connection,
  target: string,
  init: Http2RequestInit,
  timeoutMs: number,
  maxResponseBytes: number,
): Promise<Http2Response> {
  const address = conn.address;
  return new Promise<Http2Response>((resolve, reject) => {
    const headers: OutgoingHttpHeaders = {
      ...init.headers,
      ":method": (init.method ?? "GET").toUpperCase(),
      ":path": init.path,
    };
    const hasBody = init.body !== undefined && init.body.length > 0;
    let stream: ClientHttp2Stream;
    try {
      stream = conn.session.request(headers, { endStream: !hasBody });
    } catch (err) {
      // Thrown before a HEADERS frame existed: nothing reached the peer.
      const e = err as NodeJS.ErrnoException;
      reject(new RequestError("ERR_DIALTONE_MEMBER_LOST", target, address, `request not sent: ${e.message}`, true, { cause: err }));
      return;
    }
    conn.track(stream);
    let status: number | undefined;
    let responseHeaders: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let streamError: Error | undefined;

    const finish = (err: Error | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      init.signal?.removeEventListener("abort", onAbort);
      if (err) {
        if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
        reject(err);
      } else {
        resolve({ status: status as number, headers: responseHeaders, body: Buffer.concat(chunks, size) });
      }
    };
    const timer = setTimeout(() => finish(new RequestTimeoutError(target, address, timeoutMs)), timeoutMs);
    const onAbort = (): void => finish(abortReason(init.signal as AbortSignal));
    if (init.signal?.aborted) return onAbort();
    init.signal?.addEventListener("abort", onAbort, { once: true });

    stream.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = h;
    });
    stream.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxResponseBytes) {
        finish(new RequestError("ERR_DIALTONE_RESPONSE_TOO_LARGE", target, address, `response body over ${maxResponseBytes} bytes`, false));
        return;
      }
      chunks.push(chunk);
    });
    stream.on("error", (err: Error) => {
      streamError = err;
    });
    stream.on("close", () => {
      if (done) return;
      if (status !== undefined && stream.rstCode === constants.NGHTTP2_NO_ERROR && !streamError) return finish(undefined);
      finish(classifyFailure(conn, stream, target, address, status, streamError));
    });
    if (hasBody) stream.end(init.body);
  });
}

function classifyFailure(
  conn: Http2Connection,
  stream: ClientHttp2Stream,
  target: string,
  address: string,
  status: number | undefined,
  cause: Error | undefined,
): RequestError {
  const rst = stream.rstCode;
  const id = stream.id;
  if (rst === constants.NGHTTP2_REFUSED_STREAM) {
    return new RequestError("ERR_DIALTONE_REFUSED_STREAM", target, address, "stream refused by peer (REFUSED_STREAM): not processed", true, { cause });
  }
  const last = conn.goawayLastStreamId;
  if (last !== undefined && id !== undefined && id > last) {
    return new RequestError("ERR_DIALTONE_GOAWAY", target, address, `stream ${id} above GOAWAY last-stream-id ${last}: not processed`, true, { cause });
  }
  if (id === undefined && status === undefined) {
    return new RequestError("ERR_DIALTONE_MEMBER_LOST", target, address, `member lost before the request was sent${cause ? `: ${cause.message}` : ""}`, true, { cause });
  }
  const why = cause?.message ?? (rst !== undefined && rst !== 0 ? `stream reset with code ${rst}` : "stream closed before the response completed");
  return new RequestError("ERR_DIALTONE_STREAM", target, address, why, false, { cause });
}

import type { ClientHttp2Stream } from "node:http2";
import { Readable } from "node:stream";
import { BadRequestError, RequestError } from "../../core/errors.js";

/**
 * What request() accepts as a body. Bytes (string as UTF-8, Buffer and every
 * ArrayBuffer view, ArrayBuffer) and Blobs can be sent again on a retry;
 * streams (Node Readable, Web ReadableStream, any AsyncIterable of bytes or
 * strings) are streamed with back-pressure, never buffered, and so can be
 * retried only while none of them has been read.
 */
export type Http2Body = string | Uint8Array | ArrayBuffer | ArrayBufferView | Blob | Readable | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string>;

export type PreparedBody =
  | { kind: "none"; length: 0 }
  | { kind: "bytes"; bytes: Uint8Array; length: number }
  | { kind: "blob"; blob: Blob; length: number }
  | { kind: "stream"; source: AsyncIterable<unknown>; length: undefined; used: boolean };

const NONE: PreparedBody = { kind: "none", length: 0 };

/** Sorts a body into one of the kinds above, or fails with a BadRequestError naming its type. */
export function prepareBody(body: unknown, target: string): PreparedBody {
  if (body === undefined || body === null) return NONE;
  if (typeof body === "string") return bytes(Buffer.from(body, "utf8"));
  if (body instanceof Uint8Array) return bytes(body);
  if (body instanceof ArrayBuffer) return bytes(new Uint8Array(body));
  if (ArrayBuffer.isView(body)) return bytes(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
  if (body instanceof Blob) return body.size === 0 ? NONE : { kind: "blob", blob: body, length: body.size };
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") {
    return { kind: "stream", source: body as AsyncIterable<unknown>, length: undefined, used: false };
  }
  throw new BadRequestError(target, "body", `unsupported body type ${describe(body)} (use a string, bytes, a Blob or a stream)`);
}

function bytes(b: Uint8Array): PreparedBody {
  return b.length === 0 ? NONE : { kind: "bytes", bytes: b, length: b.length };
}

function describe(v: unknown): string {
  if (typeof v !== "object") return typeof v;
  const name = (v as object).constructor?.name;
  return name ? name : "object";
}

/** True while the body can be sent again (bytes and Blobs always; a stream until first read). */
export function replayable(body: PreparedBody): boolean {
  return body.kind !== "stream" || !body.used;
}

/**
 * Writes the body to `stream` with back-pressure and ends it. Resolves when
 * all of it is handed to HTTP/2 or the stream is gone (its own close tells
 * the outcome). Rejects with ERR_DIALTONE_REQUEST_BODY when the source fails
 * or yields something that is not bytes: the caller then cancels the stream.
 */
export async function writeBody(body: PreparedBody, stream: ClientHttp2Stream, target: string, address: string): Promise<void> {
  if (body.kind === "none") return;
  if (body.kind === "bytes") {
    stream.end(body.bytes);
    return;
  }
  const source: AsyncIterable<unknown> = body.kind === "blob" ? Readable.fromWeb(body.blob.stream() as never) : body.source;
  if (body.kind === "stream") body.used = true;
  try {
    for await (const chunk of source) {
      if (stream.destroyed || stream.closed) return;
      let buf: Uint8Array;
      if (typeof chunk === "string") buf = Buffer.from(chunk, "utf8");
      else if (chunk instanceof Uint8Array) buf = chunk;
      else throw new TypeError(`the body stream yielded ${describe(chunk)}, not bytes or a string`);
      if (buf.length === 0) continue;
      if (!stream.write(buf)) await drained(stream);
    }
  } catch (err) {
    throw new RequestError("ERR_DIALTONE_REQUEST_BODY", target, address, `request body failed: ${err instanceof Error ? err.message : String(err)}`, false, {
      cause: err,
    });
  }
  if (!stream.destroyed && !stream.closed) stream.end();
}

/** Waits for room in the stream's buffer, or for the stream to end (then the loop stops). */
function drained(stream: ClientHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

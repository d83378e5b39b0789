/**
 * gRPC's length-prefixed messages (PROTOCOL-HTTP2.md): a 1-byte compressed
 * flag, a 4-byte big-endian length, the message. grpc-js keeps its own
 * StreamDecoder internal, so this is the same few lines.
 */
import { gunzipSync, inflateSync } from "node:zlib";

/** One message framed uncompressed (dialtone sends identity; see docs/adapters.md). */
export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

export class FrameTooLargeError extends Error {}

/** Splits a response body into messages as its chunks arrive; a message over `maxLength` throws FrameTooLargeError. */
export class FrameDecoder {
  readonly #maxLength: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(maxLength: number) {
    this.#maxLength = maxLength;
  }

  /** The whole messages (flag byte kept apart) that this chunk completes. */
  write(chunk: Buffer): Array<{ compressed: boolean; message: Buffer }> {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    const out: Array<{ compressed: boolean; message: Buffer }> = [];
    while (this.#pendingBytes >= 5) {
      const buf = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
      const length = buf.readUInt32BE(1);
      if (this.#maxLength >= 0 && length > this.#maxLength) {
        throw new FrameTooLargeError(`Received message larger than max (${length} vs. ${this.#maxLength})`);
      }
      if (buf.length < 5 + length) {
        this.#pending = [buf];
        break;
      }
      out.push({ compressed: buf[0] === 1, message: buf.subarray(5, 5 + length) });
      const rest = buf.subarray(5 + length);
      this.#pending = rest.length > 0 ? [rest] : [];
      this.#pendingBytes = rest.length;
    }
    return out;
  }

  /** True when bytes of an unfinished message are left over (a body cut mid-message). */
  get partial(): boolean {
    return this.#pendingBytes > 0;
  }
}

/**
 * A compressed message in the encoding the server named (grpc-encoding), as
 * grpc-js would accept it: gzip or deflate; anything else is refused.
 */
export function decompress(encoding: string | undefined, message: Buffer, maxLength: number): Buffer {
  const maxOutputLength = maxLength >= 0 ? Math.max(1, maxLength) : undefined;
  if (encoding === "gzip") return gunzipSync(message, maxOutputLength ? { maxOutputLength } : {});
  if (encoding === "deflate") return inflateSync(message, maxOutputLength ? { maxOutputLength } : {});
  throw new Error(`Received compressed message but "grpc-encoding" header was ${encoding === undefined ? "missing" : JSON.stringify(encoding)}`);
}

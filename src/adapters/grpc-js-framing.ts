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

/**
 * Splits a response body into messages as its chunks arrive; a message over
 * `maxLength` throws FrameTooLargeError. Each message is copied at most once
 * (when it spans chunks), after its last byte arrived: a 4 MiB message in
 * 16 KiB DATA frames costs one copy, not one per frame.
 */
export class FrameDecoder {
  readonly #maxLength: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Bytes of the message being read (prefix included), once its prefix is in; -1 before. */
  #need = -1;
  #compressed = false;

  constructor(maxLength: number) {
    this.#maxLength = maxLength;
  }

  /** The whole messages (flag byte kept apart) that this chunk completes. */
  write(chunk: Buffer): Array<{ compressed: boolean; message: Buffer }> {
    if (chunk.length > 0) {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
    }
    const out: Array<{ compressed: boolean; message: Buffer }> = [];
    for (;;) {
      if (this.#need < 0) {
        if (this.#pendingBytes < 5) break;
        const head = (this.#pending[0] as Buffer).length >= 5 ? (this.#pending[0] as Buffer) : this.#joined();
        const length = head.readUInt32BE(1);
        if (this.#maxLength >= 0 && length > this.#maxLength) {
          throw new FrameTooLargeError(`Received message larger than max (${length} vs. ${this.#maxLength})`);
        }
        this.#compressed = head[0] === 1;
        this.#need = 5 + length;
      }
      if (this.#pendingBytes < this.#need) break;
      const first = this.#pending[0] as Buffer;
      const buf = first.length >= this.#need ? first : this.#joined();
      out.push({ compressed: this.#compressed, message: buf.subarray(5, this.#need) });
      const rest = buf.subarray(this.#need);
      if (rest.length > 0) this.#pending[0] = rest;
      else this.#pending.shift();
      this.#pendingBytes -= this.#need;
      this.#need = -1;
    }
    return out;
  }

  /** Every pending byte in one buffer (the only copy a message spanning chunks gets). */
  #joined(): Buffer {
    const all = Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [all];
    return all;
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

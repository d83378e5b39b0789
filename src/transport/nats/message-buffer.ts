import type { Msg } from "@nats-io/transport-node";
import { systemClock, type Clock, type Timer } from "../../core/clock.js";

/** Drops within this long of a burst's first drop are reported together, in one event. */
const DROP_REPORT_WINDOW_MS = 100;

/**
 * A FIFO of messages bounded in count and in bytes, dropping the oldest when
 * either bound is passed. Bytes are what the buffer keeps alive: the client
 * hands out payloads as views into the socket chunk they arrived in, so one
 * buffered 16-byte message can hold a 64 KiB chunk. Each distinct chunk is
 * counted once, by its full size, for as long as any buffered message uses it.
 */
export class MessageBuffer {
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  readonly #onDrops: (count: number) => void;
  #items: Msg[] = [];
  #head = 0;
  #bytes = 0;
  #chunks = new Map<ArrayBufferLike, number>();
  #dropped = 0;
  #timer: Timer | undefined;
  readonly #clock: Clock;

  constructor(maxMessages: number, maxBytes: number, onDrops: (count: number) => void, clock: Clock = systemClock) {
    this.#clock = clock;
    this.#maxMessages = maxMessages;
    this.#maxBytes = maxBytes;
    this.#onDrops = onDrops;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Bytes held alive by the buffered messages. */
  get bytes(): number {
    return this.#bytes;
  }

  push(m: Msg): void {
    this.#items.push(m);
    this.#hold(m);
    // Never drops the message just pushed: a single message above maxBytes is still delivered.
    while (this.length > 1 && (this.length > this.#maxMessages || this.#bytes > this.#maxBytes)) {
      this.shift();
      this.#dropped++;
    }
    if (this.#dropped > 0 && this.#timer === undefined) {
      this.#timer = this.#clock.setTimeout(() => this.flushDrops(), DROP_REPORT_WINDOW_MS);
    }
  }

  shift(): Msg | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const m = this.#items[this.#head] as Msg;
    this.#items[this.#head] = undefined as unknown as Msg;
    this.#head++;
    // Compacted now and then, so a long-lived queue neither grows nor shifts element by element.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    this.#release(m);
    return m;
  }

  /** Reports drops not yet reported (at the end of a burst, or when the subscription ends). */
  flushDrops(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    const n = this.#dropped;
    this.#dropped = 0;
    if (n > 0) this.#onDrops(n);
  }

  #hold(m: Msg): void {
    const chunk = m.data.buffer;
    const refs = this.#chunks.get(chunk) ?? 0;
    if (refs === 0) this.#bytes += chunk.byteLength;
    this.#chunks.set(chunk, refs + 1);
  }

  #release(m: Msg): void {
    const chunk = m.data.buffer;
    const refs = (this.#chunks.get(chunk) ?? 1) - 1;
    if (refs === 0) {
      this.#chunks.delete(chunk);
      this.#bytes -= chunk.byteLength;
    } else this.#chunks.set(chunk, refs);
  }
}

import { errors as natsErrors, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { pause, type Clock } from "../../core/clock.js";
import type { ChannelEvent } from "../../core/events.js";
import { MessageBuffer } from "./message-buffer.js";

/** What a subscription needs from its channel: a usable member to live on, and a way to report. */
export interface SubscriptionHost {
  /** A usable member now (waits, bounded, when there is none). */
  place(signal: AbortSignal): Promise<{ memberId: number; address: string; nc: NatsConnection }>;
  emit(event: ChannelEvent): void;
  /** The channel's clock: move retries, the gap a move reports, the drop report's window. */
  readonly clock: Clock;
}

export interface SubscriptionLimits {
  /** Messages buffered for a slow reader before the oldest are dropped. */
  maxPending: number;
  /** Bytes buffered for a slow reader before the oldest are dropped. */
  maxPendingBytes: number;
}

export interface ChannelSubscribeOptions {
  /** Queue group: one member of the group gets each message. Kept across moves. */
  queue?: string;
  /** End after this many messages (the server is told, as UNSUB <sid> <max>); a move re-subscribes for the rest. */
  max?: number;
}

/**
 * A subscription that lives on one usable member and is re-made on another
 * when that member goes (killed, frozen and evicted, lame duck), keeping its
 * queue group and what is left of its `max`. Messages reach the reader
 * through a buffer bounded in messages and bytes: a reader that falls behind
 * loses the oldest messages and is told (one `messages-dropped` per burst).
 */
export class ChannelSubscription implements AsyncIterable<Msg> {
  readonly subject: string;
  readonly queue: string | undefined;
  readonly max: number | undefined;
  #host: SubscriptionHost;
  #buffer: MessageBuffer;
  #wake: (() => void) | undefined;
  #current: { memberId: number; address: string; sub: Subscription } | undefined;
  #moving: Promise<void> | undefined;
  #abort = new AbortController();
  #received = 0;
  /** Set when the server refused the subscription: the reader gets it after the buffered messages. */
  #failure: Error | undefined;
  #draining: Promise<void> | undefined;

  /** @internal Made by `NatsChannel.subscribe()`. */
  constructor(subject: string, options: ChannelSubscribeOptions, limits: SubscriptionLimits, host: SubscriptionHost) {
    this.subject = subject;
    this.queue = options.queue;
    this.max = options.max;
    this.#host = host;
    this.#buffer = new MessageBuffer(limits.maxPending, limits.maxPendingBytes, (count) => host.emit({ type: "messages-dropped", subject, count }), host.clock);
  }

  /** The member it lives on now, if any. */
  get memberId(): number | undefined {
    return this.#current?.memberId;
  }

  get address(): string | undefined {
    return this.#current?.address;
  }

  /** What waits for the reader now: messages, and the bytes they keep alive. */
  get pending(): { messages: number; bytes: number } {
    return { messages: this.#buffer.length, bytes: this.#buffer.bytes };
  }

  /** Messages delivered to the buffer so far. */
  get received(): number {
    return this.#received;
  }

  get closed(): boolean {
    return this.#abort.signal.aborted;
  }

  /**
   * Places the subscription on a first member; resolves once the server has
   * its interest, and rejects (unsubscribed) when no member is usable within
   * the host's acquire timeout. Later moves retry until one works.
   */
  async start(): Promise<void> {
    const { memberId, address, nc } = await this.#host.place(this.#abort.signal);
    try {
      const sub = this.#subscribeOn(nc);
      await nc.flush();
      this.#current = { memberId, address, sub };
      this.#pump(sub, memberId);
    } catch (err) {
      this.unsubscribe();
      throw err;
    }
  }

  /** If it lives on `memberId`, moves it (no-op otherwise); resolves when it lives elsewhere. */
  moveOff(memberId: number): Promise<void> {
    if (this.#current?.memberId !== memberId || this.#draining) return this.#moving ?? Promise.resolve();
    return this.#move(memberId);
  }

  /** Ends it now: messages already buffered are still read, nothing more arrives. */
  unsubscribe(): void {
    if (this.closed) return;
    this.#abort.abort();
    try {
      this.#current?.sub.unsubscribe();
    } catch {
      // Its connection is already gone.
    }
    this.#current = undefined;
    this.#buffer.flushDrops();
    this.#wake?.();
  }

  /**
   * Ends it gracefully: the server forgets the interest, every message it had
   * already sent is delivered to the reader, then the iterator ends. Resolves
   * once the last of them is in the buffer; it does not wait for the reader.
   */
  drain(): Promise<void> {
    this.#draining ??= (async () => {
      await this.#moving;
      const cur = this.#current;
      if (cur && !this.closed) {
        // The client's drain sends UNSUB, round-trips, and ends its iterator after the messages before it.
        await cur.sub.drain().catch(() => {});
        await cur.sub.closed.catch(() => {});
      }
      this.#current = undefined;
      this.unsubscribe();
    })();
    return this.#draining;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Msg, void, undefined> {
    while (true) {
      const m = this.#buffer.shift();
      if (m) {
        yield m;
        continue;
      }
      if (this.closed) {
        if (this.#failure) throw this.#failure;
        return;
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  /** The rest of `max` (async-nats re-subscribes with max − delivered); undefined when there is no max. */
  #subscribeOn(nc: NatsConnection): Subscription {
    const opts: { queue?: string; max?: number } = {};
    if (this.queue !== undefined) opts.queue = this.queue;
    if (this.max !== undefined) opts.max = this.max - this.#received;
    return nc.subscribe(this.subject, opts);
  }

  #move(from: number | undefined): Promise<void> {
    if (this.#moving) return this.#moving;
    const clock = this.#host.clock;
    const started = clock.now();
    const fromAddress = this.#current?.address;
    this.#moving = (async () => {
      let delay = 50;
      while (!this.closed) {
        try {
          const { memberId, address, nc } = await this.#host.place(this.#abort.signal);
          if (this.closed) return;
          if (memberId === from) throw new Error("picked the member being left");
          const sub = this.#subscribeOn(nc);
          // Interest is registered once the server has processed the SUB.
          await nc.flush();
          const old = this.#current;
          this.#current = { memberId, address, sub };
          this.#pump(sub, memberId);
          // Replacement first, then the old one goes.
          if (old && old.sub !== sub) {
            try {
              old.sub.unsubscribe();
            } catch {
              // Gone with its connection.
            }
          }
          if (from !== undefined || fromAddress !== undefined) {
            this.#host.emit({ type: "subscription-moved", subject: this.subject, from: fromAddress, to: address, gapMs: clock.now() - started });
          }
          return;
        } catch {
          if (this.closed) return;
          // Cut short by unsubscribe(): a closed subscription leaves no timer behind.
          await pause(clock, delay, this.#abort.signal);
          delay = Math.min(delay * 2, 1000);
        }
      }
    })().finally(() => {
      this.#moving = undefined;
    });
    return this.#moving;
  }

  #pump(sub: Subscription, memberId: number): void {
    void (async () => {
      let error: unknown;
      try {
        for await (const m of sub) this.#push(m);
      } catch (err) {
        error = err;
      }
      if (this.closed || this.#current?.memberId !== memberId || this.#draining) return;
      if (this.max !== undefined && this.#received >= this.max) {
        // Done as asked: the client unsubscribed itself at max.
        this.unsubscribe();
      } else if (error instanceof natsErrors.PermissionViolationError) {
        // Another member would be refused the same way: end it, and tell the reader why.
        this.#failure = error;
        this.unsubscribe();
      } else {
        // The underlying subscription ended without us asking: its member is gone.
        void this.#move(memberId);
      }
    })();
  }

  #push(m: Msg): void {
    this.#received++;
    this.#buffer.push(m);
    this.#wake?.();
  }
}

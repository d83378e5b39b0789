import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { ChannelEvent } from "../../core/events.js";

/** What a subscription needs from its channel: a usable member to live on, and a way to report. */
export interface SubscriptionHost {
  /** A usable member now (waits, bounded, when there is none). */
  place(signal: AbortSignal): Promise<{ memberId: number; address: string; nc: NatsConnection }>;
  emit(event: ChannelEvent): void;
}

/**
 * A subscription that lives on one usable member and is re-made on another
 * when that member goes (killed, frozen and evicted, lame duck). Messages
 * reach the reader through a bounded buffer: a reader that falls behind
 * loses the oldest messages and is told (a `messages-dropped` event), and
 * nothing grows without bound.
 */
export class ChannelSubscription implements AsyncIterable<Msg> {
  readonly subject: string;
  readonly queue: string | undefined;
  #host: SubscriptionHost;
  #max: number;
  #buffer: Msg[] = [];
  #wake: (() => void) | undefined;
  #current: { memberId: number; address: string; sub: Subscription } | undefined;
  #moving: Promise<void> | undefined;
  #abort = new AbortController();
  #received = 0;

  constructor(subject: string, queue: string | undefined, maxPending: number, host: SubscriptionHost) {
    this.subject = subject;
    this.queue = queue;
    this.#max = maxPending;
    this.#host = host;
  }

  /** The member it lives on now, if any. */
  get memberId(): number | undefined {
    return this.#current?.memberId;
  }

  get address(): string | undefined {
    return this.#current?.address;
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
      const sub = nc.subscribe(this.subject, this.queue === undefined ? {} : { queue: this.queue });
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
    if (this.#current?.memberId !== memberId) return this.#moving ?? Promise.resolve();
    return this.#move(memberId);
  }

  unsubscribe(): void {
    if (this.closed) return;
    this.#abort.abort();
    try {
      this.#current?.sub.unsubscribe();
    } catch {
      // Its connection is already gone.
    }
    this.#current = undefined;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Msg, void, undefined> {
    while (true) {
      const m = this.#buffer.shift();
      if (m) {
        yield m;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  #move(from: number | undefined): Promise<void> {
    if (this.#moving) return this.#moving;
    const started = performance.now();
    const fromAddress = this.#current?.address;
    this.#moving = (async () => {
      let delay = 50;
      while (!this.closed) {
        try {
          const { memberId, address, nc } = await this.#host.place(this.#abort.signal);
          if (this.closed) return;
          if (memberId === from) throw new Error("picked the member being left");
          const sub = nc.subscribe(this.subject, this.queue === undefined ? {} : { queue: this.queue });
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
            this.#host.emit({ type: "subscription-moved", subject: this.subject, from: fromAddress, to: address, gapMs: performance.now() - started });
          }
          return;
        } catch {
          if (this.closed) return;
          await new Promise((r) => setTimeout(r, delay).unref());
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
      try {
        for await (const m of sub) this.#push(m);
      } catch {
        // The connection under it went away; handled below.
      }
      // The underlying subscription ended without us asking: its member is gone.
      if (!this.closed && this.#current?.memberId === memberId) void this.#move(memberId);
    })();
  }

  #push(m: Msg): void {
    this.#received++;
    if (this.#buffer.length >= this.#max) {
      this.#buffer.shift();
      this.#host.emit({ type: "messages-dropped", subject: this.subject, count: 1 });
    }
    this.#buffer.push(m);
    this.#wake?.();
  }
}

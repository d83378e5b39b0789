/**
 * A NATS subscription's moves on the channel's clock: when its member's
 * subscription ends, it is re-made elsewhere, retrying on a backoff timed
 * by the clock; the `subscription-moved` event's gap is clock time; and
 * unsubscribe() cuts a retry's wait short, leaving no timer. FAKE NATS
 * connections (a subscription the test ends, a placement the test fails):
 * the moves against a real nats-server are in nats.test.ts and nats-freeze.test.ts.
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import type { ChannelEvent } from "../../src/core/events.js";
import { ChannelSubscription, type SubscriptionHost } from "../../src/transport/nats/subscription.js";
import { SimClock } from "../helpers/sim-clock.js";

/** A subscription whose message stream the test ends (as a lost connection ends it). */
class FakeSub {
  unsubscribed = false;
  #end: (() => void) | undefined;
  readonly closed = new Promise<void>((resolve) => (this.#end = resolve));
  end(): void {
    this.#end?.();
  }
  unsubscribe(): void {
    this.unsubscribed = true;
    this.end();
  }
  drain(): Promise<void> {
    this.end();
    return Promise.resolve();
  }
  /** No messages: the stream just ends when the subscription does. */
  [Symbol.asyncIterator](): AsyncIterator<Msg> {
    return { next: () => this.closed.then(() => ({ done: true, value: undefined })) };
  }
}

function fakeNc(subs: FakeSub[]): NatsConnection {
  return {
    subscribe: () => {
      const s = new FakeSub();
      subs.push(s);
      return s as unknown as Subscription;
    },
    flush: () => Promise.resolve(),
  } as unknown as NatsConnection;
}

function setUp() {
  const clock = new SimClock();
  const subs: FakeSub[] = [];
  const events: Array<ChannelEvent & { t: number }> = [];
  /** What the next placements answer: a member id, or an error (no usable member yet). */
  const plan: Array<number | Error> = [1];
  const host: SubscriptionHost = {
    clock,
    emit: (e) => events.push({ ...e, t: clock.now() }),
    place: () => {
      const next = plan.shift() ?? new Error("no usable member");
      if (next instanceof Error) return Promise.reject(next);
      return Promise.resolve({ memberId: next, address: `10.0.0.${next}:4222`, nc: fakeNc(subs) });
    },
  };
  const sub = new ChannelSubscription("orders", {}, { maxPending: 100, maxPendingBytes: 1 << 20 }, host);
  return { clock, subs, events, plan, sub };
}

describe("ChannelSubscription moves on a fake clock (fake NATS connections)", () => {
  it("retries a failed placement on a backoff timed by the clock (50, 100, 200 ms), and reports the gap in clock time", async () => {
    const { clock, subs, events, plan, sub } = setUp();
    await sub.start();
    expect(sub.memberId).toBe(1);
    // Member 1 is lost; no member is usable for three tries, then member 2 is.
    plan.push(new Error("none"), new Error("none"), new Error("none"), 2);
    await clock.runUntil(1000);
    subs[0]!.end();
    await clock.runUntil(1000);
    expect(sub.memberId).toBe(1);
    await clock.runUntil(1000 + 50 + 100 + 200 - 1);
    expect(events.filter((e) => e.type === "subscription-moved")).toEqual([]);
    await clock.runUntil(1000 + 50 + 100 + 200);
    expect(sub.memberId).toBe(2);
    const moved = events.find((e) => e.type === "subscription-moved");
    expect(moved).toMatchObject({ type: "subscription-moved", from: "10.0.0.1:4222", to: "10.0.0.2:4222", gapMs: 350, t: 1350 });
    sub.unsubscribe();
    expect(clock.pendingOwnTimers).toBe(0);
  });

  it("unsubscribe() during a retry's wait ends the wait: no timer is left on the clock and no placement follows", async () => {
    const { clock, subs, plan, sub } = setUp();
    await sub.start();
    plan.push(new Error("none"), 3);
    subs[0]!.end();
    await clock.runUntil(10);
    expect(clock.pendingOwnTimers).toBe(1);
    sub.unsubscribe();
    expect(clock.pendingOwnTimers).toBe(0);
    await clock.runUntil(1000);
    expect(plan).toEqual([3]);
    expect(sub.memberId).toBeUndefined();
  });
});

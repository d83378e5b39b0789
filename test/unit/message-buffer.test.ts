/**
 * The NATS subscription's message buffer: bounded in messages and bytes,
 * dropping the oldest, with drops reported once per burst — the burst's
 * window timed on the channel's clock (a fake one here; no sockets).
 */
import type { Msg } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { MessageBuffer } from "../../src/transport/nats/message-buffer.js";
import { SimClock } from "../helpers/sim-clock.js";

/** A message whose payload is a view into its own chunk of `chunkBytes` (as the client hands them out). */
function msg(i: number, chunkBytes = 16): Msg {
  const chunk = new Uint8Array(chunkBytes);
  chunk[0] = i;
  return { data: chunk.subarray(0, 1) } as unknown as Msg;
}

describe("MessageBuffer on a fake clock", () => {
  it("drops the oldest past maxMessages and reports a burst's drops once, when the 100 ms window on the clock ends", async () => {
    const clock = new SimClock();
    const reports: Array<{ t: number; count: number }> = [];
    const buf = new MessageBuffer(2, 1 << 20, (count) => reports.push({ t: clock.now(), count }), clock);
    for (let i = 0; i < 5; i++) buf.push(msg(i));
    expect(buf.length).toBe(2);
    expect(buf.shift()?.data[0]).toBe(3);
    await clock.runUntil(50);
    buf.push(msg(5));
    buf.push(msg(6));
    await clock.runUntil(99);
    expect(reports).toEqual([]);
    await clock.runUntil(100);
    expect(reports).toEqual([{ t: 100, count: 4 }]);
    expect(clock.pendingOwnTimers).toBe(0);
  });

  it("counts bytes by the chunks kept alive, and flushDrops() (the subscription ending) reports at once and leaves no timer", async () => {
    const clock = new SimClock();
    const reports: number[] = [];
    const buf = new MessageBuffer(100, 64, (count) => reports.push(count), clock);
    buf.push(msg(0, 48));
    buf.push(msg(1, 48));
    // Two 48-byte chunks are over 64: the oldest goes, the one just pushed stays.
    expect(buf.length).toBe(1);
    expect(buf.bytes).toBe(48);
    expect(clock.pendingOwnTimers).toBe(1);
    buf.flushDrops();
    expect(reports).toEqual([1]);
    expect(clock.pendingOwnTimers).toBe(0);
    await clock.runUntil(1000);
    expect(reports).toEqual([1]);
  });
});

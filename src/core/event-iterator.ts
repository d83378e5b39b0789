import type { ChannelEvent } from "./events.js";
import type { Listeners } from "./listeners.js";

/**
 * Reads a listener set as an async iterator. It subscribes at once (not at
 * the first next()), so nothing emitted after the call is missed. The buffer
 * between the emitter and a slow reader is bounded: when full, the oldest
 * events are dropped and the reader gets one `events-dropped` event saying
 * how many, so the emitter never waits and memory never grows without bound.
 */
export function iterateEvents(
  listeners: Listeners<ChannelEvent>,
  options: { signal?: AbortSignal; bufferSize?: number } = {},
): AsyncGenerator<ChannelEvent, void, undefined> {
  const limit = Math.max(1, options.bufferSize ?? 1024);
  const buffer: ChannelEvent[] = [];
  let dropped = 0;
  let wake: (() => void) | undefined;
  const off = listeners.add((e) => {
    if (buffer.length >= limit) {
      buffer.shift();
      dropped++;
    }
    buffer.push(e);
    wake?.();
  });
  const onAbort = (): void => wake?.();
  options.signal?.addEventListener("abort", onAbort, { once: true });

  async function* read(): AsyncGenerator<ChannelEvent, void, undefined> {
    try {
      while (!options.signal?.aborted) {
        if (dropped > 0) {
          const count = dropped;
          dropped = 0;
          yield { type: "events-dropped", count };
          continue;
        }
        const next = buffer.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      off();
      options.signal?.removeEventListener("abort", onAbort);
    }
  }
  return read();
}

import type { Listeners } from "./listeners.js";

/** What the reader gets in place of the events its full buffer lost. */
export interface EventsDropped {
  type: "events-dropped";
  count: number;
}

/**
 * Reads a listener set as an async iterator. It subscribes at once (not at
 * the first next()), so nothing emitted after the call is missed. The buffer
 * between the emitter and a slow reader is bounded: when full, the oldest
 * events are dropped and the reader gets one `events-dropped` event saying
 * how many, so the emitter never waits and memory never grows without bound.
 * Generic so that channels and Reconnect handles share it; each event union
 * also lists `events-dropped`, so the yielded type is just that union.
 */
export function iterateEvents<E>(
  listeners: Listeners<E>,
  options: { signal?: AbortSignal; bufferSize?: number } = {},
): AsyncGenerator<E | EventsDropped, void, undefined> {
  const limit = Math.max(1, options.bufferSize ?? 1024);
  const buffer: E[] = [];
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

  async function* read(): AsyncGenerator<E | EventsDropped, void, undefined> {
    try {
      while (!options.signal?.aborted) {
        if (dropped > 0) {
          const count = dropped;
          dropped = 0;
          yield { type: "events-dropped", count };
          continue;
        }
        const next = buffer.shift();
        if (next !== undefined) {
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

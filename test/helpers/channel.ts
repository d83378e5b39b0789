import type { ChannelEvent } from "../../src/index.js";

/** Records every event a channel emits, with a timestamp, for order assertions. */
export function recordEvents(ch: { on(listener: (e: ChannelEvent) => void): () => void }): { events: Array<ChannelEvent & { at: number }>; stop: () => void } {
  const events: Array<ChannelEvent & { at: number }> = [];
  const stop = ch.on((e) => events.push({ ...e, at: performance.now() }));
  return { events, stop };
}

/** Polls `check` every 20 ms until it returns true or `ms` pass; bounded, never hangs. */
export async function eventually(check: () => boolean, ms: number, what: string): Promise<number> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - start;
}

/** Runs `fn` repeatedly with `concurrency` workers until `stopAt` returns true or `maxMs` pass. */
export async function steadyLoad<T>(
  fn: () => Promise<T>,
  opts: { concurrency: number; maxMs: number; stop: () => boolean; pauseMs?: number },
): Promise<Array<{ at: number; ok: boolean; value?: T; error?: unknown }>> {
  const results: Array<{ at: number; ok: boolean; value?: T; error?: unknown }> = [];
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (!opts.stop() && performance.now() - start < opts.maxMs) {
      const at = performance.now();
      try {
        results.push({ at, ok: true, value: await fn() });
      } catch (error) {
        results.push({ at, ok: false, error });
      }
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return results;
}

/**
 * AbortControllers for grpc-js calls, reused. Every call needs a signal to
 * cancel its request before the response head, but almost every call ends
 * without aborting it, and creating one costs Node more than the rest of
 * the adapter's per-call work (measured: about 4 % of a unary call's CPU).
 * A controller goes back for reuse only when it never aborted and nothing
 * listens on its signal any more (the channel removes its listeners when a
 * request settles); otherwise it is simply dropped.
 */
import { getEventListeners } from "node:events";

/** Enough for the calls a busy channel ends between two starts; more are dropped. */
const KEEP = 256;

export class AbortPool {
  readonly #free: AbortController[] = [];

  take(): AbortController {
    return this.#free.pop() ?? new AbortController();
  }

  /** Hands back a controller whose call has ended; kept only if unused and unlistened. */
  give(ac: AbortController): void {
    if (this.#free.length >= KEEP || ac.signal.aborted || getEventListeners(ac.signal, "abort").length > 0) return;
    this.#free.push(ac);
  }
}

import type { Registry } from "prom-client";
import { raceSignal } from "../core/abort.js";
import { ClosedError, DialtoneError, NoMemberError, QueueFullError, RequestError, RequestTimeoutError } from "../core/errors.js";
import { iterateEvents } from "../core/event-iterator.js";
import type { ChannelEvent, ConnectionStatus, RequestOutcome } from "../core/events.js";
import { ChannelMetrics, type MetricsOptions } from "../metrics/channel-metrics.js";
import type { MemberConnection } from "../supervisor/connection.js";
import type { Lease, Supervisor, SupervisorStats } from "../supervisor/supervisor.js";

export interface CallOptions {
  signal?: AbortSignal;
  /** Budget for the whole call: waiting for a member, sending, retries. */
  timeout: number;
  /** The caller asserts the call may be repeated. */
  idempotent?: boolean;
}

interface Trace {
  retries: number;
  address: string | undefined;
}

/**
 * What every channel offers whatever its protocol: readiness, the status
 * stream, stats, events, metrics, closing, and the retry loop that sends a
 * call again on another member only when the protocol proves the first
 * attempt was not processed (or the caller said it may be repeated).
 */
export abstract class ChannelBase<C extends MemberConnection> implements AsyncDisposable {
  readonly target: string;
  /** The `channel` label of its metrics. */
  readonly name: string;
  protected readonly sup: Supervisor<C>;
  readonly #metrics = new Set<ChannelMetrics>();

  protected constructor(target: string, name: string, sup: Supervisor<C>) {
    this.target = target;
    this.name = name;
    this.sup = sup;
  }

  /** Resolves when every member is connected and has answered a PING. Pass a signal to bound the wait. */
  ready(signal?: AbortSignal): Promise<void> {
    return this.sup.ready(signal);
  }

  /** Connected/Disconnected with current-state semantics; ends when the channel closes. */
  status(signal?: AbortSignal): AsyncGenerator<ConnectionStatus, void, undefined> {
    return this.sup.status(signal);
  }

  /** The status now, without waiting. */
  get connected(): boolean {
    return this.sup.statusNow === "connected";
  }

  /** A JSON snapshot of members, addresses, resolution and state. */
  stats(): SupervisorStats {
    return this.sup.stats();
  }

  /** Subscribes to the typed event stream; returns the unsubscribe function. */
  on(listener: (event: ChannelEvent) => void): () => void {
    return this.sup.events.add(listener);
  }

  /**
   * The event stream as an async iterator, with a bounded buffer (default
   * 1024): a slow reader loses the oldest events and is told how many.
   */
  events(options: { signal?: AbortSignal; bufferSize?: number } = {}): AsyncGenerator<ChannelEvent, void, undefined> {
    return iterateEvents(this.sup.events, options);
  }

  /** Waits until `predicate` holds for an event, or the signal aborts. */
  waitFor<E extends ChannelEvent>(predicate: (e: ChannelEvent) => e is E, signal?: AbortSignal): Promise<E> {
    let off: () => void = () => {};
    const p = new Promise<E>((resolve) => {
      off = this.on((e) => {
        if (predicate(e)) resolve(e);
      });
    });
    return raceSignal(p, signal).finally(off);
  }

  /**
   * Reports this channel to a prom-client Registry (default: prom-client's
   * global one) under the label channel="<name>". Many channels may share a
   * registry; closing the channel, or the returned handle, removes its series.
   */
  metrics(registry?: Registry, options?: MetricsOptions): ChannelMetrics {
    if (this.sup.closed) throw new ClosedError(`channel ${this.target}`);
    const m = new ChannelMetrics(this, registry, options);
    this.#metrics.add(m);
    return m;
  }

  async close(): Promise<void> {
    await this.beforeClose();
    await this.sup.close();
    for (const m of this.#metrics) m.close();
    this.#metrics.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Protocol-specific work before members close (e.g. ending subscriptions). */
  protected async beforeClose(): Promise<void> {}

  /**
   * Runs `attempt` on picked members until it succeeds, fails in a way that
   * must not be repeated, or the budget runs out; emits the request event.
   */
  protected async call<T>(
    options: CallOptions,
    limits: { maxRetries: number; acquireTimeout: number },
    attempt: (lease: Lease<C>, budgetMs: number) => Promise<T>,
  ): Promise<T> {
    // Outcome events cost an allocation per call, so only when someone listens.
    if (this.sup.events.size === 0) return this.#attempts(options, limits, attempt, { retries: 0, address: undefined });
    const started = performance.now();
    const trace: Trace = { retries: 0, address: undefined };
    try {
      const res = await this.#attempts(options, limits, attempt, trace);
      this.sup.events.emit({ type: "request", outcome: "ok", durationMs: performance.now() - started, retries: trace.retries, code: undefined, address: trace.address });
      return res;
    } catch (err) {
      const code = err instanceof DialtoneError ? err.code : (err as NodeJS.ErrnoException | undefined)?.code;
      this.sup.events.emit({ type: "request", outcome: outcomeOf(err, options.signal), durationMs: performance.now() - started, retries: trace.retries, code, address: trace.address });
      throw err;
    }
  }

  async #attempts<T>(
    options: CallOptions,
    limits: { maxRetries: number; acquireTimeout: number },
    attempt: (lease: Lease<C>, budgetMs: number) => Promise<T>,
    trace: Trace,
  ): Promise<T> {
    const deadline = performance.now() + options.timeout;
    let last: unknown;
    for (let n = 1; n <= 1 + limits.maxRetries; n++) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw last ?? new RequestTimeoutError(this.target, undefined, options.timeout);
      const lease = await this.sup.acquire(options.signal, Math.min(limits.acquireTimeout, remaining));
      trace.retries = n - 1;
      trace.address = lease.member.key;
      const started = performance.now();
      try {
        const res = await attempt(lease, Math.max(1, deadline - started));
        lease.release(performance.now() - started);
        return res;
      } catch (err) {
        lease.release();
        last = err;
        if (!(err instanceof RequestError)) throw err;
        this.sup.noteError(err);
        const retryable = err.unprocessed || (options.idempotent === true && !(err instanceof RequestTimeoutError));
        if (!retryable || options.signal?.aborted) throw err;
      }
    }
    throw last;
  }
}

function outcomeOf(err: unknown, signal: AbortSignal | undefined): RequestOutcome {
  if (err instanceof RequestTimeoutError) return "timeout";
  if (err instanceof NoMemberError) return "no-member";
  if (err instanceof QueueFullError) return "queue-full";
  if (err instanceof ClosedError) return "closed";
  if (signal?.aborted) return "aborted";
  return "error";
}

import type { Registry } from "prom-client";
import { systemClock } from "../core/clock.js";
import type { DeadlineQueue } from "../core/deadlines.js";
import { raceSignal } from "../core/abort.js";
import { ClosedError } from "../core/errors.js";
import { iterateEvents } from "../core/event-iterator.js";
import type { ChannelEvent, ConnectionStatus } from "../core/events.js";
import type { CallInfo } from "../dispatch/diagnostics.js";
import { dispatch, type Attempt } from "../dispatch/pipeline.js";
import { HedgeTiming } from "../dispatch/hedge-timing.js";
import { RetryBudget } from "../dispatch/retry-budget.js";
import { ChannelMetrics, type MetricsOptions } from "../metrics/channel-metrics.js";
import type { MemberConnection } from "../supervisor/connection.js";
import type { Supervisor, SupervisorStats } from "../supervisor/supervisor.js";
import type { ResolvedCommon } from "./common-options.js";

export interface CallOptions {
  signal?: AbortSignal | undefined;
  /** Budget for the whole call: waiting for a member, sending, retries. */
  timeout: number;
  /** The caller asserts the call may be repeated. */
  idempotent?: boolean | undefined;
}

/**
 * What every channel offers whatever its protocol: readiness, the status
 * stream, stats, events, metrics, closing, and `call()`, which hands a call
 * to dispatch/ (acquire, attempt, retry, hedge within the retry budget): a
 * call is sent again on another member only when the protocol proves the
 * first attempt was not processed, or the caller said it may be repeated.
 */
export abstract class ChannelBase<C extends MemberConnection> implements AsyncDisposable {
  readonly target: string;
  /** The `channel` label of its metrics. */
  readonly name: string;
  protected readonly sup: Supervisor<C>;
  readonly #metrics = new Set<ChannelMetrics>();
  /** Shared by every call of this channel: retries and hedges together stay within it. */
  readonly #budget: RetryBudget | undefined;
  /** When idempotent calls are hedged (one per channel: a "p95" delay learns from all its calls). */
  readonly #hedge: HedgeTiming | undefined;
  /** The transport's request deadlines (one timer on the channel's clock), whose timer close() lets go. */
  readonly #deadlines: DeadlineQueue | undefined;

  protected constructor(target: string, name: string, sup: Supervisor<C>, policy: Pick<ResolvedCommon, "retryBudget" | "hedge">, deadlines?: DeadlineQueue) {
    this.target = target;
    this.name = name;
    this.sup = sup;
    this.#deadlines = deadlines;
    // The budgets read the channel's clock, as dispatch does: one reading serves both.
    const now = sup.clock === systemClock ? systemClock.now : () => sup.clock.now();
    this.#budget = policy.retryBudget === false ? undefined : new RetryBudget(policy.retryBudget, now);
    this.#hedge = policy.hedge ? new HedgeTiming(policy.hedge, now) : undefined;
  }

  /** Resolves when every member is connected and has answered a PING. Pass a signal to bound the wait. */
  ready(signal?: AbortSignal): Promise<void> {
    return this.sup.leases.ready(signal);
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
    // Requests cut by the close settle on their streams' next events: the timer goes with the last of them.
    this.#deadlines?.dropWhenIdle();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Protocol-specific work before members close (e.g. ending subscriptions). */
  protected async beforeClose(): Promise<void> {}

  /**
   * Runs `attempt` through the dispatch pipeline: picked members, retries only
   * where the protocol proves the first attempt unprocessed (or the caller
   * said idempotent), the request event, and errors kept in the taxonomy.
   * `info` (given only when diagnostics.ts's tracing() says someone
   * subscribes) makes the call publish dialtone's diagnostics messages.
   */
  protected call<T>(
    options: CallOptions,
    limits: { maxRetries: number; acquireTimeout: number; replayable?: () => boolean },
    attempt: Attempt<C, T>,
    info?: CallInfo,
  ): Promise<T> {
    return dispatch<C, T>(
      this.sup.leases,
      {
        target: this.target,
        signal: options.signal,
        timeout: options.timeout,
        idempotent: options.idempotent,
        maxRetries: limits.maxRetries,
        acquireTimeout: limits.acquireTimeout,
        replayable: limits.replayable,
        budget: this.#budget,
        hedge: this.#hedge,
        channel: this.name,
        info,
      },
      attempt,
    );
  }
}

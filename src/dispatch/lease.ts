import type { Clock } from "../core/clock.js";
import type { CallInfo } from "./diagnostics.js";
import type { ChannelEvent } from "../core/events.js";
import type { Listeners } from "../core/listeners.js";
import type { AttemptOutcome } from "../pool/outlier.js";
import type { HedgeTiming } from "./hedge-timing.js";
import type { RetryBudget } from "./retry-budget.js";

/** A picked member, held for one attempt; release it exactly once. */
export interface DispatchLease<C> {
  readonly member: { readonly key: string; readonly id: number };
  readonly connection: C;
  /** True once close() cut this lease's member at closeGrace: the call failed because the channel closed. */
  readonly closedByChannel?: boolean;
  /** The attempt resolved but keeps its lease (a streamed body): the member answered. */
  answered?(): void;
  /** How the attempt ended, for outlier ejection. */
  report?(outcome: AttemptOutcome): void;
  /** `now`: the clock reading the latency was measured with (the source's clock), saving the pool a read. */
  release(latencyMs?: number, now?: number): void;
  /**
   * Releases an attempt cancelled because another attempt of its call answered
   * first (a hedge's loser): it ran `ranMs` without an answer, a lower bound
   * of its latency that the member's load learns (as tower's PeakEwma records
   * a cancelled request's time), though it is no proof of life. Without it a
   * member whose slow answers hedges always beat would look as fast as ever
   * and keep its share of picks. Absent: plain release().
   */
  superseded?(ranMs: number, now: number): void;
}

/** Where leases come from: the supervisor, seen only through what dispatch needs. */
export interface LeaseSource<C> {
  acquire(signal: AbortSignal | undefined, timeoutMs: number): Promise<DispatchLease<C>>;
  /**
   * A usable member other than those in `exclude`, now, or undefined: a
   * hedge goes to a different member or not at all, and never queues. The
   * pipeline also takes a first attempt's member this way when one is free.
   */
  tryAcquire?(exclude?: readonly DispatchLease<C>["member"][], now?: number): DispatchLease<C> | undefined;
  /** Records a request-level failure as the channel's most recent error. */
  noteError(error: Error): void;
  readonly events: Listeners<ChannelEvent>;
  /** The channel's clock: deadlines, latencies and hedge timers read it, and the retry budget shares it. */
  readonly clock: Clock;
}

export interface DispatchOptions {
  /** Named in every error. */
  target: string;
  signal?: AbortSignal | undefined;
  /** Budget for the whole call: waiting for a member, attempts, retries (ms). */
  timeout: number;
  /** The caller asserts the call may be repeated. */
  idempotent?: boolean | undefined;
  maxRetries: number;
  acquireTimeout: number;
  /** False once the request can no longer be sent again (a one-shot body was read). */
  replayable?: () => boolean;
  /** The channel's retry budget, shared by all its calls; undefined: no budget. */
  budget?: RetryBudget | undefined;
  /** The channel's hedging policy; undefined: off. Only idempotent calls are hedged. */
  hedge?: HedgeTiming | undefined;
  /** The channel's name, for diagnostics messages. */
  channel?: string | undefined;
  /**
   * What the call is, for dialtone's diagnostics channels (diagnostics.ts):
   * given only when someone subscribes (the channel checks), and then the
   * call publishes its messages; undefined: nothing is built or published.
   */
  info?: CallInfo | undefined;
}

export interface AttemptContext {
  /** ms left of the call's budget when the attempt started. */
  readonly budgetMs: number;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /**
   * The signal this attempt must honour: the caller's, or (hedged calls) one
   * that also aborts when another attempt won — cancelling this one
   * (RST_STREAM CANCEL; a NATS late reply is dropped).
   */
  readonly signal: AbortSignal | undefined;
  /**
   * The attempt keeps its lease past success (a streamed response still in
   * flight) and will release it itself.
   */
  keepLease(): void;
  /**
   * The protocol's verdict on a response that arrived (an HTTP 503, gRPC
   * UNAVAILABLE), for outlier ejection; a success says "ok" by default.
   */
  classify(outcome: AttemptOutcome): void;
  /**
   * Headers a diagnostics subscriber (a tracer) added for this attempt
   * (traceparent …): the attempt sends them with its request. Undefined when
   * none were added.
   */
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** The response status, for an attempt whose result does not carry it (stream()): read by diagnostics. */
  status: number | undefined;
}

export type Attempt<C, T> = (lease: DispatchLease<C>, ctx: AttemptContext) => Promise<T>;

/** What the request event reports of one call. */
export interface Trace {
  retries: number;
  hedges: number;
  hedgeWon: boolean;
  address: string | undefined;
  /** When the call began (the source's clock), for its duration. */
  started: number;
}

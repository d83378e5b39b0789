import type { ChannelEvent } from "../core/events.js";
import type { Listeners } from "../core/listeners.js";
import { outcomeOf } from "./classify.js";
import {
  attemptEnd,
  attemptMember,
  attemptStart,
  callEnd,
  callStart,
  type AttemptEndOutcome,
  type AttemptReason,
  type AttemptStartMessage,
  type CallStartMessage,
  type MemberChange,
} from "./diagnostics.js";
import type { DispatchLease, DispatchOptions } from "./lease.js";

/** What an attempt's tracing needs of its context (attempt.ts's Context). */
export interface TracedContext {
  readonly attempt: number;
  /** Headers a subscriber added for this attempt (setHeader). */
  headers: Record<string, string> | undefined;
  /** The response status, when the attempt learnt it on its own (stream()). */
  status: number | undefined;
  readonly kept: boolean;
}

/** HTTP header or NATS header names a subscriber may add: a token without ':' (both protocols take it). */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Fields HTTP/2 forbids or dialtone sets itself (Node would refuse the request): never added. */
const RESERVED = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings", "te", "host", "content-length"]);
/** Values both protocols carry unchanged: visible ASCII and spaces, no CR, LF or NUL. */
const HEADER_VALUE = /^[\x20-\x7e]*$/;

/**
 * One call's diagnostics messages (diagnostics.ts), built only when someone
 * subscribes: the call's start and end, and each attempt's. An attempt that
 * keeps its lease (a streamed response) ends when the lease is released —
 * when its stream ends — and the call with it if it was the answer.
 */
export class TracedCall {
  readonly call: CallStartMessage;
  attempts = 0;
  #ended = false;

  /** The channel's events, watched for changes of the members this call's attempts are on. */
  readonly #events: Listeners<ChannelEvent>;

  constructor(o: DispatchOptions, events: Listeners<ChannelEvent>) {
    this.#events = events;
    const info = o.info as NonNullable<DispatchOptions["info"]>;
    this.call = {
      channel: o.channel ?? o.target,
      target: o.target,
      idempotent: o.idempotent === true,
      protocol: info.protocol,
      operation: info.operation,
      method: info.method,
      path: info.path,
      subject: info.subject,
      headers: info.headers,
    };
    if (callStart.hasSubscribers) callStart.publish(this.call);
  }

  /** An attempt goes out on `lease`; returns its trace. */
  attempt<C>(ctx: TracedContext, lease: DispatchLease<C>, reason: AttemptReason): AttemptTrace {
    this.attempts++;
    const t = new AttemptTrace(this, ctx, lease.member.key);
    // Only a subscriber of dialtone:attempt:member makes an attempt watch its member.
    if (attemptMember.hasSubscribers) t.watch(MemberWatch.of(this.#events), lease.member.id);
    // Its lease's release is the end of a streamed attempt: watch it on this one lease.
    const release = lease.release;
    lease.release = (latencyMs?: number, now?: number): void => {
      release.call(lease, latencyMs, now);
      t.released(latencyMs !== undefined);
    };
    if (attemptStart.hasSubscribers) attemptStart.publish(new StartMessage(this.call, ctx, reason, t.address));
    return t;
  }

  /** The call failed before or after its attempts. */
  failed(err: unknown, address: string | undefined): void {
    this.end(outcomeOf(err), address, undefined, err instanceof Error ? err : new Error(String(err)));
  }

  end(outcome: ReturnType<typeof outcomeOf>, address: string | undefined, status: number | undefined, error: Error | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    if (callEnd.hasSubscribers) callEnd.publish({ call: this.call, outcome, address, status, error, attempts: this.attempts });
  }
}

/** The attempt:start message: setHeader writes into the attempt's context while it is published. */
class StartMessage implements AttemptStartMessage {
  readonly #ctx: TracedContext;
  readonly attempt: number;
  constructor(
    readonly call: CallStartMessage,
    ctx: TracedContext,
    readonly reason: AttemptReason,
    readonly address: string,
  ) {
    this.#ctx = ctx;
    this.attempt = ctx.attempt;
  }

  setHeader(name: string, value: string): void {
    if (typeof name !== "string" || typeof value !== "string" || !HEADER_NAME.test(name) || !HEADER_VALUE.test(value)) return;
    const lower = name.toLowerCase();
    if (RESERVED.has(lower)) return;
    (this.#ctx.headers ??= {})[lower] = value;
  }
}

export class AttemptTrace {
  #state: "running" | "streaming" | "ended" = "running";
  #watch: { by: MemberWatch; member: number } | undefined;
  /** Released before its answer was seen (a short stream): completed or not. */
  #releasedEarly: boolean | undefined;
  #won = false;
  #status: number | undefined;

  constructor(
    readonly owner: TracedCall,
    readonly ctx: TracedContext,
    readonly address: string,
  ) {}

  /** The attempt answered with `result`; `won`: it is the call's answer. A kept lease defers the end to its release. */
  answered(result: unknown, won: boolean): void {
    this.#won = won;
    this.#status = this.ctx.status ?? statusOf(result);
    if (!this.ctx.kept || this.#releasedEarly !== undefined) return this.#end(this.#releasedEarly === false ? "error" : "ok", undefined);
    this.#state = "streaming";
  }

  failed(err: unknown): void {
    this.#end("error", err instanceof Error ? err : new Error(String(err)));
  }

  /** A hedge that lost: cut by its call. */
  cancelled(): void {
    this.#end("cancelled", undefined);
  }

  released(completed: boolean): void {
    if (this.#state === "running") this.#releasedEarly = completed;
    else if (this.#state === "streaming") this.#end(completed ? "ok" : "error", undefined);
  }

  /** Hears its member's changes from `by` until it ends. */
  watch(by: MemberWatch, member: number): void {
    this.#watch = { by, member };
    by.add(member, this);
  }

  /** Its member changed state while it was in flight. */
  memberChanged(change: MemberChange, reason: string): void {
    if (this.#state === "ended" || !attemptMember.hasSubscribers) return;
    attemptMember.publish({ call: this.owner.call, attempt: this.ctx.attempt, address: this.address, change, reason });
  }

  #end(outcome: AttemptEndOutcome, error: Error | undefined): void {
    if (this.#state === "ended") return;
    this.#state = "ended";
    if (this.#watch) this.#watch.by.remove(this.#watch.member, this);
    const status = this.#status ?? this.ctx.status;
    const call = this.owner.call;
    if (attemptEnd.hasSubscribers) attemptEnd.publish({ call, attempt: this.ctx.attempt, address: this.address, outcome, status, error });
    if (this.#won) this.owner.end(outcome === "ok" ? "ok" : "error", this.address, status, error);
  }
}

/** Why a member is suspect: the channel's suspect event carries no reason of its own. */
const SUSPECT_REASON = "no answer or PONG within health.suspectAfter";

/**
 * The attempts in flight on each member of one channel, for
 * dialtone:attempt:member: it observes the channel's events (an observer:
 * it does not make every call pay for request events) only while one of
 * them is in flight, and tells each attempt on a member that changed.
 */
class MemberWatch {
  static readonly #byEvents = new WeakMap<Listeners<ChannelEvent>, MemberWatch>();

  static of(events: Listeners<ChannelEvent>): MemberWatch {
    let w = MemberWatch.#byEvents.get(events);
    if (!w) MemberWatch.#byEvents.set(events, (w = new MemberWatch(events)));
    return w;
  }

  readonly #events: Listeners<ChannelEvent>;
  readonly #attempts = new Map<number, Set<AttemptTrace>>();
  #stop: (() => void) | undefined;

  private constructor(events: Listeners<ChannelEvent>) {
    this.#events = events;
  }

  add(member: number, t: AttemptTrace): void {
    let set = this.#attempts.get(member);
    if (!set) this.#attempts.set(member, (set = new Set()));
    set.add(t);
    this.#stop ??= this.#events.observe(this.#onEvent);
  }

  remove(member: number, t: AttemptTrace): void {
    const set = this.#attempts.get(member);
    if (!set?.delete(t) || set.size > 0) return;
    this.#attempts.delete(member);
    if (this.#attempts.size === 0) {
      this.#stop?.();
      this.#stop = undefined;
    }
  }

  readonly #onEvent = (e: ChannelEvent): void => {
    let change: MemberChange;
    let reason: string;
    switch (e.type) {
      case "state":
        // A drain is told by its own event (with its DrainReason); nothing in flight is on a connecting member.
        if (e.to === "draining" || e.to === "connecting") return;
        change = e.to;
        reason = e.reason;
        break;
      case "draining":
        change = "draining";
        reason = e.reason;
        break;
      case "suspect":
        change = "suspect";
        reason = SUSPECT_REASON;
        break;
      case "ejected":
        change = "ejected";
        reason = e.reason;
        break;
      default:
        return;
    }
    const set = this.#attempts.get(e.member.id);
    if (!set) return;
    // A copy: a subscriber may end an attempt (and so remove it) while it is told.
    for (const t of [...set]) t.memberChanged(change, reason);
  };
}

/** The HTTP status of a response-shaped result (Http2Response, Http2StreamingResponse); dispatch knows no protocol. */
function statusOf(result: unknown): number | undefined {
  const s = (result as { status?: unknown } | null | undefined)?.status;
  return typeof s === "number" ? s : undefined;
}

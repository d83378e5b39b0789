import {
  ClosedConnectionError as NatsClosed,
  headers as natsHeaders,
  NoRespondersError as NatsNoResponders,
  RequestError as NatsRequestError,
  TimeoutError as NatsTimeout,
  type Msg,
} from "@nats-io/transport-node";
import { raceSignal } from "../../core/abort.js";
import { pause, type Clock } from "../../core/clock.js";
import { DeadlineQueue } from "../../core/deadlines.js";
import { BadRequestError, DialtoneError, MemberLostError, NoRespondersError, RequestError, RequestTimeoutError } from "../../core/errors.js";
import { requireInteger } from "../../core/duration.js";
import { checkSignal, checkTimeout } from "../../dispatch/call-options.js";
import { tracing, type CallInfo } from "../../dispatch/diagnostics.js";
import type { ChannelEvent } from "../../core/events.js";
import { UnionResolver } from "../../resolve/union-resolver.js";
import { ChannelBase } from "../channel-base.js";
import { supervisorFor } from "../common-options.js";
import type { NatsMemberConnection } from "./connection.js";
import { NatsConnector } from "./connector.js";
import { checkControlLine, checkPayloadSize } from "./limits.js";
import { advertisedAddresses, resolveNatsOptions, type NatsChannelOptions, type ResolvedNatsOptions } from "./options.js";
import { ChannelSubscription, type ChannelSubscribeOptions } from "./subscription.js";

export type NatsPayload = string | Uint8Array;

export interface NatsRequestOptions {
  timeout?: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /**
   * May be sent again on another member: if its member is lost before the
   * reply, and, with the channel's hedge (on by default for NATS), when no
   * reply came within the hedge delay (the first reply wins).
   */
  idempotent?: boolean;
}

/**
 * A warm pool of NATS connections, one per server of a cluster: requests go
 * to the less loaded of two random usable members, so a request never waits
 * for a reconnect; subscriptions move when their member goes.
 */
export class NatsChannel extends ChannelBase<NatsMemberConnection> {
  readonly #o: ResolvedNatsOptions;
  readonly #union: UnionResolver;
  readonly #subs = new Set<ChannelSubscription>();

  constructor(options: NatsChannelOptions) {
    const o = resolveNatsOptions(options);
    const union = new UnionResolver(o.resolver);
    let emit: (e: ChannelEvent) => void = () => {};
    // Every request's deadline, in one queue with one timer on the channel's clock.
    const deadlines = new DeadlineQueue(o.clock);
    const connector = new NatsConnector({
      deadlines,
      target: o.target,
      name: o.name,
      auth: o.auth,
      authenticator: o.authenticator,
      tls: o.tls,
      tlsName: o.tlsName,
      connectTimeout: o.connectTimeout,
      // Set before the member joins the pool, so no -ERR from its first moments is missed.
      adopt: (conn) => (conn.onServerError = (e) => emit(e)),
    });
    super(
      o.target,
      o.name,
      supervisorFor<NatsMemberConnection>(o, o.target, union, connector, { backoffDelay: o.backoffDelay, retainOrder: o.retainServerOrder }),
      o,
      deadlines,
    );
    emit = (e) => this.sup.events.emit(e);
    this.#o = o;
    this.#union = union;
    // An observer, not a listener: the channel's own bookkeeping must not make every request build a request event.
    this.sup.events.observe((e) => {
      if (e.type === "member-added") this.#adopt(e.member.id);
      // A member that drains, dies or is evicted takes no subscription with it.
      else if (e.type === "draining" || e.type === "member-removed") void this.#moveOff(e.member.id);
    });
  }

  /** Request/reply on a picked member. No responders and timeouts are typed errors; a lost member is retried only if `idempotent`. */
  async request(subject: string, data?: NatsPayload, options: NatsRequestOptions = {}): Promise<Msg> {
    validateSubject(subject, this.target);
    checkControlLine(this.target, subject, this.#o.maxControlLine, "request");
    checkPayload(data, this.target);
    const hdrs = toHeaders(options.headers, this.target);
    const timeout = checkTimeout(options.timeout, this.target) ?? this.#o.requestTimeout;
    const signal = checkSignal(options.signal, this.target);
    return await this.call(
      { signal, timeout, idempotent: options.idempotent },
      { maxRetries: 2, acquireTimeout: this.#o.acquireTimeout },
      async (lease, ctx) => {
        const budget = ctx.budgetMs;
        const conn = lease.connection;
        const nc = conn.nc;
        const address = lease.member.key;
        if (nc.isClosed() || nc.isDraining()) {
          throw new RequestError("ERR_DIALTONE_NOT_SENT", this.target, address, "member closed before the request was sent", true);
        }
        // Against the limits of the server this member is on: a message over them is the caller's error, not the member's.
        const h = withAdded(hdrs, ctx.headers);
        checkPayloadSize(this.target, nc, data, h);
        const sent = conn.requests.request(subject, data, h, Math.max(1, Math.floor(budget)));
        try {
          return await raceSignal(sent, ctx.signal);
        } catch (err) {
          // A hedge that lost (the call's own signal did not abort): the call has its reply, but this
          // request is still out on the wire, and NATS cannot take it back. The member keeps it in
          // flight until its late reply (a latency sample) or its deadline, so a member whose requests
          // go unanswered keeps looking so — overdue, then suspect and PINGed — instead of looking idle
          // the moment another member answered for it.
          if (ctx.signal?.aborted && !signal?.aborted) return await this.#settled(sent, address, subject, budget, nc);
          throw await this.#failure(err, address, subject, budget, nc);
        }
      },
      tracing() ? about("request", subject) : undefined,
    );
  }

  /** Publishes on a picked member (waits, bounded, for one when none is usable). */
  async publish(subject: string, data?: NatsPayload, options: { headers?: Record<string, string>; signal?: AbortSignal } = {}): Promise<void> {
    validateSubject(subject, this.target);
    checkControlLine(this.target, subject, this.#o.maxControlLine, "publish");
    checkPayload(data, this.target);
    const hdrs = toHeaders(options.headers, this.target);
    const signal = checkSignal(options.signal, this.target);
    // Through the dispatch pipeline (no retries: a publish is at-most-once), so aborts and waits are typed like requests'.
    await this.call(
      { signal, timeout: this.#o.acquireTimeout },
      { maxRetries: 0, acquireTimeout: this.#o.acquireTimeout },
      async (lease, ctx) => {
        const h = withAdded(hdrs, ctx.headers);
        checkPayloadSize(this.target, lease.connection.nc, data, h);
        lease.connection.nc.publish(subject, data, { headers: h });
      },
      tracing() ? about("publish", subject) : undefined,
    );
  }

  /** Round-trips every ready member, so everything published before it has reached a server. */
  async flush(): Promise<void> {
    const ready = [...this.sup.members()].filter((m) => m.state === "ready");
    const clock = this.sup.clock;
    const timeout = this.#o.requestTimeout;
    await Promise.all(
      ready.map(
        (m) =>
          new Promise<void>((resolve, reject) => {
            const timer = clock.setTimeout(() => reject(new RequestTimeoutError(this.target, m.key, timeout)), timeout);
            m.connection.nc.flush().then(
              () => {
                timer.cancel();
                resolve();
              },
              (err: unknown) => {
                timer.cancel();
                reject(err as Error);
              },
            );
          }),
      ),
    );
  }

  /**
   * A subscription that survives member loss: it lives on one usable member
   * and is re-made on another when that member goes; each move is a
   * `subscription-moved` event with the gap it took.
   */
  async subscribe(subject: string, options: ChannelSubscribeOptions = {}): Promise<ChannelSubscription> {
    validateSubject(subject, this.target, true);
    const opts = checkSubscribeOptions(options, this.target);
    checkControlLine(this.target, subject, this.#o.maxControlLine, "subscribe", opts.queue);
    const s = new ChannelSubscription(
      subject,
      opts,
      { maxPending: this.#o.maxPending, maxPendingBytes: this.#o.maxPendingBytes },
      {
        // Placement is a call like any other (the dispatch pipeline: bounded wait, typed aborts, the request event).
        place: (signal) =>
          this.call({ signal, timeout: this.#o.acquireTimeout }, { maxRetries: 0, acquireTimeout: this.#o.acquireTimeout }, async (lease) => ({
            memberId: lease.member.id,
            address: lease.member.key,
            nc: lease.connection.nc,
          })),
        emit: (e) => this.sup.events.emit(e),
        clock: this.sup.clock,
      },
    );
    await s.start();
    this.#subs.add(s);
    return s;
  }

  /**
   * Close flushes first (as NATS clients do): everything published reaches a
   * server before the connections go, within closeGrace. Then subscriptions end.
   */
  protected override async beforeClose(): Promise<void> {
    await this.#flushWithin(this.#o.closeGrace).catch(() => {});
    for (const s of this.#subs) s.unsubscribe();
    this.#subs.clear();
  }

  /** Round-trips every member that can still take traffic, each bounded by `ms`. */
  async #flushWithin(ms: number): Promise<void> {
    const live = [...this.sup.members()].filter(
      (m) => (m.state === "ready" || m.state === "unhealthy" || m.state === "draining") && !m.connection.nc.isClosed(),
    );
    await Promise.all(live.map((m) => raceTimeout(m.connection.nc.flush(), ms, this.sup.clock)));
  }

  /** New member: hear the servers it advertises, and move its subscriptions off before it drains. */
  #adopt(memberId: number): void {
    const m = [...this.sup.members()].find((x) => x.id === memberId);
    if (!m) return;
    // Before a drain: subscriptions move first, and requests waiting for replies get them
    // (nats.js would fail them when the drain closes the connection), within drainTimeout.
    m.connection.beforeDrain = async () => {
      await this.#moveOff(memberId);
      const clock = this.sup.clock;
      const until = clock.now() + this.#o.drainTimeout;
      while (m.inFlight > 0 && clock.now() < until) await pause(clock, 10);
    };
    if (this.#o.learnServers) m.connection.onDiscovered((urls) => this.#union.learn(advertisedAddresses(urls, this.target)));
  }

  async #moveOff(memberId: number): Promise<void> {
    for (const s of this.#subs) if (s.closed) this.#subs.delete(s);
    await Promise.all([...this.#subs].map((s) => s.moveOff(memberId)));
  }

  /** A lost hedge's request, held until it settles; nobody waits for its outcome (the call has ended). */
  async #settled(sent: Promise<Msg>, address: string, subject: string, budget: number, nc: NatsMemberConnection["nc"]): Promise<Msg> {
    try {
      return await sent;
    } catch (err) {
      throw await this.#failure(err, address, subject, budget, nc);
    }
  }

  async #failure(err: unknown, address: string, subject: string, budget: number, nc: NatsMemberConnection["nc"]): Promise<Error> {
    // The client fails pending requests a moment before it marks itself closed.
    await new Promise((r) => setImmediate(r));
    return this.#mapError(err, address, subject, budget, nc.isClosed() || nc.isDraining());
  }

  #mapError(err: unknown, address: string, subject: string, budget: number, closed: boolean): Error {
    const cause = err instanceof Error ? err.cause : undefined;
    if (err instanceof NatsNoResponders || cause instanceof NatsNoResponders || (err instanceof NatsRequestError && err.isNoResponders())) {
      return new NoRespondersError(this.target, address, subject);
    }
    const lost =
      closed ||
      err instanceof NatsClosed ||
      cause instanceof NatsClosed ||
      (err instanceof Error && /connection (closed|draining)|disconnect/i.test(err.message));
    if (lost) return new MemberLostError(this.target, address, err instanceof Error ? err.message : String(err), { cause: err });
    if (err instanceof NatsTimeout || cause instanceof NatsTimeout) return new RequestTimeoutError(this.target, address, Math.round(budget));
    if (err instanceof Error && err.name === "AbortError") return err;
    if (err instanceof DialtoneError) return err;
    return new RequestError("ERR_DIALTONE_NATS", this.target, address, err instanceof Error ? err.message : String(err), false, { cause: err });
  }
}

/** Resolves when `p` settles or `ms` pass on `clock`, whichever is first; never rejects. */
function raceTimeout(p: Promise<unknown>, ms: number, clock: Clock): Promise<void> {
  const done = new AbortController();
  const settled = p.then(
    () => done.abort(),
    () => done.abort(),
  );
  return Promise.race([settled, pause(clock, ms, done.signal)]);
}

/**
 * Options that are checked and resolved here but need a supervisor hook that
 * is not there yet (issue 11 item 7): refused by name rather than ignored.
 */
function checkSubscribeOptions(options: unknown, target: string): ChannelSubscribeOptions {
  if (options === undefined || options === null) return {};
  if (typeof options !== "object") throw new BadRequestError(target, "options", "expected an object");
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== "queue" && k !== "max") throw new BadRequestError(target, `options.${k}`, "unknown option (expected queue, max)");
  const out: ChannelSubscribeOptions = {};
  if (o.queue !== undefined) {
    if (typeof o.queue !== "string" || o.queue === "" || /\s/.test(o.queue))
      throw new BadRequestError(target, "queue", "expected a queue group name without spaces");
    out.queue = o.queue;
  }
  if (o.max !== undefined) {
    try {
      out.max = requireInteger("max", o.max, 1);
    } catch (err) {
      throw new BadRequestError(target, "max", "expected a whole number ≥ 1", { cause: err });
    }
  }
  return out;
}

export function createNatsChannel(options: NatsChannelOptions): NatsChannel {
  return new NatsChannel(options);
}

/** NATS header names: printable ASCII without ':' or spaces; values: no CR or LF (they would end the header block). */
const NATS_HEADER_NAME = /^[!-9;-~]+$/;
const NATS_BAD_VALUE = /[\r\n\0]/;

function toHeaders(h: Record<string, string> | undefined, target: string): ReturnType<typeof natsHeaders> | undefined {
  if (h === undefined || h === null) return undefined;
  if (typeof h !== "object" || Array.isArray(h)) throw new BadRequestError(target, "headers", "expected an object of name → string value");
  const out = natsHeaders();
  for (const [k, v] of Object.entries(h)) {
    if (!NATS_HEADER_NAME.test(k)) throw new BadRequestError(target, "headers", `${JSON.stringify(k.slice(0, 64))} is not a valid NATS header name`);
    if (typeof v !== "string") throw new BadRequestError(target, `headers.${k}`, "expected a string");
    if (NATS_BAD_VALUE.test(v)) throw new BadRequestError(target, `headers.${k}`, "value contains CR, LF or NUL");
    out.set(k, v);
  }
  return out;
}

/** The call's headers plus those a diagnostics subscriber added for this attempt (traceparent), on a copy: each attempt has its own. */
function withAdded(
  h: ReturnType<typeof natsHeaders> | undefined,
  added: Readonly<Record<string, string>> | undefined,
): ReturnType<typeof natsHeaders> | undefined {
  if (added === undefined) return h;
  const out = natsHeaders();
  if (h) for (const [k, values] of h) for (const v of values) out.append(k, v);
  for (const k in added) out.set(k, added[k] as string);
  return out;
}

/** What a call is, for dialtone's diagnostics channels (built only when someone subscribes). */
function about(operation: "request" | "publish", subject: string): CallInfo {
  return { protocol: "nats", operation, subject };
}

/** nats.js takes a string or bytes; anything else would throw a TypeError from inside the client. */
function checkPayload(data: unknown, target: string): void {
  if (data === undefined || typeof data === "string" || data instanceof Uint8Array) return;
  throw new BadRequestError(target, "data", `expected a string or a Uint8Array, got ${data === null ? "null" : typeof data}`);
}

/** A subject is per-call input: a bad one fails that call with a BadRequestError, like a bad header. */
function validateSubject(subject: string, target: string, wildcards = false): void {
  const ok = typeof subject === "string" && subject !== "" && !/\s/.test(subject) && subject.split(".").every((t) => t !== "");
  if (!ok || (!wildcards && /(^|\.)(\*|>)(\.|$)/.test(subject))) {
    throw new BadRequestError(target, "subject", `invalid NATS subject ${JSON.stringify(typeof subject === "string" ? subject.slice(0, 128) : subject)}`);
  }
}

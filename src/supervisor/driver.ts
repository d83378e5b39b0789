import { setMaxListeners } from "node:events";
import { addressKey } from "../core/address.js";
import { clockTimeout, systemClock, type Clock, type Timer } from "../core/clock.js";
import { raceSignal } from "../core/abort.js";
import {
  ClosedError,
  ConnectError,
  DialtoneError,
  MemberLostError,
  NoMemberError,
  NotReadyError,
  OverloadedError,
  QueueFullError,
  ResolveError,
  asError,
} from "../core/errors.js";
import {
  familyOf,
  isFailedAnswer,
  type ChannelEvent,
  type ConnectionStatus,
  type DrainReason,
  type FamilyAnswer,
  type MemberInfo,
  type MemberState,
} from "../core/events.js";
import { Listeners } from "../core/listeners.js";
import { HealthChecker, type HealthReport } from "../health/health-checker.js";
import { PassiveSuspicion } from "../health/passive.js";
import type { HealthOptions } from "../health/options.js";
import type { OutlierOptions } from "../pool/outlier.js";
import { Pool, type Balancer, type PoolMemberRef } from "../pool/pool.js";
import type { Resolver } from "../resolve/resolver.js";
import { describeAnswers } from "../resolve/family-answers.js";
import { AcquireQueue } from "./acquire-queue.js";
import { MemberLease, type LeaseOwner } from "./member-lease.js";
import type { BackoffOptions } from "./backoff.js";
import type { Connector, ConnectionEvent, MemberConnection } from "./connection.js";
import type { MembersPlan } from "./members-plan.js";
import { Regulator, type Action, type RegulatorEvent } from "./regulator.js";
import { addressStats, memberStats, noAddressReason, resolutionStats, type MemberStats, type Resolution, type SupervisorStats } from "./stats.js";
import { StatusStream } from "./status-stream.js";

export type { MemberStats, SupervisorStats };

/** How often a channel whose members follow load samples it. */
export const LOAD_SAMPLE_INTERVAL = 250;

export interface SupervisorOptions<C extends MemberConnection> {
  /** The service as users name it; every error message carries it. */
  target: string;
  resolver: Resolver;
  connector: Connector<C>;
  /** A fixed count, or a range that follows load. */
  members: MembersPlan;
  /** Deterministic subsetting: this process's index in its fleet. */
  subset?: { clientId: number } | undefined;
  health: HealthOptions;
  /** Each address's own backoff after failures; `timeout` (0 = never) is how long an empty slot keeps trying. */
  backoff: BackoffOptions;
  criticalMin: number;
  balancer: Balancer;
  acquireTimeout: number;
  maxQueue: number;
  /** How long close() lets in-flight work finish before destroying connections. */
  closeGrace: number;
  /** How long a draining member may finish its in-flight work before it is closed. */
  drainTimeout: number;
  /** How long ready() waits when the caller gives no signal. */
  readyTimeout: number;
  /** A connection lost this soon (ms) after its first PONG is a failure of its address. */
  flapWindow: number;
  /** How long an address that rotating answers omit keeps its members (ms). */
  minHold: number;
  /** Requests in flight on the channel past which acquire() fails at once. */
  maxOutstanding: number;
  /** A per-address delay hook replacing the backoff formula (see AddressBookOptions). */
  backoffDelay?: ((failures: number) => number) | undefined;
  /** Outlier ejection from request outcomes; undefined: off. */
  outlier?: OutlierOptions | undefined;
  /** Keep the resolver's address order instead of the per-process shuffle. */
  retainOrder?: boolean | undefined;
  random?: () => number;
  /** Where the driver reads time and sets its timers (default: the system clock). */
  clock?: Clock;
}

/** A member as a transport sees it: read-only, live, and not the pool's record itself. */
export interface MemberView<C> {
  readonly id: number;
  readonly key: string;
  readonly state: MemberState;
  readonly inFlight: number;
  readonly connection: C;
}

/** The driver's side of one member: its health loop and how far it got. */
interface Tracked<C> {
  readonly member: PoolMemberRef<C>;
  readonly slot: number;
  readonly health: HealthChecker;
  /** Dialed, first PING not answered yet. */
  warming: boolean;
  /** The first PING's round trip, once answered. */
  firstRtt: number | undefined;
  /** The connection reported itself closed. */
  connClosed: boolean;
  /** Closed and out of the pool. */
  finished: boolean;
  /** Rejects when the connection dies or is told to go away during warm-up. */
  readonly failed: Promise<never>;
  fail(error: Error): void;
}

/**
 * The only part with effects: it owns timers, dials with their first PING,
 * health checkers, the pool and the acquire queue. It feeds what happens to
 * the Regulator and carries out the actions it returns; it decides nothing
 * about members itself.
 */
export class Supervisor<C extends MemberConnection> implements AsyncDisposable {
  readonly events = new Listeners<ChannelEvent>();
  readonly pool: Pool<C>;
  readonly target: string;
  #o: SupervisorOptions<C>;
  #random: () => number;
  #reg: Regulator;
  #abort = new AbortController();
  #tracked = new Map<number, Tracked<C>>();
  #queue: AcquireQueue<MemberLease<C>>;
  #status = new StatusStream<ConnectionStatus>("disconnected");
  #changeWaiters = new Set<() => void>();
  /** Dials in progress, so the regulator can cancel one. */
  #dials = new Map<number, AbortController>();
  #inbox: RegulatorEvent[] = [];
  #feeding = false;
  /** The channel's one clock: every timer and reading of the time below goes through it. */
  readonly clock: Clock;
  #wake: Timer | undefined;
  /** Timers that outlive the event that set them (load samples, ejections, drains), cancelled by close(). */
  #timers = new Set<Timer>();
  /** What ready() waits for: the fixed count, or a range's minimum. */
  #minMembers: number;
  #nextId = 1;
  #outstanding = 0;
  #maxOutstanding: number;
  #lastError: Error | undefined;
  #closing: Promise<void> | undefined;
  #resolution: Resolution | undefined;
  /** Members close() destroyed when closeGrace ran out. */
  #cut = new WeakSet<PoolMemberRef<C>>();
  /** What every lease of this channel shares (see MemberLease). */
  readonly #leaseOwner: LeaseOwner<C>;

  constructor(options: SupervisorOptions<C>) {
    this.#o = options;
    this.target = options.target;
    // Every dial listens on this one signal: no cap.
    setMaxListeners(0, this.#abort.signal);
    this.#random = options.random ?? Math.random;
    const clock = (this.clock = options.clock ?? systemClock);
    this.#maxOutstanding = options.maxOutstanding;
    this.#queue = new AcquireQueue(options.maxQueue, clock);
    const members = options.members;
    this.#minMembers = members.min;
    this.#reg = new Regulator({
      target: options.target,
      members,
      subset: options.subset,
      criticalMin: options.criticalMin,
      backoff: options.backoff,
      flapWindow: options.flapWindow,
      minHold: options.minHold,
      random: this.#random,
      backoffDelay: options.backoffDelay,
      retainOrder: options.retainOrder,
    });
    this.pool = new Pool<C>({
      balancer: options.balancer,
      random: this.#random,
      // The system clock's own arrow keeps the pool's hot-path read a plain call.
      now: clock === systemClock ? systemClock.now : () => clock.now(),
      suspect: new PassiveSuspicion(options.health.suspectAfter),
      outlier: options.outlier,
    });
    this.#leaseOwner = { pool: this.pool, isCut: (m) => this.#cut.has(m), released: () => void this.#outstanding-- };
    this.pool.events.add((e) => {
      if (e.type === "state") {
        const t = this.#tracked.get(e.member.id);
        this.events.emit({ type: "state", member: info(e.member, t?.slot), from: e.from, to: e.to, reason: e.reason });
        this.#changed();
      } else if (e.type === "usable" && e.count > 0) {
        this.#queue.serve(() => this.#tryPick());
      } else if (e.type === "suspect") {
        const t = this.#tracked.get(e.member.id);
        this.events.emit({ type: "suspect", member: info(e.member, t?.slot) });
        // Busy and silent: ask now rather than at the next interval.
        t?.health.probeNow();
        return;
      } else if (e.type === "ejected") {
        const m = e.member as PoolMemberRef<C>;
        const t = this.#tracked.get(m.id);
        this.events.emit({ type: "ejected", member: info(m, t?.slot), reason: e.reason, durationMs: e.durationMs });
        // The pool has no timers: the driver ends the ejection. Unref'd (the clock's timers are).
        this.#after(e.durationMs, () => this.pool.restore(m));
        // Not usable now: the regulator may dial a replacement for its slot.
        this.#feed({ type: "ejected", member: m.id });
      } else if (e.type === "restored") {
        const t = this.#tracked.get(e.member.id);
        this.events.emit({ type: "ejection-ended", member: info(e.member, t?.slot) });
        this.#feed({ type: "ejection-ended", member: e.member.id });
      }
      this.#updateStatus();
    });
    if (members.max > members.min) {
      // Sampling is an effect, so it lives here; what a sample means is the regulator's call.
      const sample = (): void => {
        this.#sampleLoad();
        if (!this.closed) this.#after(LOAD_SAMPLE_INTERVAL, sample);
      };
      this.#after(LOAD_SAMPLE_INTERVAL, sample);
    }
    options.resolver.start({
      onAddresses: (set) => {
        if (this.closed) return;
        const empty =
          set.addresses.length > 0 ? undefined : set.answers?.length ? describeAnswers(set.answers) : `${options.resolver.target} returned no addresses`;
        this.#resolution = { at: this.clock.now(), ttl: set.ttl, error: undefined, empty };
        this.#feed({ type: "addresses", addresses: set.addresses });
        this.events.emit({ type: "resolve", addresses: [...new Set(set.addresses.map(addressKey))], ttl: set.ttl });
        this.#familyFailures(set.answers);
      },
      onError: (error) => {
        this.#lastError ??= error;
        if (this.#resolution) this.#resolution.error = error;
        else this.#resolution = { at: undefined, ttl: undefined, error, empty: undefined };
        if (error instanceof ResolveError) this.#familyFailures(error.answers);
        this.events.emit({ type: "resolve-failed", error });
      },
    });
  }

  /** Each DNS family that failed in a lookup (whether or not the lookup succeeded on the other) is an event. */
  #familyFailures(answers: readonly FamilyAnswer[] | undefined): void {
    for (const a of answers ?? []) {
      if (!isFailedAnswer(a)) continue;
      this.events.emit({
        type: "resolve-family-failed",
        name: a.name,
        family: familyOf(a.type),
        answer: a.answer,
        server: a.server,
        kept: a.kept,
        message: a.message,
      });
    }
  }

  get closed(): boolean {
    return this.#abort.signal.aborted;
  }

  get lastError(): Error | undefined {
    return this.#lastError;
  }

  get statusNow(): ConnectionStatus {
    return this.#status.current;
  }

  status(signal?: AbortSignal): AsyncGenerator<ConnectionStatus, void, undefined> {
    return this.#status.watch(signal);
  }

  /**
   * Resolves once every slot has a ready member. Rejects if the channel
   * closes first; when `signal` aborts, or (with no signal) after
   * readyTimeout, with a NotReadyError naming how far it got and why.
   */
  async ready(signal?: AbortSignal): Promise<void> {
    // Backoff timers are unref'd; someone awaiting ready() must still keep the process alive.
    const keepAlive = setInterval(() => {}, 60_000);
    const started = this.clock.now();
    const own = signal ? undefined : clockTimeout(this.clock, this.#o.readyTimeout);
    try {
      while (this.pool.readyCount < this.#minMembers) {
        if (this.closed) throw new ClosedError(`channel ${this.target}`);
        await raceSignal(this.#nextChange(), signal ?? own?.signal);
      }
    } catch (err) {
      if (!this.closed && (own?.signal.aborted || signal?.aborted)) {
        const why = this.#reg.book.entries().length === 0 ? noAddressReason(this.#resolution) : undefined;
        throw new NotReadyError(this.target, this.pool.readyCount, this.#minMembers, Math.round(this.clock.now() - started), this.#lastError, why);
      }
      throw err;
    } finally {
      own?.cancel();
      clearInterval(keepAlive);
    }
  }

  /**
   * A usable member, picked by P2C; waits (bounded queue, acquireTimeout)
   * when there is none, then fails with NoMemberError naming the last cause.
   * Past maxOutstanding requests in flight it fails at once: members that
   * stopped answering must not collect an unbounded pile.
   */
  acquire(signal?: AbortSignal, timeoutMs = this.#o.acquireTimeout): Promise<MemberLease<C>> {
    if (this.closed) return Promise.reject(new ClosedError(`channel ${this.target}`));
    if (this.#outstanding >= this.#maxOutstanding) return Promise.reject(new OverloadedError(this.target, this.#maxOutstanding, this.#lastError));
    const lease = this.#tryPick();
    if (lease) return Promise.resolve(lease);
    return this.#queue.wait(
      timeoutMs,
      signal,
      () => new NoMemberError(this.target, timeoutMs, this.#lastError),
      () => new QueueFullError(this.target, this.#o.maxQueue, this.#lastError),
    );
  }

  /**
   * A usable member other than those in `exclude`, now, or undefined (a
   * hedge: it goes to a different member or not at all, and never queues).
   */
  tryAcquire(exclude?: readonly object[], now?: number): MemberLease<C> | undefined {
    if (this.closed || this.#outstanding >= this.#maxOutstanding) return undefined;
    return this.#tryPick(exclude, now);
  }

  /** Records a request-level failure as the channel's most recent error. */
  noteError(error: Error): void {
    this.#lastError = error;
  }

  /**
   * The members now, as read-only live views: what a transport may know of them
   * (to flush every ready one, or find where a subscription lives) without
   * reaching into the pool's own records.
   */
  *members(): IterableIterator<MemberView<C>> {
    for (const m of this.pool.members()) {
      // Getters, not copies: a caller waiting for in-flight work to end must see it end.
      yield {
        id: m.id,
        key: m.key,
        get state() {
          return m.state;
        },
        get inFlight() {
          return m.inFlight;
        },
        connection: m.connection,
      };
    }
  }

  stats(): SupervisorStats {
    const members: MemberStats[] = [];
    for (const m of this.pool.members()) members.push(memberStats(m, this.#tracked.get(m.id)?.slot ?? -1));
    members.sort((a, b) => a.slot - b.slot || a.id - b.id);
    return {
      target: this.target,
      status: this.#status.current,
      wanted: this.#reg.wanted,
      ready: this.pool.readyCount,
      usable: this.pool.usableCount,
      degraded: this.pool.degraded,
      queued: this.#queue.length,
      addresses: addressStats(this.#reg.book.entries(), this.clock.now()),
      members,
      resolution: resolutionStats(this.#o.resolver.target, this.#resolution, this.clock),
      lastError: this.#lastError?.message,
    };
  }

  /**
   * Stops dialing, fails queued requests, lets in-flight requests finish for
   * up to closeGrace ms, then destroys what is left. Closing blames nobody:
   * no eviction, drain or degraded events, no failed addresses.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(): Promise<void> {
    const closed = new ClosedError(`channel ${this.target}`);
    this.#feed({ type: "close" });
    this.#abort.abort(closed);
    this.#wake?.cancel();
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    this.#o.resolver.close();
    this.#queue.rejectAll(closed);
    for (const t of this.#tracked.values()) {
      t.health.stop();
      t.member.connection.close(true);
    }
    this.#changed();
    const deadline = this.clock.now() + this.#o.closeGrace;
    while (this.pool.size > 0 && this.clock.now() < deadline) {
      let tick: Timer | undefined;
      await Promise.race([
        this.#nextChange(),
        new Promise<void>((resolve) => (tick = this.clock.setTimeout(resolve, Math.min(50, deadline - this.clock.now())))),
      ]);
      tick?.cancel();
    }
    for (const t of [...this.#tracked.values()]) {
      this.#cut.add(t.member);
      this.#finish(t, "channel closed", undefined);
    }
    // Drains begun during the grace period set timers of their own: none outlives close().
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    this.#status.end("disconnected");
  }

  // ── the loop: events in, actions out ───────────────────────────────

  /** Feeds one event; events raised while actions run are queued, so the regulator never re-enters. */
  #feed(event: RegulatorEvent): void {
    this.#inbox.push(event);
    if (this.#feeding) return;
    this.#feeding = true;
    try {
      for (let e = this.#inbox.shift(); e; e = this.#inbox.shift()) {
        const actions = this.#reg.accept(e, this.clock.now());
        // Degraded mode is the regulator's decision; the pool only indexes by it. Entering it is
        // applied before the batch's state changes and leaving it after them, so no listener sees
        // a moment with nothing usable (the last ready member unhealthy, unhealthy ones not yet pickable).
        const mode = degradedIn(actions);
        if (mode === true) this.pool.setDegraded(true);
        for (const a of actions) this.#do(a);
        if (mode === false) this.pool.setDegraded(false);
      }
    } finally {
      this.#feeding = false;
    }
    this.#changed();
  }

  #do(a: Action): void {
    switch (a.type) {
      case "dial": {
        const cancel = new AbortController();
        this.#dials.set(a.dial, cancel);
        // Started once the current event is fully handled, so its own events (resolve, state) come first.
        queueMicrotask(() => void this.#dial(a, cancel));
        return;
      }
      case "cancel":
        this.#dials.get(a.dial)?.abort(new ClosedError(`dial ${a.dial}`));
        return;
      case "state": {
        const t = this.#tracked.get(a.member);
        if (!t) return;
        const from = t.member.state;
        this.pool.setState(t.member, a.to, a.reason);
        // Proven: said before anything the regulator does next (a second dial on this address, a drain).
        if (from === "connecting" && t.firstRtt !== undefined) this.events.emit({ type: "connect-ok", member: info(t.member, t.slot), rtt: t.firstRtt });
        return;
      }
      case "evict": {
        const t = this.#tracked.get(a.member);
        if (!t) return;
        if (a.reason === "peer-closed") this.#lastError = a.error;
        this.events.emit({ type: "evicted", member: info(t.member, t.slot), reason: a.reason, detail: a.detail });
        // A member evicted when degraded mode ends keeps the PING failure that made it unhealthy.
        this.#finish(t, a.detail, a.reason === "unhealthy" ? (t.member.lastError ?? a.error) : a.error);
        return;
      }
      case "drain": {
        const t = this.#tracked.get(a.member);
        if (t) this.#drain(t, a.reason, a.detail);
        return;
      }
      case "close": {
        const t = this.#tracked.get(a.member);
        if (t) this.#finish(t, a.reason, a.error);
        return;
      }
      case "degraded":
        this.events.emit({ type: "degraded", degraded: a.degraded, healthy: a.healthy });
        return;
      case "wake":
        this.#wake?.cancel();
        // Unref'd: an idle channel must not keep the process alive.
        this.#wake = this.clock.setTimeout(() => this.#feed({ type: "tick" }), a.at - this.clock.now());
        return;
      case "refresh":
        this.#o.resolver.refresh?.();
        return;
      case "gave-up":
        this.#lastError = a.error;
        this.events.emit({ type: "gave-up", slot: a.slot, error: a.error });
        return;
      case "members":
        this.events.emit({ type: "members", from: a.from, to: a.to, reason: a.reason });
        return;
    }
  }

  /** One load sample for members that follow load: in flight on ready members, the lowest peer stream limit, mean latency estimate. */
  #sampleLoad(): void {
    if (this.closed) return;
    let inFlight = 0;
    let streamLimit = Number.POSITIVE_INFINITY;
    let latencySum = 0;
    let latencies = 0;
    for (const m of this.pool.members()) {
      if (m.state !== "ready") continue;
      inFlight += m.inFlight;
      streamLimit = Math.min(streamLimit, m.maxConcurrent);
      // Peak-EWMA only: the in-flight balancer keeps no latency estimate.
      const l = m.latency;
      if (l !== undefined) {
        latencySum += l;
        latencies++;
      }
    }
    this.#feed({ type: "load", inFlight, streamLimit, latency: latencies > 0 ? latencySum / latencies : undefined });
  }

  // ── members ──────────────────────────────────────────────────────────

  /** Dials, then proves with a first PING; the regulator hears of every step. */
  async #dial(a: Extract<Action, { type: "dial" }>, cancel: AbortController): Promise<void> {
    const key = addressKey(a.address);
    if (cancel.signal.aborted || this.closed) {
      // Cancelled before it started: the regulator has already let it go.
      this.#dials.delete(a.dial);
      return;
    }
    this.events.emit({ type: "connect-attempt", slot: a.slot, address: key, attempt: a.attempt });
    try {
      await this.#dialAndProve(a, key, AbortSignal.any([this.#abort.signal, cancel.signal]));
    } finally {
      this.#dials.delete(a.dial);
    }
  }

  async #dialAndProve(a: Extract<Action, { type: "dial" }>, key: string, signal: AbortSignal): Promise<void> {
    let conn: C;
    try {
      conn = await this.#o.connector.connect(a.address, signal);
    } catch (err) {
      this.#dialFailed(a.dial, a.slot, key, undefined, err);
      return;
    }
    const member = this.pool.admit(this.#nextId++, a.address, key, conn);
    const t = this.#track(member, a.slot);
    this.events.emit({ type: "member-added", member: info(member, a.slot) });
    conn.onEvent((e) => this.#onConnectionEvent(t, e));
    this.#feed({ type: "connected", dial: a.dial, member: member.id });
    if (t.finished) return;
    let rtt: number;
    try {
      // A member takes picks only after its first PONG.
      rtt = await Promise.race([this.#firstPing(conn, key), t.failed]);
    } catch (err) {
      this.#dialFailed(a.dial, a.slot, key, t, err);
      return;
    }
    t.warming = false;
    if (t.finished || this.closed) return;
    this.pool.recordRtt(member, rtt);
    this.pool.recordConnected(member, this.clock.wall());
    this.pool.heard(member);
    this.pool.setMaxConcurrent(member, conn.maxConcurrent);
    t.health.start(rtt);
    t.firstRtt = rtt;
    this.#feed({ type: "proven", member: member.id });
  }

  #dialFailed(dial: number, slot: number, key: string, t: Tracked<C> | undefined, err: unknown): void {
    const error = err instanceof DialtoneError ? err : new ConnectError(this.target, key, asError(err).message, { cause: err });
    if (t) {
      t.warming = false;
      this.pool.recordError(t.member, error);
    }
    // Closing, or a cancelled dial, is nobody's failure.
    if (!this.closed && !this.#dials.get(dial)?.signal.aborted) {
      this.#lastError = error;
      this.events.emit({ type: "connect-failed", slot, address: key, error });
    }
    this.#feed({ type: "dial-failed", dial, member: t?.member.id, error });
  }

  async #firstPing(conn: C, key: string): Promise<number> {
    const timeout = this.#o.health.timeout;
    let timer: Timer | undefined;
    try {
      return await Promise.race([
        conn.ping(timeout),
        new Promise<never>((_, reject) => {
          timer = this.clock.setTimeout(() => reject(new ConnectError(this.target, key, `no PONG to the first PING within ${timeout} ms`)), timeout);
        }),
      ]);
    } finally {
      timer?.cancel();
    }
  }

  #track(member: PoolMemberRef<C>, slot: number): Tracked<C> {
    let fail!: (error: Error) => void;
    const failed = new Promise<never>((_, reject) => (fail = reject));
    // Only a warm-up awaits it; later failures must not surface as unhandled.
    failed.catch(() => {});
    const t: Tracked<C> = {
      member,
      slot,
      warming: true,
      firstRtt: undefined,
      connClosed: false,
      finished: false,
      failed,
      fail,
      health: new HealthChecker(member.connection, this.#o.health, (r) => this.#onHealth(t, r), this.#random, this.clock),
    };
    this.#tracked.set(member.id, t);
    return t;
  }

  #onHealth(t: Tracked<C>, r: HealthReport): void {
    const m = t.member;
    if (t.finished || m.state === "closed" || m.state === "draining") return;
    switch (r.type) {
      case "ping-sent":
        this.pool.pingSent(m);
        return;
      case "ping-ok":
        this.pool.recordRtt(m, r.rttEwma);
        this.pool.heard(m);
        this.events.emit({ type: "ping", member: info(m, t.slot), rtt: r.rtt });
        return;
      case "ping-failed":
        this.pool.recordError(m, r.error);
        this.pool.pingLost(m);
        this.events.emit({ type: "ping-failed", member: info(m, t.slot), error: r.error });
        return;
      case "unhealthy":
        this.#feed({ type: "unhealthy", member: m.id, error: r.error });
        return;
      case "healthy":
        this.#feed({ type: "healthy", member: m.id });
        return;
    }
  }

  #onConnectionEvent(t: Tracked<C>, e: ConnectionEvent): void {
    if (t.finished) return;
    const m = t.member;
    switch (e.type) {
      case "closed": {
        t.connClosed = true;
        const error = e.error ?? (m.state === "draining" || this.closed ? undefined : new ConnectError(this.target, m.key, "connection closed by peer"));
        if (t.warming) t.fail(error ?? new ConnectError(this.target, m.key, "closed during warm-up"));
        else this.#feed({ type: "lost", member: m.id, error });
        return;
      }
      case "draining": {
        const error = new DialtoneError("ERR_DIALTONE_DRAINING", `${this.target} (${m.key}): ${e.reason}`);
        if (t.warming) t.fail(new ConnectError(this.target, m.key, e.reason));
        else this.#feed({ type: "goaway", member: m.id, kind: e.kind, detail: e.reason, error });
        return;
      }
      case "limits":
        this.pool.setMaxConcurrent(m, e.maxConcurrent);
        return;
    }
  }

  #drain(t: Tracked<C>, reason: DrainReason, detail: string): void {
    const m = t.member;
    t.health.stop();
    this.pool.setState(m, "draining", detail);
    this.events.emit({ type: "draining", member: info(m, t.slot), reason, detail });
    // It finishes its in-flight streams, then closes; within drainTimeout at the latest.
    m.connection.close(true);
    this.#after(this.#o.drainTimeout, () => {
      if (!t.finished)
        this.#feed({
          type: "lost",
          member: m.id,
          error: new DialtoneError("ERR_DIALTONE_DRAINING", `${this.target} (${m.key}): drain took longer than ${this.#o.drainTimeout} ms`),
        });
    });
  }

  /** Out of the pool for good; destroys the connection unless it is already gone. */
  #finish(t: Tracked<C>, reason: string, error: Error | undefined): void {
    if (t.finished) return;
    t.finished = true;
    t.health.stop();
    const m = t.member;
    if (error) this.pool.recordError(m, error);
    this.pool.setState(m, "closed", reason);
    this.events.emit({ type: "member-removed", member: info(m, t.slot), reason });
    this.#tracked.delete(m.id);
    t.fail(error ?? new ClosedError(`member ${m.key}`));
    // What the streams still open fail with: the channel's close, or the member's loss and why.
    if (!t.connClosed)
      m.connection.close(false, this.closed ? new ClosedError(`channel ${this.target}`) : new MemberLostError(this.target, m.key, reason, { cause: error }));
  }

  /** A timer on the channel's clock that close() cancels if it has not fired. */
  #after(ms: number, fn: () => void): void {
    const timer = this.clock.setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  // ── picks and status ─────────────────────────────────────────────────

  #tryPick(exclude?: readonly object[], now?: number): MemberLease<C> | undefined {
    const m = this.pool.pick(exclude, now);
    if (!m) return undefined;
    this.#outstanding++;
    return new MemberLease(this.#leaseOwner, m);
  }

  #updateStatus(): void {
    const s: ConnectionStatus = this.pool.servingCount > 0 ? "connected" : "disconnected";
    if (s !== this.#status.current && !this.closed) {
      this.#status.set(s);
      this.events.emit({ type: "status", status: s });
    }
  }

  #nextChange(): Promise<void> {
    return new Promise((resolve) => this.#changeWaiters.add(resolve));
  }

  #changed(): void {
    if (this.#changeWaiters.size === 0) return;
    const ws = [...this.#changeWaiters];
    this.#changeWaiters.clear();
    for (const w of ws) w();
  }
}

/** The degraded mode a batch of actions ends in, if it changes it. */
function degradedIn(actions: readonly Action[]): boolean | undefined {
  let mode: boolean | undefined;
  for (const a of actions) if (a.type === "degraded") mode = a.degraded;
  return mode;
}

function info(m: { id: number; key: string }, slot: number | undefined): MemberInfo {
  return { id: m.id, address: m.key, slot: slot ?? -1 };
}

import { setMaxListeners } from "node:events";
import { addressKey } from "../core/address.js";
import { systemClock, type Clock, type Timer } from "../core/clock.js";
import { ClosedError, ConnectError, DialtoneError, MemberLostError, asError } from "../core/errors.js";
import type { ChannelEvent, ConnectionStatus, DrainReason, MemberInfo, MemberState } from "../core/events.js";
import { Listeners } from "../core/listeners.js";
import type { HealthReport } from "../health/health-checker.js";
import { PassiveSuspicion } from "../health/passive.js";
import type { HealthOptions } from "../health/options.js";
import type { OutlierOptions } from "../pool/outlier.js";
import { Pool, type Balancer } from "../pool/pool.js";
import type { Resolver } from "../resolve/resolver.js";
import type { BackoffOptions } from "./backoff.js";
import { ChangeSignal } from "./change-signal.js";
import type { Connector, ConnectionEvent, MemberConnection } from "./connection.js";
import { LeaseSource } from "./lease-source.js";
import { MemberEffects } from "./member-effects.js";
import type { MembersPlan } from "./members-plan.js";
import { Regulator, type Action, type RegulatorEvent } from "./regulator.js";
import { ResolutionWatch } from "./resolution.js";
import { addressStats, memberStats, type MemberStats, type SupervisorStats } from "./stats.js";
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
  /** Where the supervisor reads time and sets its timers (default: the system clock). */
  clock?: Clock;
}

/** A member as a transport sees it: read-only and live. */
export interface MemberView<C> {
  readonly id: number;
  readonly key: string;
  readonly state: MemberState;
  readonly inFlight: number;
  readonly connection: C;
}

/**
 * The supervisor loop: events in (the resolver's answers, dials, health
 * reports, connection events, the pool's outlier reports), the regulator's actions
 * out, and those actions carried out — dials with their first PING, health
 * checkers, drains, evictions, timers. It decides nothing about members
 * itself: their states and degraded mode are the regulator's record, which
 * stats(), members() and every event read. Requests get their members from
 * `leases` (lease-source.ts).
 */
export class Supervisor<C extends MemberConnection> implements AsyncDisposable {
  readonly events = new Listeners<ChannelEvent>();
  readonly target: string;
  /** The channel's one clock: every timer and reading of the time below goes through it. */
  readonly clock: Clock;
  /** The request side: acquire, tryAcquire, ready, the queue and the outstanding cap. */
  readonly leases: LeaseSource<C>;
  #o: SupervisorOptions<C>;
  #random: () => number;
  #reg: Regulator;
  #pool: Pool<C>;
  #abort = new AbortController();
  #effects = new Map<number, MemberEffects<C>>();
  #status = new StatusStream<ConnectionStatus>("disconnected");
  #changes = new ChangeSignal();
  /** Dials in progress, so the regulator can cancel one. */
  #dials = new Map<number, AbortController>();
  #inbox: RegulatorEvent[] = [];
  #feeding = false;
  #wake: Timer | undefined;
  /** Timers that outlive the event that set them (load samples, ejections, drains), cancelled by close(). */
  #timers = new Set<Timer>();
  #nextId = 1;
  #closing: Promise<void> | undefined;
  #resolution: ResolutionWatch;

  constructor(options: SupervisorOptions<C>) {
    this.#o = options;
    this.target = options.target;
    // Every dial listens on this one signal: no cap.
    setMaxListeners(0, this.#abort.signal);
    this.#random = options.random ?? Math.random;
    const clock = (this.clock = options.clock ?? systemClock);
    const members = options.members;
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
      outlier: options.outlier,
    });
    this.#pool = new Pool<C>({
      balancer: options.balancer,
      random: this.#random,
      // The system clock's own arrow keeps the pool's hot-path read a plain call.
      now: clock === systemClock ? systemClock.now : () => clock.now(),
      suspect: new PassiveSuspicion(options.health.suspectAfter),
      outlier: options.outlier,
    });
    const reg = this.#reg;
    const warmUp = {
      get readyCount() {
        return reg.readyCount;
      },
      noAddressReason: () => (reg.book.entries().length === 0 ? this.#resolution.noAddressReason() : undefined),
    };
    this.leases = new LeaseSource<C>(
      {
        target: options.target,
        acquireTimeout: options.acquireTimeout,
        maxQueue: options.maxQueue,
        maxOutstanding: options.maxOutstanding,
        readyTimeout: options.readyTimeout,
        minMembers: members.min,
      },
      this.#pool,
      clock,
      this.events,
      this.#changes,
      warmUp,
    );
    this.#pool.events.add((e) => {
      switch (e.type) {
        case "usable":
          // A member under its stream limit again, say; within a batch of actions, the batch's end serves.
          if (!this.#feeding && e.count > 0) this.leases.serve();
          return;
        case "suspect": {
          const t = this.#effects.get(e.member.id);
          this.events.emit({ type: "suspect", member: info(e.member, t?.slot) });
          // Busy and silent: ask now rather than at the next interval.
          t?.health.probeNow();
          return;
        }
        case "outlier":
          // Every failed outcome past the threshold reports again: only a member not ejected yet is news.
          if (this.#reg.member(e.member.id)?.ejected === false) this.#feed({ type: "outlier", member: e.member.id, reason: e.reason });
          return;
      }
    });
    if (members.max > members.min) {
      // Sampling is an effect, so it lives here; what a sample means is the regulator's call.
      const sample = (): void => {
        this.#sampleLoad();
        if (!this.closed) this.#after(LOAD_SAMPLE_INTERVAL, sample);
      };
      this.#after(LOAD_SAMPLE_INTERVAL, sample);
    }
    this.#resolution = new ResolutionWatch(options.resolver, clock, this.events);
    this.#resolution.start({
      addresses: (addresses) => this.#feed({ type: "addresses", addresses }),
      // A failed lookup (last-good addresses kept) says less than a failed connection.
      failed: (error) => this.leases.noteError(error, true),
    });
  }

  get closed(): boolean {
    return this.#abort.signal.aborted;
  }

  get statusNow(): ConnectionStatus {
    return this.#status.current;
  }

  status(signal?: AbortSignal): AsyncGenerator<ConnectionStatus, void, undefined> {
    return this.#status.watch(signal);
  }

  /**
   * The members now, as read-only live views: what a transport may know of
   * them (to flush every ready one, or find where a subscription lives).
   * The state is the regulator's record ("connecting" until it has one).
   */
  *members(): IterableIterator<MemberView<C>> {
    for (const t of this.#effects.values()) {
      const reg = this.#reg;
      // Getters, not copies: a caller waiting for in-flight work to end must see it end.
      yield {
        id: t.id,
        key: t.key,
        get state(): MemberState {
          return t.finished ? "closed" : (reg.member(t.id)?.state ?? "connecting");
        },
        get inFlight() {
          return t.entry.inFlight;
        },
        connection: t.connection,
      };
    }
  }

  /** One snapshot: member states and degraded mode from the regulator, load from the pool, errors from health checkers. */
  stats(): SupervisorStats {
    const now = this.clock.now();
    const wall = this.clock.wall();
    const members: MemberStats[] = [];
    for (const t of this.#effects.values()) {
      const r = this.#reg.member(t.id);
      const connectedSince = r?.provenAt === undefined ? undefined : wall - (now - r.provenAt);
      members.push(memberStats(t.entry, t.slot, r?.state ?? "connecting", t.health.lastError, connectedSince));
    }
    members.sort((a, b) => a.slot - b.slot || a.id - b.id);
    return {
      target: this.target,
      status: this.#status.current,
      wanted: this.#reg.wanted,
      ready: this.#reg.readyCount,
      usable: this.#pool.usableCount,
      degraded: this.#reg.degraded,
      queued: this.leases.queued,
      addresses: addressStats(this.#reg.book.entries(), now),
      members,
      resolution: this.#resolution.stats(),
      lastError: this.leases.lastError?.message,
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
    this.#cancelTimers();
    this.#resolution.close();
    this.leases.close(closed);
    for (const t of this.#effects.values()) {
      t.health.stop();
      t.connection.close(true);
    }
    this.#changes.fire();
    const deadline = this.clock.now() + this.#o.closeGrace;
    while (this.#effects.size > 0 && this.clock.now() < deadline) {
      let tick: Timer | undefined;
      await Promise.race([
        this.#changes.next(),
        new Promise<void>((resolve) => (tick = this.clock.setTimeout(resolve, Math.min(50, deadline - this.clock.now())))),
      ]);
      tick?.cancel();
    }
    for (const t of [...this.#effects.values()]) {
      this.leases.cut(t.entry);
      // The regulator forgets it (closing: no blame) and asks for it to be closed.
      this.#feed({ type: "lost", member: t.id, error: undefined });
    }
    // Drains begun during the grace period set timers of their own: none outlives close().
    this.#cancelTimers();
    this.#status.end("disconnected");
  }

  #cancelTimers(): void {
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
  }

  // ── the loop: events in, actions out ───────────────────────────────

  /** Feeds one event; events raised while actions run are queued, so the regulator never re-enters. */
  #feed(event: RegulatorEvent): void {
    this.#inbox.push(event);
    if (this.#feeding) return;
    this.#feeding = true;
    try {
      for (let e = this.#inbox.shift(); e; e = this.#inbox.shift()) {
        for (const a of this.#reg.accept(e, this.clock.now())) this.#do(a);
      }
    } finally {
      this.#feeding = false;
    }
    this.#afterBatch();
    this.#changes.fire();
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
        const t = this.#effects.get(a.member);
        if (!t) return;
        this.events.emit({ type: "state", member: info(t, t.slot), from: a.from, to: a.to, reason: a.reason });
        // Proven: said before anything the regulator does next (a second dial on this address, a drain).
        if (a.from === "connecting" && t.entry.rtt !== undefined) this.events.emit({ type: "connect-ok", member: info(t, t.slot), rtt: t.entry.rtt });
        return;
      }
      case "pickable": {
        const t = this.#effects.get(a.member);
        if (t) this.#pool.setPickable(t.entry, a.pickable);
        return;
      }
      case "eject": {
        const t = this.#effects.get(a.member);
        if (!t) return;
        this.events.emit({ type: "ejected", member: info(t, t.slot), reason: a.reason, durationMs: a.durationMs });
        // The regulator has no timers: the supervisor ends the ejection. Unref'd (the clock's timers are).
        this.#after(a.durationMs, () => this.#feed({ type: "ejection-ended", member: a.member }));
        return;
      }
      case "ejection-ended": {
        const t = this.#effects.get(a.member);
        if (!t) return;
        this.#pool.resetOutcomes(t.entry);
        this.events.emit({ type: "ejection-ended", member: info(t, t.slot) });
        return;
      }
      case "evict": {
        const t = this.#effects.get(a.member);
        if (!t) return;
        if (a.reason === "peer-closed") this.leases.noteError(a.error);
        this.events.emit({ type: "evicted", member: info(t, t.slot), reason: a.reason, detail: a.detail });
        // A member evicted when degraded mode ends keeps the PING failure that made it unhealthy.
        this.#finish(t, a.from, a.detail, a.reason === "unhealthy" ? (t.health.lastError ?? a.error) : a.error);
        return;
      }
      case "drain": {
        const t = this.#effects.get(a.member);
        if (t) this.#drain(t, a.from, a.reason, a.detail);
        return;
      }
      case "close": {
        const t = this.#effects.get(a.member);
        if (t) this.#finish(t, a.from, a.reason, a.error);
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
        this.#resolution.refresh();
        return;
      case "gave-up":
        this.leases.noteError(a.error);
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
    for (const r of this.#reg.members()) {
      const m = r.state === "ready" ? this.#effects.get(r.id)?.entry : undefined;
      if (!m) continue;
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
    const entry = this.#pool.admit(this.#nextId++, key, conn);
    const t = new MemberEffects(entry, a.slot, this.#o.health, (r) => this.#onHealth(t, r), this.#random, this.clock);
    this.#effects.set(t.id, t);
    this.events.emit({ type: "member-added", member: info(t, a.slot) });
    conn.onEvent((e) => this.#onConnectionEvent(t, e));
    this.#feed({ type: "connected", dial: a.dial, member: t.id });
    if (t.finished) return;
    let rtt: number;
    try {
      // A member takes picks only after its first PONG.
      const timeout = this.#o.health.timeout;
      rtt = await t.firstPing(timeout, this.clock, () => new ConnectError(this.target, key, `no PONG to the first PING within ${timeout} ms`));
    } catch (err) {
      this.#dialFailed(a.dial, a.slot, key, t, err);
      return;
    }
    t.warming = false;
    if (t.finished || this.closed) return;
    this.#pool.recordRtt(entry, rtt);
    this.#pool.heard(entry);
    this.#pool.setMaxConcurrent(entry, conn.maxConcurrent);
    t.health.start(rtt);
    this.#feed({ type: "proven", member: t.id });
  }

  #dialFailed(dial: number, slot: number, key: string, t: MemberEffects<C> | undefined, err: unknown): void {
    const error = err instanceof DialtoneError ? err : new ConnectError(this.target, key, asError(err).message, { cause: err });
    if (t) t.warming = false;
    // Closing, or a cancelled dial, is nobody's failure.
    if (!this.closed && !this.#dials.get(dial)?.signal.aborted) {
      this.leases.noteError(error);
      this.events.emit({ type: "connect-failed", slot, address: key, error });
    }
    this.#feed({ type: "dial-failed", dial, member: t?.id, error });
  }

  #onHealth(t: MemberEffects<C>, r: HealthReport): void {
    const state = this.#reg.member(t.id)?.state;
    if (t.finished || state === undefined || state === "draining") return;
    switch (r.type) {
      case "ping-sent":
        this.#pool.pingSent(t.entry);
        return;
      case "ping-ok":
        this.#pool.recordRtt(t.entry, r.rttEwma);
        this.#pool.heard(t.entry);
        this.events.emit({ type: "ping", member: info(t, t.slot), rtt: r.rtt });
        return;
      case "ping-failed":
        this.#pool.pingLost(t.entry);
        this.events.emit({ type: "ping-failed", member: info(t, t.slot), error: r.error });
        return;
      case "unhealthy":
        this.#feed({ type: "unhealthy", member: t.id, error: r.error });
        return;
      case "healthy":
        this.#feed({ type: "healthy", member: t.id });
        return;
    }
  }

  #onConnectionEvent(t: MemberEffects<C>, e: ConnectionEvent): void {
    if (t.finished) return;
    switch (e.type) {
      case "closed": {
        t.connClosed = true;
        const draining = this.#reg.member(t.id)?.state === "draining";
        const error = e.error ?? (draining || this.closed ? undefined : new ConnectError(this.target, t.key, "connection closed by peer"));
        if (t.warming) t.fail(error ?? new ConnectError(this.target, t.key, "closed during warm-up"));
        else this.#feed({ type: "lost", member: t.id, error });
        return;
      }
      case "draining": {
        const error = new DialtoneError("ERR_DIALTONE_DRAINING", `${this.target} (${t.key}): ${e.reason}`);
        if (t.warming) t.fail(new ConnectError(this.target, t.key, e.reason));
        else this.#feed({ type: "goaway", member: t.id, kind: e.kind, detail: e.reason, error });
        return;
      }
      case "limits":
        this.#pool.setMaxConcurrent(t.entry, e.maxConcurrent);
        return;
    }
  }

  /** The regulator has already taken it out of picks; it finishes its in-flight streams, then closes (within drainTimeout). */
  #drain(t: MemberEffects<C>, from: MemberState, reason: DrainReason, detail: string): void {
    t.health.stop();
    this.events.emit({ type: "state", member: info(t, t.slot), from, to: "draining", reason: detail });
    this.events.emit({ type: "draining", member: info(t, t.slot), reason, detail });
    t.connection.close(true);
    this.#after(this.#o.drainTimeout, () => {
      if (!t.finished)
        this.#feed({
          type: "lost",
          member: t.id,
          error: new DialtoneError("ERR_DIALTONE_DRAINING", `${this.target} (${t.key}): drain took longer than ${this.#o.drainTimeout} ms`),
        });
    });
  }

  /** Out of the pool for good; destroys the connection unless it is already gone. */
  #finish(t: MemberEffects<C>, from: MemberState, reason: string, error: Error | undefined): void {
    if (t.finished) return;
    t.finished = true;
    t.health.stop();
    this.#pool.remove(t.entry);
    this.events.emit({ type: "state", member: info(t, t.slot), from, to: "closed", reason });
    this.events.emit({ type: "member-removed", member: info(t, t.slot), reason });
    this.#effects.delete(t.id);
    t.fail(error ?? new ClosedError(`member ${t.key}`));
    // What the streams still open fail with: the channel's close, or the member's loss and why.
    if (!t.connClosed)
      t.connection.close(false, this.closed ? new ClosedError(`channel ${this.target}`) : new MemberLostError(this.target, t.key, reason, { cause: error }));
  }

  /** A timer on the channel's clock that close() cancels if it has not fired. */
  #after(ms: number, fn: () => void): void {
    const timer = this.clock.setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  // ── status ───────────────────────────────────────────────────────────

  /** After a batch of actions: members may have become usable (serve the queue), or the last one stopped serving. */
  #afterBatch(): void {
    if (this.#pool.usableCount > 0) this.leases.serve();
    const s: ConnectionStatus = this.#reg.serving ? "connected" : "disconnected";
    if (s !== this.#status.current && !this.closed) {
      this.#status.set(s);
      this.events.emit({ type: "status", status: s });
    }
  }
}

function info(m: { id: number; key: string }, slot: number | undefined): MemberInfo {
  return { id: m.id, address: m.key, slot: slot ?? -1 };
}

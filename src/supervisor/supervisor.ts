import { setMaxListeners } from "node:events";
import { addressKey, type Address } from "../core/address.js";
import { raceSignal, sleep } from "../core/abort.js";
import { ClosedError, ConnectError, DialtoneError, NoMemberError, NotReadyError, QueueFullError, asError } from "../core/errors.js";
import type { ChannelEvent, ConnectionStatus, DrainReason, MemberInfo, MemberState } from "../core/events.js";
import { Listeners } from "../core/listeners.js";
import { shuffle } from "../core/shuffle.js";
import { HealthChecker, type HealthReport } from "../health/health-checker.js";
import type { HealthOptions } from "../health/options.js";
import { PoolMember } from "../pool/member.js";
import { Pool, type Balancer } from "../pool/pool.js";
import type { Resolver } from "../resolve/resolver.js";
import { AcquireQueue } from "./acquire-queue.js";
import { baseDelay, jitterExtra, type BackoffOptions } from "./backoff.js";
import type { Connector, ConnectionEvent, MemberConnection } from "./connection.js";
import { Reconnect } from "./reconnect.js";
import { chooseAddress, type AddressLoad } from "./spread.js";
import { StatusStream } from "./status-stream.js";

export interface SupervisorOptions<C extends MemberConnection> {
  /** The service as users name it; every error message carries it. */
  target: string;
  resolver: Resolver;
  connector: Connector<C>;
  members: number;
  health: HealthOptions;
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
  random?: () => number;
}

/** A picked member; release it exactly once when the request ends. */
export interface Lease<C> {
  readonly member: PoolMember<C>;
  readonly connection: C;
  release(latencyMs?: number): void;
}

interface AddressState {
  address: Address;
  rank: number;
  failures: number;
  coolingUntil: number;
  lastError: Error | undefined;
}

interface Tracked {
  slot: number;
  health: HealthChecker;
  /** Settles when the member stops being its slot's active member (draining or closed). */
  gone: Promise<Error | undefined>;
  leave(reason: Error | undefined): void;
  left: boolean;
}

export interface MemberStats {
  id: number;
  slot: number;
  address: string;
  state: MemberState;
  rttMs: number | undefined;
  inFlight: number;
  maxConcurrent: number | null;
  lastError: string | undefined;
  connectedSince: string | undefined;
}

export interface SupervisorStats {
  target: string;
  status: ConnectionStatus;
  wanted: number;
  ready: number;
  usable: number;
  degraded: boolean;
  queued: number;
  addresses: Array<{ address: string; failures: number; coolingForMs: number; lastError: string | undefined }>;
  members: MemberStats[];
  /** Where addresses come from and how fresh they are. */
  resolution: {
    target: string;
    resolvedAt: string | undefined;
    ttlMs: number | null;
    nextRefreshInMs: number | null;
    lastError: string | undefined;
  };
  lastError: string | undefined;
}

/**
 * Keeps `members` connections warm. Each slot is a Reconnect handle whose
 * connect step picks an address by the Spread rule, dials it, and proves it
 * with a first PING; the slot then waits until its member is lost (closed,
 * evicted, draining) and dials a replacement at once. Health reports move
 * members between ready and unhealthy; the pool decides who takes picks.
 */
export class Supervisor<C extends MemberConnection> implements AsyncDisposable {
  readonly events = new Listeners<ChannelEvent>();
  readonly pool: Pool<C>;
  readonly target: string;
  #o: SupervisorOptions<C>;
  #random: () => number;
  #abort = new AbortController();
  #addresses = new Map<string, AddressState>();
  /** Dials in progress: slot number, or -1 - slot for a rebalancing dial. */
  #dialing = new Map<number, string>();
  #handoff = new Map<number, PoolMember<C>>();
  #rebalancing = false;
  #rebalanceTimer: NodeJS.Timeout | undefined;
  #rebalanceQueued = false;
  #tracked = new Map<PoolMember<C>, Tracked>();
  #slots: Array<Reconnect<PoolMember<C>>> = [];
  #queue: AcquireQueue<Lease<C>>;
  #status = new StatusStream<ConnectionStatus>("disconnected");
  #changeWaiters = new Set<() => void>();
  #nextId = 1;
  #lastError: Error | undefined;
  #closing: Promise<void> | undefined;
  #resolution: { at: number | undefined; ttl: number | undefined; error: Error | undefined } | undefined;

  constructor(options: SupervisorOptions<C>) {
    this.#o = options;
    this.target = options.target;
    // Every slot (its Reconnect, p-retry, address waits) listens on this one signal: no cap.
    setMaxListeners(0, this.#abort.signal);
    this.#random = options.random ?? Math.random;
    this.#queue = new AcquireQueue(options.maxQueue);
    this.pool = new Pool<C>({ criticalMin: options.criticalMin, balancer: options.balancer, random: this.#random, suspectAfter: options.health.suspectAfter });
    this.pool.events.add((e) => {
      if (e.type === "state") {
        this.events.emit({ type: "state", member: info(e.member, this.#tracked.get(e.member as PoolMember<C>)), from: e.from, to: e.to, reason: e.reason });
        this.#changed();
      } else if (e.type === "degraded") {
        this.events.emit({ type: "degraded", degraded: e.degraded, healthy: e.healthy });
        // Leaving degraded mode: the unhealthy members that served meanwhile are now evicted.
        if (!e.degraded) queueMicrotask(() => this.#evictUnhealthy());
      } else if (e.type === "usable" && e.count > 0) {
        this.#queue.serve(() => this.#tryPick());
      } else if (e.type === "suspect") {
        const m = e.member as PoolMember<C>;
        const t = this.#tracked.get(m);
        this.events.emit({ type: "suspect", member: info(m, t) });
        // Busy and silent: ask now rather than at the next interval.
        t?.health.probeNow();
        return;
      }
      this.#updateStatus();
    });
    options.resolver.start({
      onAddresses: (set) => this.#onAddresses(set.addresses, set.ttl),
      onError: (error) => {
        this.#lastError ??= error;
        if (this.#resolution) this.#resolution.error = error;
        else this.#resolution = { at: undefined, ttl: undefined, error };
        this.events.emit({ type: "resolve-failed", error });
      },
    });
    for (let slot = 0; slot < options.members; slot++) this.#slots.push(this.#startSlot(slot));
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
   * closes first, when `signal` aborts, or (with no signal) after
   * readyTimeout with a NotReadyError naming how far it got and why.
   */
  async ready(signal?: AbortSignal): Promise<void> {
    // Backoff timers are unref'd; someone awaiting ready() must still keep the process alive.
    const keepAlive = setInterval(() => {}, 60_000);
    const started = performance.now();
    const own = signal ? undefined : AbortSignal.timeout(this.#o.readyTimeout);
    try {
      while (this.pool.readyCount < this.#o.members) {
        if (this.closed) throw new ClosedError(`channel ${this.target}`);
        await raceSignal(this.#nextChange(), signal ?? own);
      }
    } catch (err) {
      if (own?.aborted) {
        throw new NotReadyError(this.target, this.pool.readyCount, this.#o.members, Math.round(performance.now() - started), this.#lastError);
      }
      throw err;
    } finally {
      clearInterval(keepAlive);
    }
  }

  /**
   * A usable member, picked by P2C; waits (bounded queue, acquireTimeout)
   * when there is none, then fails with NoMemberError naming the last cause.
   */
  acquire(signal?: AbortSignal, timeoutMs = this.#o.acquireTimeout): Promise<Lease<C>> {
    if (this.closed) return Promise.reject(new ClosedError(`channel ${this.target}`));
    const lease = this.#tryPick();
    if (lease) return Promise.resolve(lease);
    return this.#queue.wait(
      timeoutMs,
      signal,
      () => new NoMemberError(this.target, timeoutMs, this.#lastError),
      () => new QueueFullError(this.target, this.#o.maxQueue, this.#lastError),
    );
  }

  /** Records a request-level failure as the channel's most recent error. */
  noteError(error: Error): void {
    this.#lastError = error;
  }

  stats(): SupervisorStats {
    const now = performance.now();
    const members: MemberStats[] = [];
    for (const m of this.pool.members()) {
      const t = this.#tracked.get(m);
      members.push({
        id: m.id,
        slot: t?.slot ?? -1,
        address: m.key,
        state: m.state,
        rttMs: m.rtt === undefined ? undefined : Math.round(m.rtt * 1000) / 1000,
        inFlight: m.inFlight,
        maxConcurrent: Number.isFinite(m.maxConcurrent) ? m.maxConcurrent : null,
        lastError: m.lastError?.message,
        connectedSince: m.connectedSince === undefined ? undefined : new Date(m.connectedSince).toISOString(),
      });
    }
    members.sort((a, b) => a.slot - b.slot || a.id - b.id);
    return {
      target: this.target,
      status: this.#status.current,
      wanted: this.#o.members,
      ready: this.pool.readyCount,
      usable: this.pool.usableCount,
      degraded: this.pool.degraded,
      queued: this.#queue.length,
      addresses: [...this.#addresses.entries()].map(([key, s]) => ({
        address: key,
        failures: s.failures,
        coolingForMs: Math.max(0, Math.round(s.coolingUntil - now)),
        lastError: s.lastError?.message,
      })),
      members,
      resolution: this.#resolutionStats(),
      lastError: this.#lastError?.message,
    };
  }

  #resolutionStats(): SupervisorStats["resolution"] {
    const r = this.#resolution;
    const finite = r?.ttl !== undefined && Number.isFinite(r.ttl);
    return {
      target: this.#o.resolver.target,
      resolvedAt: r?.at === undefined ? undefined : new Date(r.at).toISOString(),
      ttlMs: finite ? (r?.ttl as number) : null,
      nextRefreshInMs: finite && r?.at !== undefined ? Math.max(0, r.at + (r.ttl as number) - Date.now()) : null,
      lastError: r?.error?.message,
    };
  }

  /**
   * Stops dialing, fails queued requests, lets in-flight requests finish for
   * up to closeGrace ms, then destroys what is left.
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
    this.#abort.abort(closed);
    clearTimeout(this.#rebalanceTimer);
    this.#o.resolver.close();
    this.#queue.rejectAll(closed);
    this.#changed();
    // Slots stop dialing; their dispose() closes each live member gracefully.
    await Promise.all(this.#slots.map((s) => s.close()));
    const remaining = [...this.pool.members()];
    for (const m of remaining) m.connection.close(true);
    const deadline = performance.now() + this.#o.closeGrace;
    while (this.pool.size > 0 && performance.now() < deadline) {
      await Promise.race([this.#nextChange(), sleep(50)]);
    }
    for (const m of [...this.pool.members()]) this.#closeMember(m, "channel closed", undefined, false);
    this.#status.end("disconnected");
  }

  // ── slots ────────────────────────────────────────────────────────────

  #startSlot(slot: number): Reconnect<PoolMember<C>> {
    const r = new Reconnect<PoolMember<C>>({
      name: `${this.target} slot ${slot}`,
      backoff: this.#o.backoff,
      // An idle channel must not keep the process alive.
      unref: true,
      signal: this.#abort.signal,
      connect: ({ signal, attempt }) => this.#dialSlot(slot, attempt, signal),
      lost: (m) => this.#tracked.get(m)?.gone ?? Promise.resolve(undefined),
      dispose: (m) => {
        m.connection.close(true);
      },
    });
    r.closed().catch((err: unknown) => {
      // Only with a finite slot backoff timeout: the slot stops, the others go on.
      this.#lastError = asError(err);
      this.events.emit({ type: "gave-up", slot, error: this.#lastError });
    });
    return r;
  }

  async #dialSlot(slot: number, attempt: number, signal: AbortSignal): Promise<PoolMember<C>> {
    // A member the rebalancer already proved on a better address takes over the slot.
    const handed = this.#handoff.get(slot);
    this.#handoff.delete(slot);
    if (handed && (handed.state === "ready" || handed.state === "unhealthy")) return handed;
    const address = await this.#claimAddress(slot, signal);
    return this.#dialAddress(slot, slot, address, attempt, signal);
  }

  /** Dials, then proves with a first PING; `token` is this dial's entry in #dialing. */
  async #dialAddress(slot: number, token: number, address: Address, attempt: number, signal: AbortSignal): Promise<PoolMember<C>> {
    const key = addressKey(address);
    this.#dialing.set(token, key);
    this.events.emit({ type: "connect-attempt", slot, address: key, attempt });
    let member: PoolMember<C> | undefined;
    let rtt: number;
    try {
      const conn = await this.#o.connector.connect(address, signal);
      member = new PoolMember<C>(this.#nextId++, address, key, conn);
      this.#track(member, slot);
      this.pool.add(member);
      this.events.emit({ type: "member-added", member: info(member, this.#tracked.get(member)) });
      // From here the connecting member stands for this dial in the Spread counts.
      this.#dialing.delete(token);
      const m = member;
      conn.onEvent((e) => this.#onConnectionEvent(m, e));
      // A member takes picks only after its first PONG.
      rtt = await this.#firstPing(conn, key);
      if (member.state !== "connecting") throw member.lastError ?? new ConnectError(this.target, key, "closed during warm-up");
    } catch (err) {
      const error = err instanceof DialtoneError ? err : new ConnectError(this.target, key, asError(err).message, { cause: err });
      if (member) this.#closeMember(member, "warm-up failed", error, false);
      this.#addressFailed(key, error);
      this.#lastError = error;
      this.events.emit({ type: "connect-failed", slot, address: key, error });
      throw error;
    } finally {
      this.#dialing.delete(token);
      this.#changed();
    }
    member.rtt = rtt;
    member.connectedSince = Date.now();
    this.pool.heard(member);
    this.pool.setMaxConcurrent(member, member.connection.maxConcurrent);
    this.#addressOk(key);
    const t = this.#tracked.get(member) as Tracked;
    t.health.start(rtt);
    this.pool.setState(member, "ready", "first PONG");
    this.events.emit({ type: "connect-ok", member: info(member, t), rtt });
    return member;
  }

  /**
   * Spread repair. When one address carries at least two members more than
   * another (a member was lost and its slot stacked elsewhere), dial the idle
   * address first and, once that member has answered a PING, hand it the
   * stacked member's slot and drain the stacked one. Capacity never dips, and
   * a still-dead address only costs a dial, with its own backoff.
   */
  #maybeRebalance(): void {
    if (this.closed || this.#rebalancing || this.pool.degraded) return;
    const loads = this.#loads();
    let donor: AddressLoad | undefined;
    for (const l of loads) if (l.members >= 2 && !l.proving && (!donor || l.members > donor.members)) donor = l;
    if (!donor) return;
    const now = performance.now();
    let target: AddressLoad | undefined;
    let earliest = Number.POSITIVE_INFINITY;
    for (const l of loads) {
      // Only a move that leaves the spread more even: donor minus target at least two.
      if (l.proving || donor.members - l.members < 2) continue;
      if (l.coolingUntil > now) {
        earliest = Math.min(earliest, l.coolingUntil);
        continue;
      }
      if (!target || l.members < target.members) target = l;
    }
    if (!target) {
      if (Number.isFinite(earliest)) this.#wakeRebalanceAt(earliest - now);
      return;
    }
    const donorKey = addressKey(donor.address);
    let victim: PoolMember<C> | undefined;
    for (const m of this.pool.members()) if (m.key === donorKey && m.state === "ready" && (!victim || m.inFlight < victim.inFlight)) victim = m;
    const vt = victim && this.#tracked.get(victim);
    if (!victim || !vt) return;
    const old = victim;
    const slot = vt.slot;
    this.#rebalancing = true;
    this.#dialAddress(slot, -1 - slot, target.address, 0, this.#abort.signal).then(
      (fresh) => {
        const still = this.#tracked.get(old);
        if (still && !still.left && old.state === "ready") {
          this.#handoff.set(slot, fresh);
          this.#drain(old, "rebalanced", `rebalanced to ${fresh.key}`);
        } else {
          // The slot moved on meanwhile; this member is surplus.
          this.#closeMember(fresh, "rebalance no longer needed", undefined, false);
        }
      },
      () => {
        // Already recorded as a connect failure; the address cools and is tried again later.
      },
    ).finally(() => {
      this.#rebalancing = false;
      this.#changed();
    });
  }

  #wakeRebalanceAt(ms: number): void {
    if (this.#rebalanceTimer) return;
    this.#rebalanceTimer = setTimeout(() => {
      this.#rebalanceTimer = undefined;
      this.#maybeRebalance();
    }, Math.max(1, ms));
    this.#rebalanceTimer.unref();
  }

  async #firstPing(conn: C, key: string): Promise<number> {
    const timeout = this.#o.health.timeout;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        conn.ping(timeout),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new ConnectError(this.target, key, `no PONG to the first PING within ${timeout} ms`)), timeout);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until the Spread rule names an address for this slot, and claims it. */
  async #claimAddress(slot: number, signal: AbortSignal): Promise<Address> {
    while (true) {
      if (signal.aborted) throw signal.reason;
      const now = performance.now();
      const decision = chooseAddress(this.#loads(), now);
      if (decision.kind === "dial") {
        // Claimed in the same tick as chosen, so concurrent slots see it.
        this.#dialing.set(slot, addressKey(decision.address));
        return decision.address;
      }
      const change = this.#nextChange();
      const waits: Array<Promise<unknown>> = [change];
      if (decision.until !== undefined) waits.push(sleep(Math.max(1, decision.until - now), signal));
      await raceSignal(Promise.race(waits), signal);
    }
  }

  #loads(): AddressLoad[] {
    const count = new Map<string, { members: number; proving: boolean }>();
    const bump = (key: string, proving: boolean): void => {
      const c = count.get(key) ?? { members: 0, proving: false };
      c.members++;
      c.proving ||= proving;
      count.set(key, c);
    };
    for (const key of this.#dialing.values()) bump(key, true);
    for (const m of this.pool.members()) {
      if (m.state === "connecting") bump(m.key, true);
      else if (m.state === "ready" || m.state === "unhealthy") bump(m.key, false);
    }
    return [...this.#addresses.entries()]
      .sort((a, b) => a[1].rank - b[1].rank)
      .map(([key, s]) => ({
        address: s.address,
        members: count.get(key)?.members ?? 0,
        proving: count.get(key)?.proving ?? false,
        coolingUntil: s.coolingUntil,
      }));
  }

  #addressFailed(key: string, error: Error): void {
    const s = this.#addresses.get(key);
    if (!s) return;
    s.failures++;
    s.lastError = error;
    const base = baseDelay(this.#o.backoff, s.failures);
    s.coolingUntil = performance.now() + base + jitterExtra(this.#o.backoff, base, this.#random);
    this.#changed();
  }

  #addressOk(key: string): void {
    const s = this.#addresses.get(key);
    if (!s) return;
    s.failures = 0;
    s.coolingUntil = 0;
  }

  #onAddresses(addresses: readonly Address[], ttl: number): void {
    if (this.closed) return;
    this.#resolution = { at: Date.now(), ttl, error: undefined };
    const keys = new Set(addresses.map(addressKey));
    if (keys.size === 0) {
      // NXDOMAIN or an empty answer never empties a live channel on its own: members keep
      // serving until they fail health, and nobody dials those addresses any more.
      this.#addresses.clear();
      this.events.emit({ type: "resolve", addresses: [], ttl });
      this.#changed();
      return;
    }
    // New addresses get a random rank: the per-process shuffle that spreads many clients.
    const fresh = shuffle(addresses.filter((a) => !this.#addresses.has(addressKey(a))), this.#random);
    let rank = Math.max(0, ...[...this.#addresses.values()].map((s) => s.rank + 1));
    for (const a of fresh) this.#addresses.set(addressKey(a), { address: a, rank: rank++, failures: 0, coolingUntil: 0, lastError: undefined });
    for (const key of [...this.#addresses.keys()]) if (!keys.has(key)) this.#addresses.delete(key);
    // Members on vanished addresses drain: in-flight work finishes, their slots dial elsewhere.
    for (const m of [...this.pool.members()]) {
      if (!keys.has(m.key) && (m.state === "ready" || m.state === "unhealthy" || m.state === "connecting")) {
        this.#drain(m, "address-removed", "address removed by resolver");
      }
    }
    this.events.emit({ type: "resolve", addresses: [...keys], ttl });
    this.#changed();
  }

  // ── members ──────────────────────────────────────────────────────────

  #track(member: PoolMember<C>, slot: number): void {
    let leave!: (reason: Error | undefined) => void;
    const gone = new Promise<Error | undefined>((resolve) => (leave = resolve));
    const t: Tracked = {
      slot,
      gone,
      left: false,
      leave: (reason) => {
        if (t.left) return;
        t.left = true;
        leave(reason);
      },
      health: new HealthChecker(member.connection, this.#o.health, (r) => this.#onHealth(member, r), this.#random),
    };
    this.#tracked.set(member, t);
  }

  #onHealth(m: PoolMember<C>, r: HealthReport): void {
    const t = this.#tracked.get(m);
    if (!t || m.state === "closed" || m.state === "draining") return;
    switch (r.type) {
      case "ping-ok":
        m.rtt = r.rttEwma;
        this.pool.heard(m);
        this.events.emit({ type: "ping", member: info(m, t), rtt: r.rtt });
        break;
      case "ping-failed":
        m.lastError = r.error;
        this.events.emit({ type: "ping-failed", member: info(m, t), error: r.error });
        break;
      case "unhealthy":
        this.pool.setState(m, "unhealthy", r.error.message);
        // Degraded mode keeps doubtful members rather than none.
        if (!this.pool.degraded) this.#evict(m, "unhealthy: " + r.error.message);
        break;
      case "healthy":
        this.pool.setState(m, "ready", "PINGs answered again");
        break;
    }
  }

  #evictUnhealthy(): void {
    if (this.pool.degraded) return;
    for (const m of [...this.pool.members()]) if (m.state === "unhealthy") this.#evict(m, "unhealthy after degraded mode ended");
  }

  #evict(m: PoolMember<C>, detail: string): void {
    const t = this.#tracked.get(m);
    const error = m.lastError ?? new DialtoneError("ERR_DIALTONE_UNHEALTHY", detail);
    this.events.emit({ type: "evicted", member: info(m, t), reason: "unhealthy", detail });
    this.#addressFailed(m.key, error);
    this.#closeMember(m, detail, error, false);
  }

  #drain(m: PoolMember<C>, reason: DrainReason, detail: string): void {
    const t = this.#tracked.get(m);
    t?.health.stop();
    this.pool.setState(m, "draining", detail);
    this.events.emit({ type: "draining", member: info(m, t), reason, detail });
    // The slot dials a replacement now; this one finishes its in-flight streams, then closes,
    // within drainTimeout at the latest.
    t?.leave(undefined);
    m.connection.close(true);
    setTimeout(() => {
      if (m.state === "draining") this.#closeMember(m, `drain took longer than ${this.#o.drainTimeout} ms`, undefined, false);
    }, this.#o.drainTimeout).unref();
  }

  #closeMember(m: PoolMember<C>, reason: string, error: Error | undefined, alreadyClosed: boolean): void {
    const t = this.#tracked.get(m);
    t?.health.stop();
    if (error) m.lastError = error;
    const wasClosed = m.state === "closed";
    this.pool.setState(m, "closed", reason);
    if (!wasClosed) this.events.emit({ type: "member-removed", member: info(m, t), reason });
    this.#tracked.delete(m);
    t?.leave(error);
    if (!alreadyClosed) m.connection.close(false);
  }

  #onConnectionEvent(m: PoolMember<C>, e: ConnectionEvent): void {
    if (m.state === "closed") return;
    switch (e.type) {
      case "closed": {
        const unexpected = m.state !== "draining";
        const error = e.error ?? (unexpected ? new ConnectError(this.target, m.key, "connection closed by peer") : undefined);
        if (unexpected && error) {
          this.#addressFailed(m.key, error);
          this.#lastError = error;
          if (m.state !== "connecting") this.events.emit({ type: "evicted", member: info(m, this.#tracked.get(m)), reason: "peer-closed", detail: error.message });
        }
        this.#closeMember(m, error ? error.message : "closed after draining", error, true);
        break;
      }
      case "draining":
        if (m.state === "connecting") {
          this.#closeMember(m, e.reason, new ConnectError(this.target, m.key, e.reason), false);
        } else if (m.state !== "draining") {
          this.#addressFailed(m.key, new DialtoneError("ERR_DIALTONE_DRAINING", `${this.target} (${m.key}): ${e.reason}`));
          this.#drain(m, e.kind, e.reason);
        }
        break;
      case "limits":
        this.pool.setMaxConcurrent(m, e.maxConcurrent);
        break;
    }
  }

  // ── picks and status ─────────────────────────────────────────────────

  #tryPick(): Lease<C> | undefined {
    const m = this.pool.pick();
    if (!m) return undefined;
    let released = false;
    return {
      member: m,
      connection: m.connection,
      release: (latencyMs?: number) => {
        if (released) return;
        released = true;
        this.pool.release(m, latencyMs);
      },
    };
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
    if (!this.#rebalanceQueued && !this.closed) {
      this.#rebalanceQueued = true;
      queueMicrotask(() => {
        this.#rebalanceQueued = false;
        this.#maybeRebalance();
      });
    }
    if (this.#changeWaiters.size === 0) return;
    const ws = [...this.#changeWaiters];
    this.#changeWaiters.clear();
    for (const w of ws) w();
  }
}

function info(m: { id: number; key: string }, t: { slot: number } | undefined): MemberInfo {
  return { id: m.id, address: m.key, slot: t?.slot ?? -1 };
}

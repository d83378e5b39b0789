import { addressKey, type Address } from "../core/address.js";
import { DialtoneError, GaveUpError } from "../core/errors.js";
import type { DrainReason, EjectionReason, EvictionReason, MemberState } from "../core/events.js";
import type { OutlierOptions } from "../pool/outlier.js";
import { ejectionTime, mayEject } from "./ejection.js";
import { AddressBook, type AddressEntry, type AddressUse } from "./address-book.js";
import { LoadFollower } from "./load-follower.js";
import type { BackoffOptions } from "./backoff.js";
import type { MembersPlan } from "./members-plan.js";

/** What the supervisor tells the regulator. Member ids are the supervisor's; dial ids are the regulator's. */
export type RegulatorEvent =
  | { type: "addresses"; addresses: readonly Address[] }
  /** A dial produced a connection; it is a member now, still proving itself. */
  | { type: "connected"; dial: number; member: number }
  /** The member answered its first PING. */
  | { type: "proven"; member: number }
  /** The dial, or the member's first PING, failed (`member` when a connection existed). */
  | { type: "dial-failed"; dial: number; member: number | undefined; error: Error }
  | { type: "unhealthy"; member: number; error: Error }
  | { type: "healthy"; member: number }
  /** The peer asked us to stop sending new work (GOAWAY, lame duck). */
  | { type: "goaway"; member: number; kind: "goaway" | "lame-duck"; detail: string; error: Error }
  /** The connection is gone (`error` when it did not close on our request). */
  | { type: "lost"; member: number; error: Error | undefined }
  /** The member's request outcomes ran past an outlier detector's threshold (the pool counts them). */
  | { type: "outlier"; member: number; reason: EjectionReason }
  /** The member's ejection time (an `eject` action's) is up. */
  | { type: "ejection-ended"; member: number }
  /** A time the regulator asked for has come. */
  | { type: "tick" }
  /**
   * A load sample (members that follow load): requests in flight on ready
   * members, the lowest stream limit a peer set (Infinity: none), and their
   * mean latency estimate in ms (peak-EWMA balancer only; undefined otherwise).
   */
  | { type: "load"; inFlight: number; streamLimit: number; latency?: number | undefined }
  | { type: "close" };

/**
 * What the regulator asks the supervisor to do, in order. Every change of a
 * member's state is in one: `state`, or `drain`/`evict`/`close` with the
 * state it leaves (`from`), so the supervisor reports transitions without a
 * copy of its own.
 */
export type Action =
  | { type: "dial"; dial: number; slot: number; address: Address; attempt: number }
  /** Abort a dial nobody needs any more; its failure blames no address. */
  | { type: "cancel"; dial: number }
  | { type: "state"; member: number; from: LiveState; to: "ready" | "unhealthy"; reason: string }
  /**
   * The member may (or may no longer) take picks: ready, or unhealthy while
   * degraded. The pool's usable index follows these and nothing else.
   */
  | { type: "pickable"; member: number; pickable: boolean }
  /** Outlier ejection: connected and PINGed, it takes no picks; send `ejection-ended` after `durationMs`. */
  | { type: "eject"; member: number; reason: EjectionReason; durationMs: number }
  /** The ejection is over: its outcome counts start over (taking picks again is a `pickable` action). */
  | { type: "ejection-ended"; member: number }
  /** Take it out of service for a fault: report it, then close it now. */
  | { type: "evict"; member: number; from: LiveState; reason: EvictionReason; detail: string; error: Error }
  /** No new work; in-flight work finishes; its slot already has (or gets) another member. */
  | { type: "drain"; member: number; from: LiveState; reason: DrainReason; detail: string }
  /** Close without blame: warm-up failed, drained, surplus, or the channel is closing. */
  | { type: "close"; member: number; from: LiveState; reason: string; error: Error | undefined }
  | { type: "degraded"; degraded: boolean; healthy: number }
  /** Send a tick at (or after) this time; replaces any earlier request. */
  | { type: "wake"; at: number }
  /** Every address is failing: ask the resolver for a fresh answer. */
  | { type: "refresh" }
  | { type: "gave-up"; slot: number; error: Error }
  /** The member count changed (members that follow load). */
  | { type: "members"; from: number; to: number; reason: string };

export interface RegulatorOptions {
  target: string;
  /** Members to keep: a fixed count, or a range that follows load (max above min). */
  members: MembersPlan;
  /** Deterministic subsetting (see subset.ts); the subset size is `members.min`. */
  subset?: { clientId: number } | undefined;
  criticalMin: number;
  backoff: BackoffOptions;
  /** A connection lost this soon (ms) after its first PONG is a failure of its address. */
  flapWindow: number;
  /** How long an address answers stop naming is still held (see AddressBook). */
  minHold: number;
  random: () => number;
  /** See AddressBookOptions. */
  backoffDelay?: ((failures: number) => number) | undefined;
  retainOrder?: boolean | undefined;
  /** Outlier ejection: how long, and how many members at most; undefined: off. */
  outlier?: OutlierOptions | undefined;
}

/** A member the regulator tracks is never closed: closing forgets it. */
export type LiveState = Exclude<MemberState, "closed">;

/**
 * The one record of a member's state: the pool keeps only its load, the
 * supervisor only its effects (connection, health checker, timers).
 */
export interface MemberRecord {
  readonly id: number;
  readonly key: string;
  readonly slot: number;
  readonly state: LiveState;
  /** When it answered its first PING (the regulator's clock). */
  readonly provenAt: number | undefined;
  /** May take picks (see the `pickable` action). */
  readonly pickable: boolean;
  /** Outlier detection took it out of picks: its slot may dial a replacement. */
  readonly ejected: boolean;
}

interface Member extends MemberRecord {
  state: LiveState;
  provenAt: number | undefined;
  pickable: boolean;
  ejected: boolean;
  /** Times ejected so far: each ejection lasts longer. */
  ejections: number;
  /** Its address has been told it works (the member outlived the flap window). */
  stable: boolean;
}

interface Pending {
  readonly dial: number;
  readonly key: string;
  /**
   * fill: the slot is empty; replace: its member's address left the book;
   * rebalance: spread repair; eject: its member is ejected, and this one (on
   * an address no member uses) serves the slot meanwhile.
   */
  purpose: "fill" | "replace" | "rebalance" | "eject";
  member: number | undefined;
}

interface Slot {
  readonly index: number;
  active: number | undefined;
  pending: Pending | undefined;
  /** Consecutive failed dials while empty: the attempt number of the next one. */
  failures: number;
  failingSince: number | undefined;
  gaveUp: boolean;
}

/**
 * Every decision about members, and none of the effects: eviction, degraded
 * mode, where each slot dials (stacking on live addresses while dead ones
 * back off), spread repair (dial first, then drain), flapping and minHold.
 * `accept(event, now)` returns the actions for the supervisor to carry out, as
 * warm_channels' PoolRegulator does; it never reads a clock itself, so tests
 * script events against a fake one.
 *
 * An outlier-ejected member is not usable, so its slot dials a replacement
 * on an address that no member uses (never a second member on a backend
 * that has one, never the ejected one's); once the replacement has proven
 * itself it serves the slot, and the ejected member, still connected and
 * PINGed, is a spare. When its ejection ends the spare is surplus and drains
 * — the replacement has answered meanwhile, the spare's backend had not. An
 * ejection that ends before its replacement proved cancels the dial. With
 * no unused address (as many addresses as members) nothing is dialed: the
 * ejected member sits out its time in its slot.
 */
export class Regulator {
  readonly book: AddressBook;
  #o: RegulatorOptions;
  #slots: Slot[];
  #members = new Map<number, Member>();
  #nextDial = 1;
  #ready = 0;
  #reachedCritical = false;
  #degraded = false;
  #closing = false;
  /** A refresh was asked since the last answer. */
  #refreshed = false;
  #wakeAt: number | undefined;
  /** Members that follow load; undefined for a fixed count. */
  #follower: LoadFollower | undefined;

  constructor(options: RegulatorOptions) {
    this.#o = options;
    this.book = new AddressBook({
      backoff: options.backoff,
      minHold: options.minHold,
      random: options.random,
      backoffDelay: options.backoffDelay,
      retainOrder: options.retainOrder,
      subset: options.subset ? { clientId: options.subset.clientId, size: options.members.min } : undefined,
    });
    this.#slots = Array.from({ length: options.members.min }, (_, index) => newSlot(index));
    if (options.members.max > options.members.min) this.#follower = new LoadFollower(options.members);
  }

  /** Members the channel keeps now: `members`, or where load has taken it within the range. */
  get wanted(): number {
    return this.#slots.length;
  }

  get degraded(): boolean {
    return this.#degraded;
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** Members that answered their last PINGs (or their first). */
  get readyCount(): number {
    return this.#ready;
  }

  /**
   * Some member serves: ready, or unhealthy while degraded — ejected or not,
   * at its stream limit or not (load alone must not flap a channel's status).
   */
  get serving(): boolean {
    if (this.#ready > 0) return true;
    if (!this.#degraded) return false;
    for (const m of this.#members.values()) if (m.state === "unhealthy") return true;
    return false;
  }

  /** The slot a member belongs to, or -1. */
  slotOf(member: number): number {
    return this.#members.get(member)?.slot ?? -1;
  }

  /** A member's record, read-only; undefined once it is closed (or was never needed). */
  member(id: number): MemberRecord | undefined {
    return this.#members.get(id);
  }

  /** Every member not closed yet, read-only. */
  members(): IterableIterator<MemberRecord> {
    return this.#members.values();
  }

  accept(event: RegulatorEvent, now: number): Action[] {
    const out: Action[] = [];
    if (this.#closing) {
      this.#whileClosing(event, out);
      return out;
    }
    switch (event.type) {
      case "addresses":
        this.book.update(event.addresses, now);
        this.#refreshed = false;
        break;
      case "connected":
        this.#onConnected(event.dial, event.member, out);
        break;
      case "proven":
        this.#onProven(event.member, now, out);
        break;
      case "dial-failed":
        this.#onDialFailed(event.dial, event.member, event.error, now, out);
        break;
      case "unhealthy":
        this.#onUnhealthy(event.member, event.error, now, out);
        break;
      case "healthy":
        this.#onHealthy(event.member, now, out);
        break;
      case "goaway":
        this.#onGoaway(event.member, event.kind, event.detail, event.error, now, out);
        break;
      case "lost":
        this.#onLost(event.member, event.error, now, out);
        break;
      case "outlier":
        // Nothing changes for most reports (already ejected, or the cap is reached): no planning pass then.
        if (!this.#onOutlier(event.member, event.reason, out)) return out;
        break;
      case "ejection-ended":
        this.#onEjectionEnded(event.member, out);
        break;
      case "tick":
        this.#wakeAt = undefined;
        break;
      case "load":
        this.#onLoad(event.inFlight, event.streamLimit, event.latency, now, out);
        break;
      case "close":
        this.#closing = true;
        return out;
    }
    this.#plan(now, out);
    this.#updatePickable(out);
    return out;
  }

  // ── events ───────────────────────────────────────────────────────────

  /** Closing is its own reason: nothing is blamed, nothing is dialed, no mode changes. */
  #whileClosing(event: RegulatorEvent, out: Action[]): void {
    const id = event.type === "connected" || event.type === "lost" || event.type === "dial-failed" ? event.member : undefined;
    if (id === undefined) return;
    const from = this.#forget(id);
    out.push({ type: "close", member: id, from, reason: "channel closed", error: undefined });
  }

  #onConnected(dial: number, id: number, out: Action[]): void {
    const slot = this.#slots.find((s) => s.pending?.dial === dial);
    const p = slot?.pending;
    if (!slot || !p) {
      out.push({ type: "close", member: id, from: "connecting", reason: "dial no longer needed", error: undefined });
      return;
    }
    p.member = id;
    this.#members.set(id, {
      id,
      key: p.key,
      slot: slot.index,
      state: "connecting",
      provenAt: undefined,
      pickable: false,
      ejected: false,
      ejections: 0,
      stable: false,
    });
  }

  #onProven(id: number, now: number, out: Action[]): void {
    const m = this.#members.get(id);
    if (!m || m.state !== "connecting") return;
    const slot = this.#slots[m.slot] as Slot;
    const p = slot.pending;
    if (p?.member !== id) return;
    slot.pending = undefined;
    slot.failures = 0;
    slot.failingSince = undefined;
    m.provenAt = now;
    // The first PONG does not clear the address's failures: only outliving the flap window does.
    this.#setState(m, "ready", "first PONG", out);
    const old = slot.active === undefined ? undefined : this.#members.get(slot.active);
    slot.active = id;
    // An ejected member replaced stays, a spare, until its ejection ends (see #onEjectionEnded).
    if (old && !(p.purpose === "eject" && old.ejected)) {
      // Dial first, then drain: the slot never dips.
      const reason: DrainReason = p.purpose === "rebalance" ? "rebalanced" : p.purpose === "eject" ? "surplus" : "address-removed";
      const detail = p.purpose === "rebalance" ? `rebalanced to ${m.key}` : p.purpose === "eject" ? `replaced by ${m.key}` : "address removed by resolver";
      this.#drain(old, reason, detail, out);
    }
    this.#updateDegraded(out);
  }

  #onDialFailed(dial: number, id: number | undefined, error: Error, now: number, out: Action[]): void {
    if (id !== undefined) {
      const from = this.#forget(id);
      out.push({ type: "close", member: id, from, reason: "warm-up failed", error });
    }
    const slot = this.#slots.find((s) => s.pending?.dial === dial);
    if (!slot || !slot.pending) return;
    this.book.failed(slot.pending.key, error, now);
    slot.pending = undefined;
    if (slot.active === undefined) this.#slotFailed(slot, error, now, out);
    this.#maybeRefresh(out);
  }

  #onUnhealthy(id: number, error: Error, now: number, out: Action[]): void {
    const m = this.#members.get(id);
    if (!m || m.state !== "ready") return;
    this.#setState(m, "unhealthy", error.message, out);
    this.#updateDegraded(out);
    // Degraded mode keeps doubtful members rather than none.
    if (!this.#degraded) this.#evict(m, "unhealthy", `unhealthy: ${error.message}`, error, now, out);
  }

  #onHealthy(id: number, now: number, out: Action[]): void {
    const m = this.#members.get(id);
    if (!m || m.state !== "unhealthy") return;
    this.#setState(m, "ready", "PINGs answered again", out);
    this.#updateDegraded(out);
  }

  #onGoaway(id: number, kind: "goaway" | "lame-duck", detail: string, error: Error, now: number, out: Action[]): void {
    const m = this.#members.get(id);
    if (!m || m.state === "draining") return;
    if (m.state === "connecting") {
      // Told to go away before it proved itself: a failed dial.
      const slot = this.#slots[m.slot] as Slot;
      if (slot.pending?.member === id) this.#onDialFailed(slot.pending.dial, id, error, now, out);
      return;
    }
    this.#addressLost(m, error, now);
    const slot = this.#slots[m.slot] as Slot;
    if (slot.active === id) this.#vacate(slot, out);
    this.#drain(m, kind, detail, out);
    this.#updateDegraded(out);
  }

  #onLost(id: number, error: Error | undefined, now: number, out: Action[]): void {
    const m = this.#members.get(id);
    if (!m) return;
    if (m.state === "connecting") {
      const slot = this.#slots[m.slot] as Slot;
      if (slot.pending?.member === id) this.#onDialFailed(slot.pending.dial, id, error ?? new Error("connection closed during warm-up"), now, out);
      return;
    }
    if (m.state === "draining") {
      this.#forget(id);
      out.push({ type: "close", member: id, from: "draining", reason: error ? error.message : "closed after draining", error });
      return;
    }
    const cause = error ?? new Error("connection closed by peer");
    this.#evict(m, "peer-closed", cause.message, cause, now, out);
    this.#updateDegraded(out);
  }

  /**
   * Ejects a member whose outcomes ran past a threshold, unless it is
   * already ejected, not serving (connecting, draining), or ejecting it
   * would pass maxEjectedPercent of the members. Out of picks before the
   * ejection is reported.
   */
  #onOutlier(id: number, reason: EjectionReason, out: Action[]): boolean {
    const o = this.#o.outlier;
    const m = this.#members.get(id);
    if (!o || !m || m.ejected || m.state === "connecting" || m.state === "draining") return false;
    let ejected = 0;
    for (const x of this.#members.values()) if (x.ejected) ejected++;
    if (!mayEject(ejected, this.#members.size, o)) return false;
    m.ejected = true;
    m.ejections++;
    if (m.pickable) {
      m.pickable = false;
      out.push({ type: "pickable", member: id, pickable: false });
    }
    out.push({ type: "eject", member: id, reason, durationMs: ejectionTime(m.ejections, o) });
    return true;
  }

  /**
   * A replaced (spare) member is surplus now: it drains. One still serving
   * its slot takes picks again, and a replacement still on its way is not
   * needed: its dial is cancelled.
   */
  #onEjectionEnded(id: number, out: Action[]): void {
    const m = this.#members.get(id);
    if (!m?.ejected) return;
    m.ejected = false;
    out.push({ type: "ejection-ended", member: id });
    if (m.state === "draining") return;
    const slot = this.#slots[m.slot];
    if (slot?.active === id) {
      const p = slot.pending;
      if (p?.purpose !== "eject") return;
      slot.pending = undefined;
      out.push({ type: "cancel", dial: p.dial });
      if (p.member !== undefined) {
        const from = this.#forget(p.member);
        out.push({ type: "close", member: p.member, from, reason: "replacement no longer needed (ejection ended)", error: undefined });
      }
      return;
    }
    this.#drain(m, "surplus", "ejection ended; a replacement serves its slot", out);
  }

  /** A load sample: the follower decides, the regulator adds or drops the last slot. */
  #onLoad(inFlight: number, streamLimit: number, latency: number | undefined, now: number, out: Action[]): void {
    if (!this.#follower) return;
    let ready = 0;
    let settled = true;
    for (const slot of this.#slots) {
      const m = slot.active === undefined ? undefined : this.#members.get(slot.active);
      if (m?.state === "ready") ready++;
      if (slot.pending || !m) settled = false;
    }
    const othersReady = this.#slots.slice(0, -1).every((slot) => slot.active !== undefined && this.#members.get(slot.active)?.state === "ready");
    const d = this.#follower.sample({ inFlight, streamLimit, latency, size: this.#slots.length, ready, settled, othersReady }, now);
    if (d) this.#resize(d.to, d.reason, out);
  }

  /** Adds an empty slot (planning fills it) or removes the last one: its dial is cancelled, its member drains. */
  #resize(to: number, reason: string, out: Action[]): void {
    const from = this.#slots.length;
    if (to > from) this.#slots.push(newSlot(from));
    else {
      const slot = this.#slots.pop() as Slot;
      const p = slot.pending;
      if (p) {
        out.push({ type: "cancel", dial: p.dial });
        if (p.member !== undefined) {
          const from = this.#forget(p.member);
          out.push({ type: "close", member: p.member, from, reason: "surplus member (load fell)", error: undefined });
        }
      }
      const m = slot.active === undefined ? undefined : this.#members.get(slot.active);
      if (m) this.#drain(m, "surplus", "load fell", out);
    }
    out.push({ type: "members", from, to, reason });
  }

  // ── planning ─────────────────────────────────────────────────────────

  /** Fills empty slots, replaces members on addresses that left the book, repairs spread; asks for a wake-up. */
  #plan(now: number, out: Action[]): void {
    let wake: number | undefined;
    const later = (t: number | undefined): void => {
      if (t !== undefined && (wake === undefined || t < wake)) wake = t;
    };
    // Leaving degraded mode: the unhealthy members that served meanwhile are evicted now.
    if (!this.#degraded) {
      for (const m of [...this.#members.values()]) {
        if (m.state !== "unhealthy") continue;
        const error = new DialtoneError("ERR_DIALTONE_UNHEALTHY", `${this.#o.target} (${m.key}): unhealthy after degraded mode ended`);
        this.#evict(m, "unhealthy", "unhealthy after degraded mode ended", error, now, out);
      }
    }
    // One use map for the whole pass, updated as dials go out: recomputing it per slot made warm-up quadratic.
    const use = this.#use();
    let waiting = false;
    for (const slot of this.#slots) {
      if (slot.gaveUp || slot.pending) continue;
      const active = slot.active === undefined ? undefined : this.#members.get(slot.active);
      if (active && this.book.has(active.key)) continue;
      // The choice depends only on the use map: once it says wait, every other slot would hear the same.
      if (waiting) continue;
      const d = this.book.choose(use, now);
      if (d.kind === "dial") {
        this.#dial(slot, d.address, active ? "replace" : "fill", out);
        bumpUse(use, addressKey(d.address), "proving");
      } else {
        later(d.until);
        waiting = true;
      }
    }
    later(this.#replaceEjected(use, now, out));
    later(this.#rebalance(now, out));
    for (const m of this.#members.values()) {
      if (m.provenAt === undefined || m.stable || m.state === "draining") continue;
      const at = m.provenAt + this.#o.flapWindow;
      if (at <= now) {
        m.stable = true;
        this.book.stable(m.key);
      } else later(at);
    }
    if (wake !== undefined && wake !== this.#wakeAt) {
      this.#wakeAt = wake;
      out.push({ type: "wake", at: wake });
    }
  }

  /**
   * Spread repair, one move at a time: when an address carries at least two
   * members more than another that may be dialed, dial that one for a member
   * of the crowded address; the member drains once the new one has proven
   * itself. A dead address only costs a dial per backoff period. Returns
   * when to look again if the only candidates are backing off.
   */
  #rebalance(now: number, out: Action[]): number | undefined {
    if (this.#degraded) return undefined;
    if (this.#slots.some((s) => s.pending !== undefined)) return undefined;
    const use = this.#use();
    let donor: { key: string; members: number } | undefined;
    for (const [key, u] of use)
      if (this.book.has(key) && u.members >= 2 && !u.proving && (!donor || u.members > donor.members)) donor = { key, members: u.members };
    if (!donor) return undefined;
    let target: { address: Address; members: number; failing: boolean } | undefined;
    let earliest: number | undefined;
    for (const e of this.book.entries()) {
      const members = use.get(e.key)?.members ?? 0;
      if (donor.members - members < 2) continue;
      if (e.coolingUntil > now) {
        if (earliest === undefined || e.coolingUntil < earliest) earliest = e.coolingUntil;
        continue;
      }
      const failing = e.failures > 0;
      // Prefer addresses not known to fail; among equals, the emptiest.
      if (!target || (target.failing && !failing) || (target.failing === failing && members < target.members))
        target = { address: e.address, members, failing };
    }
    if (!target) return earliest;
    let victim: Member | undefined;
    for (const m of this.#members.values()) {
      const slot = this.#slots[m.slot] as Slot;
      if (m.key === donor.key && m.state === "ready" && slot.active === m.id && (!victim || m.id > victim.id)) victim = m;
    }
    if (victim) this.#dial(this.#slots[victim.slot] as Slot, target.address, "rebalance", out);
    return undefined;
  }

  /**
   * A slot whose serving member is ejected dials an address no member uses
   * (not backing off; one not known to fail first, in rank order). Returns
   * when to look again if the only such addresses are backing off.
   */
  #replaceEjected(use: Map<string, AddressUse>, now: number, out: Action[]): number | undefined {
    let earliest: number | undefined;
    for (const slot of this.#slots) {
      if (slot.gaveUp || slot.pending || slot.active === undefined) continue;
      const m = this.#members.get(slot.active);
      if (!m?.ejected || m.state !== "ready") continue;
      let target: AddressEntry | undefined;
      for (const e of this.book.entries()) {
        if ((use.get(e.key)?.members ?? 0) > 0) continue;
        if (e.coolingUntil > now) {
          if (earliest === undefined || e.coolingUntil < earliest) earliest = e.coolingUntil;
          continue;
        }
        if (!target || (target.failures > 0 && e.failures === 0)) target = e;
      }
      if (!target) return earliest;
      this.#dial(slot, target.address, "eject", out);
      bumpUse(use, target.key, "proving");
    }
    return undefined;
  }

  #dial(slot: Slot, address: Address, purpose: Pending["purpose"], out: Action[]): void {
    const dial = this.#nextDial++;
    slot.pending = { dial, key: addressKey(address), purpose, member: undefined };
    // attempt counts within one outage of the slot; 0 when the slot is served meanwhile (repair, replacement).
    out.push({ type: "dial", dial, slot: slot.index, address, attempt: slot.active === undefined ? slot.failures + 1 : 0 });
  }

  /**
   * Members per address as spread counts them: active and pending, not
   * draining; and ejected spares, so that nothing is dialed to their
   * backend while they sit out (they do not make it live).
   */
  #use(): Map<string, AddressUse> {
    const use = new Map<string, AddressUse>();
    for (const slot of this.#slots) {
      const m = slot.active === undefined ? undefined : this.#members.get(slot.active);
      if (m) bumpUse(use, m.key, m.state === "ready" ? "ready" : "other");
      if (slot.pending) bumpUse(use, slot.pending.key, "proving");
    }
    for (const m of this.#members.values()) {
      if (m.ejected && m.state !== "draining" && this.#slots[m.slot]?.active !== m.id) bumpUse(use, m.key, "other");
    }
    return use;
  }

  // ── helpers ──────────────────────────────────────────────────────────

  #setState(m: Member, to: "ready" | "unhealthy", reason: string, out: Action[]): void {
    const from = m.state;
    if (from === "ready") this.#ready--;
    if (to === "ready") this.#ready++;
    m.state = to;
    out.push({ type: "state", member: m.id, from, to, reason });
  }

  /** No new picks from here on: said before the drain, so nothing picks a member that is going away. */
  #drain(m: Member, reason: DrainReason, detail: string, out: Action[]): void {
    const from = m.state;
    if (from === "ready") this.#ready--;
    m.state = "draining";
    if (m.pickable) {
      m.pickable = false;
      out.push({ type: "pickable", member: m.id, pickable: false });
    }
    out.push({ type: "drain", member: m.id, from, reason, detail });
  }

  /**
   * The one place that says who takes picks: ready members, and unhealthy
   * ones while degraded (better a doubtful member than none). Run once per
   * event, after every state change it caused, so a batch that turns the
   * last ready member unhealthy and enters degraded mode never takes it out
   * of picks in between.
   */
  #updatePickable(out: Action[]): void {
    for (const m of this.#members.values()) {
      const pickable = (m.state === "ready" || (this.#degraded && m.state === "unhealthy")) && !m.ejected;
      if (pickable === m.pickable) continue;
      m.pickable = pickable;
      out.push({ type: "pickable", member: m.id, pickable });
    }
  }

  #evict(m: Member, reason: EvictionReason, detail: string, error: Error, now: number, out: Action[]): void {
    this.#addressLost(m, error, now);
    const slot = this.#slots[m.slot] as Slot;
    if (slot.active === m.id) {
      this.#vacate(slot, out);
      slot.failingSince ??= now;
    }
    const from = this.#forget(m.id);
    out.push({ type: "evict", member: m.id, from, reason, detail, error });
    this.#maybeRefresh(out);
  }

  /**
   * The slot's serving member is gone. A repair dial already under way now
   * fills the slot, unless it goes to an address that is failing: then it is
   * cancelled, so a dead address never holds a slot hostage while live ones
   * have room.
   */
  #vacate(slot: Slot, out: Action[]): void {
    slot.active = undefined;
    const p = slot.pending;
    if (!p) return;
    const entry = this.book.get(p.key);
    if (entry && entry.failures === 0) {
      p.purpose = "fill";
      return;
    }
    slot.pending = undefined;
    out.push({ type: "cancel", dial: p.dial });
    if (p.member !== undefined) {
      const from = this.#forget(p.member);
      out.push({ type: "close", member: p.member, from, reason: "dial no longer needed", error: undefined });
    }
  }

  /** A member's loss counts against its address; a member that outlived the flap window first clears it. */
  #addressLost(m: Member, error: Error, now: number): void {
    if (m.provenAt !== undefined && now - m.provenAt >= this.#o.flapWindow) this.book.stable(m.key);
    this.book.failed(m.key, error, now);
  }

  /** Forgets a member; returns the state it was in ("connecting" when it was never recorded). */
  #forget(id: number): LiveState {
    const m = this.#members.get(id);
    if (!m) return "connecting";
    if (m.state === "ready") this.#ready--;
    this.#members.delete(id);
    return m.state;
  }

  #slotFailed(slot: Slot, error: Error, now: number, out: Action[]): void {
    slot.failures++;
    slot.failingSince ??= now;
    const limit = this.#o.backoff.timeout;
    if (limit > 0 && now - slot.failingSince >= limit) {
      slot.gaveUp = true;
      out.push({ type: "gave-up", slot: slot.index, error: new GaveUpError(`${this.#o.target} slot ${slot.index}`, limit, slot.failures, error) });
    }
  }

  #maybeRefresh(out: Action[]): void {
    if (this.#refreshed || !this.book.allFailing(this.#use())) return;
    this.#refreshed = true;
    out.push({ type: "refresh" });
  }

  /** Once criticalMin members have been ready together, falling below it is degraded mode. */
  #updateDegraded(out: Action[]): void {
    const min = this.#o.criticalMin;
    if (min === 0) return;
    if (this.#ready >= min) this.#reachedCritical = true;
    const degraded = this.#reachedCritical && this.#ready < min;
    if (degraded === this.#degraded) return;
    this.#degraded = degraded;
    out.push({ type: "degraded", degraded, healthy: this.#ready });
  }
}

function newSlot(index: number): Slot {
  return { index, active: undefined, pending: undefined, failures: 0, failingSince: undefined, gaveUp: false };
}

/** Counts one member (or pending dial) on an address, as spread sees it. */
function bumpUse(use: Map<string, AddressUse>, key: string, kind: "proving" | "ready" | "other"): void {
  const u = use.get(key) ?? { members: 0, proving: false, live: false, provingCount: 0, proven: 0 };
  u.members++;
  if (kind === "proving") {
    u.proving = true;
    u.provingCount = (u.provingCount ?? 0) + 1;
  }
  if (kind === "ready") {
    u.live = true;
    u.proven = (u.proven ?? 0) + 1;
  }
  use.set(key, u);
}

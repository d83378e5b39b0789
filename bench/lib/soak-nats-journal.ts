/**
 * What the NATS soak's channel knew, kept so that every failure can be
 * explained afterwards: the channel's events (all but the per-request and
 * per-PING ones), each fault with its node and times, and each failed call
 * with its member, its times and whether it was marked idempotent. For each
 * freeze it also notes when the frozen node's member was suspected and the
 * last call placed on it (from the request events: start = end − duration),
 * which is how long the member stayed in rotation.
 *
 * Bounded: events are capped (a soak emits a few dozen per fault), failures
 * too; request events are not stored, only folded into the open freezes,
 * and hedges waiting for maxExtraLoad are only counted.
 */
import type { ChannelEvent } from "../../dist/index.js";

const MAX_EVENTS = 50_000;
const MAX_FAILURES = 20_000;

export interface JournalFault {
  kind: string;
  node: string;
  at: number;
  /** When it ended: thawed, restarted, or the lame-duck node restarted. */
  end: number | undefined;
  /** Freezes: the frozen node's member, first suspected (ms after the freeze). */
  suspectedAfterMs?: number | undefined;
  /** Freezes: the last call placed on the frozen node's member while it was frozen (ms after the freeze). */
  lastPlacedAfterMs?: number | undefined;
  /** Freezes: calls placed on it after it was suspected. */
  placedAfterSuspect?: number;
  /** Freezes: calls placed on it while frozen. */
  placedWhileFrozen?: number;
}

export interface JournalFailure {
  start: number;
  end: number;
  code: string;
  address: string | undefined;
  idempotent: boolean;
}

export class SoakJournal {
  readonly t0 = performance.now();
  readonly events: Array<{ t: number; e: ChannelEvent }> = [];
  readonly faults: JournalFault[] = [];
  readonly failures: JournalFailure[] = [];
  /** Hedges that waited for maxExtraLoad's room (retry-budget-exhausted, kind hedge-load). */
  hedgeWaits = 0;

  now(): number {
    return performance.now() - this.t0;
  }

  /** The channel's listener. */
  readonly onEvent = (e: ChannelEvent): void => {
    const t = this.now();
    if (e.type === "request") {
      if (e.address === undefined) return;
      const start = t - e.durationMs;
      for (const f of this.faults) {
        if (f.kind !== "freeze" || f.node !== e.address || start < f.at || (f.end !== undefined && start > f.end)) continue;
        f.placedWhileFrozen = (f.placedWhileFrozen ?? 0) + 1;
        f.lastPlacedAfterMs = Math.max(f.lastPlacedAfterMs ?? 0, start - f.at);
        if (f.suspectedAfterMs !== undefined && start > f.at + f.suspectedAfterMs) f.placedAfterSuspect = (f.placedAfterSuspect ?? 0) + 1;
      }
      return;
    }
    if (e.type === "ping") return;
    // A hedge waiting for maxExtraLoad's room is routine (about 5 % of idempotent calls): counted, not kept,
    // so the journal does not grow the heap the soak measures.
    if (e.type === "retry-budget-exhausted" && e.kind === "hedge-load") {
      this.hedgeWaits++;
      return;
    }
    if (e.type === "suspect") {
      for (const f of this.faults) {
        if (f.kind === "freeze" && f.node === e.member.address && f.end === undefined && f.suspectedAfterMs === undefined) f.suspectedAfterMs = t - f.at;
      }
    }
    if (this.events.length < MAX_EVENTS) this.events.push({ t, e });
  };

  fault(kind: string, node: string): JournalFault {
    const f: JournalFault = { kind, node, at: this.now(), end: undefined };
    if (kind === "freeze") {
      f.placedAfterSuspect = 0;
      f.placedWhileFrozen = 0;
    }
    this.faults.push(f);
    return f;
  }

  failed(start: number, code: string, address: string | undefined, idempotent: boolean): void {
    if (this.failures.length < MAX_FAILURES) this.failures.push({ start, end: this.now(), code, address, idempotent });
  }

  /**
   * Each failure against the faults: "freeze member" (sent on the member of
   * a frozen node), "kill member", "lame-duck member", "routed to a frozen
   * server" (sent on a healthy member while another node was frozen: the
   * cluster routed it to a responder there), "routed to a killed server",
   * "during a lame duck elsewhere" (a lame-duck server closing a responder
   * that held it), and "unexplained" for the rest, each with the events
   * around it.
   */
  report(timeoutMs: number): unknown {
    const during = (f: JournalFault, x: JournalFailure): boolean => x.start <= (f.end ?? Number.POSITIVE_INFINITY) && x.end >= f.at;
    const classify = (x: JournalFailure): string => {
      for (const f of this.faults) {
        if (!during(f, x)) continue;
        if (f.node === x.address) return `${f.kind} member`;
      }
      if (this.faults.some((f) => f.kind === "freeze" && during(f, x))) return "routed to a frozen server";
      if (this.faults.some((f) => f.kind === "kill" && x.start <= f.at + 100 && x.end >= f.at)) return "routed to a killed server";
      // A lame-duck server closes its clients, a responder holding a request among them: that request is lost.
      if (this.faults.some((f) => f.kind === "lame-duck" && during(f, x))) return "during a lame duck elsewhere";
      return "unexplained";
    };
    const byClass: Record<string, { idempotent: number; other: number }> = {};
    const unexplained: unknown[] = [];
    for (const x of this.failures) {
      const c = classify(x);
      const slot = (byClass[c] ??= { idempotent: 0, other: 0 });
      if (x.idempotent) slot.idempotent++;
      else slot.other++;
      if (c === "unexplained" && unexplained.length < 20) {
        unexplained.push({
          ...x,
          faultsBefore: this.faults
            .filter((f) => f.at <= x.end && f.at >= x.start - 45_000)
            .map((f) => ({ ...f, at: round(f.at), end: f.end === undefined ? undefined : round(f.end) })),
          events: this.events.filter(({ t }) => t >= x.start - 3000 && t <= x.end + 1000).map(({ t, e }) => ({ t: round(t), ...brief(e) })),
        });
      }
    }
    const freezes = this.faults.filter((f) => f.kind === "freeze" && f.end !== undefined);
    const perFreeze = freezes.map((f) => {
      const inWindow = this.failures.filter((x) => x.start >= f.at - timeoutMs && x.start < f.at + 10_000);
      return {
        node: f.node,
        at: round(f.at),
        failed: inWindow.filter((x) => !x.idempotent).length,
        failedIdempotent: inWindow.filter((x) => x.idempotent).length,
        suspectedAfterMs: f.suspectedAfterMs === undefined ? null : round(f.suspectedAfterMs),
        lastPlacedAfterMs: f.lastPlacedAfterMs === undefined ? null : round(f.lastPlacedAfterMs),
        placedWhileFrozen: f.placedWhileFrozen ?? 0,
        placedAfterSuspect: f.placedAfterSuspect ?? 0,
      };
    });
    return { failuresByClass: byClass, perFreeze, unexplained, hedgeWaits: this.hedgeWaits, eventsKept: this.events.length };
  }
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** An event without its Error objects' stacks: type, member address, and the few fields that say what happened. */
function brief(e: ChannelEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) {
    if (v instanceof Error) out[k] = `${(v as { code?: string }).code ?? v.name}: ${v.message}`;
    else if (k === "member" && v && typeof v === "object") out.member = (v as { address: string }).address;
    else out[k] = v;
  }
  return out;
}

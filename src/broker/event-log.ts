import type { ChannelEvent } from "../index.js";

/** One line of an upstream's recent history, as the diagnostics page shows it. */
export interface LoggedEvent {
  at: string;
  type: string;
  text: string;
}

const MAX_EVENTS = 100;
const MAX_RTT_SAMPLES = 40;
/** Addresses come and go with DNS; keep samples for a bounded number of them. */
const MAX_RTT_ADDRESSES = 64;

/**
 * A bounded memory of a channel's events for the diagnostics page: the last
 * 100 notable events (per-request events are left out: they would push
 * everything else out) and the last 40 PING round trips per address for the
 * sparklines. Channel events never carry credentials, so neither does this.
 */
export class EventLog {
  readonly #events: LoggedEvent[] = [];
  readonly #rtts = new Map<string, number[]>();

  record(e: ChannelEvent): void {
    if (e.type === "request") return;
    if (e.type === "ping" || e.type === "connect-ok") {
      this.#rtt(e.member.address, e.rtt);
      if (e.type === "ping") return;
    }
    this.#push(e.type, describe(e));
  }

  note(text: string): void {
    this.#push("broker", text);
  }

  recent(): LoggedEvent[] {
    return this.#events.slice().reverse();
  }

  rtts(): Record<string, number[]> {
    return Object.fromEntries(this.#rtts);
  }

  #rtt(address: string, rtt: number): void {
    let samples = this.#rtts.get(address);
    if (!samples) {
      if (this.#rtts.size >= MAX_RTT_ADDRESSES) {
        const oldest = this.#rtts.keys().next().value;
        if (oldest !== undefined) this.#rtts.delete(oldest);
      }
      samples = [];
      this.#rtts.set(address, samples);
    }
    samples.push(Math.round(rtt * 1000) / 1000);
    if (samples.length > MAX_RTT_SAMPLES) samples.shift();
  }

  #push(type: string, text: string): void {
    this.#events.push({ at: new Date().toISOString(), type, text });
    if (this.#events.length > MAX_EVENTS) this.#events.shift();
  }
}

function describe(e: ChannelEvent): string {
  switch (e.type) {
    case "resolve":
      return `resolved ${e.addresses.length} address(es): ${e.addresses.slice(0, 8).join(", ")}${e.addresses.length > 8 ? ", …" : ""}`;
    case "resolve-failed":
      return `resolve failed: ${e.error.message}`;
    case "resolve-family-failed":
      return `resolve ${e.family} failed: ${e.message}${e.kept > 0 ? ` (kept ${e.kept} last good)` : ""}`;
    case "connect-attempt":
      return `slot ${e.slot} dials ${e.address} (attempt ${e.attempt})`;
    case "connect-ok":
      return `member #${e.member.id} ${e.member.address} ready, first PING ${e.rtt.toFixed(2)} ms`;
    case "connect-failed":
      return `slot ${e.slot} ${e.address}: ${e.error.message}`;
    case "member-added":
      return `member #${e.member.id} ${e.member.address} connected`;
    case "member-removed":
      return `member #${e.member.id} ${e.member.address} removed (${e.reason})`;
    case "state":
      return `member #${e.member.id} ${e.member.address} ${e.from} → ${e.to} (${e.reason})`;
    case "ping-failed":
      return `member #${e.member.id} ${e.member.address} PING failed: ${e.error.message}`;
    case "suspect":
      return `member #${e.member.id} ${e.member.address} suspect (busy and silent)`;
    case "evicted":
      return `member #${e.member.id} ${e.member.address} evicted: ${e.reason} ${e.detail}`;
    case "draining":
      return `member #${e.member.id} ${e.member.address} draining: ${e.reason} ${e.detail}`;
    case "gave-up":
      return `slot ${e.slot} gave up: ${e.error.message}`;
    case "degraded":
      return e.degraded ? `degraded mode entered (${e.healthy} healthy)` : `degraded mode left (${e.healthy} healthy)`;
    case "status":
      return `channel ${e.status}`;
    case "subscription-moved":
      return `subscription ${e.subject} moved to ${e.to} (gap ${Math.round(e.gapMs)} ms)`;
    case "messages-dropped":
      return `subscription ${e.subject} dropped ${e.count} message(s)`;
    case "events-dropped":
      return `${e.count} event(s) dropped`;
    default:
      return e.type;
  }
}

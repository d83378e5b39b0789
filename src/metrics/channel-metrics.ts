import { register as defaultRegistry, type Registry } from "prom-client";
import type { ChannelEvent } from "../core/events.js";
import { ConfigError } from "../core/errors.js";
import { familiesFor, type Families } from "./families.js";
import { RequestTally } from "./request-tally.js";
import type { MetricsSource } from "./source.js";

export interface MetricsOptions {
  /**
   * Label PING and connect series with the member's address. Off by default:
   * series then grow with the number of backend addresses.
   */
  perAddress?: boolean;
}

/** Label values are lower snake case, as Prometheus users expect. */
const snake = (s: string): string => s.replace(/-/g, "_");

/**
 * Feeds one channel's events into the shared families of a registry. close()
 * removes every series this channel created; gauges vanish with the source.
 */
export class ChannelMetrics {
  readonly registry: Registry;
  #f: Families;
  #source: MetricsSource;
  #perAddress: boolean;
  #off: () => void;
  #closed = false;
  readonly #tally: RequestTally;
  /** Every label set this channel used, per metric, so close() can remove them. */
  #used = new Map<{ remove(labels: Record<string, string>): void }, Map<string, Record<string, string>>>();

  constructor(source: MetricsSource, registry: Registry = defaultRegistry, options: MetricsOptions = {}) {
    this.#f = familiesFor(registry);
    if ([...this.#f.sources].some((s) => s.name === source.name)) {
      throw new ConfigError("name", `a channel named ${JSON.stringify(source.name)} already reports to this registry; give each channel its own name`);
    }
    this.registry = registry;
    this.#source = source;
    this.#perAddress = options.perAddress ?? false;
    this.#f.sources.add(source);
    this.#tally = new RequestTally(source.name);
    this.#f.tallies.add(this.#tally);
    this.#zeroes();
    this.#off = source.on((e) => this.#onEvent(e));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#off();
    this.#f.sources.delete(this.#source);
    this.#f.tallies.delete(this.#tally);
    for (const outcome of this.#tally.outcomes.keys()) this.#track(this.#f.requests, this.#labels({ outcome }));
    for (const [metric, sets] of this.#used) for (const labels of sets.values()) metric.remove(labels);
    this.#used.clear();
  }

  /** Series that should exist from the start, so rate() and absent() behave. */
  #zeroes(): void {
    const f = this.#f;
    for (const status of ["connected", "disconnected"]) this.#inc(f.statusChanges, { status }, 0);
    this.#inc(f.degradedEpisodes, {}, 0);
    for (const result of ["ok", "error"]) this.#inc(f.connects, { result, address: "" }, 0);
    for (const reason of ["unhealthy", "peer_closed", "goaway", "lame_duck", "address_removed", "rebalanced"]) this.#inc(f.evictions, { reason }, 0);
    this.#inc(f.reconnectAttempts, {}, 0);
    this.#inc(f.reconnectGiveups, {}, 0);
    this.#inc(f.pingFailures, { address: "" }, 0);
    for (const result of ["ok", "error"]) this.#inc(f.resolves, { result }, 0);
    for (const outcome of ["ok", "error"]) this.#inc(f.requests, { outcome }, 0);
    this.#inc(f.requestRetries, {}, 0);
    for (const kind of ["retry", "hedge", "hedge-load"]) this.#inc(f.retryBudgetExhausted, { kind }, 0);
    this.#inc(f.hedges, {}, 0);
    for (const reason of ["consecutive_5xx", "consecutive_gateway", "consecutive_local"]) this.#inc(f.ejections, { reason }, 0);
    this.#inc(f.hedgesWon, {}, 0);
  }

  #onEvent(e: ChannelEvent): void {
    const f = this.#f;
    switch (e.type) {
      // First: one per call, the one event on the request path (a switch on strings compares in order).
      case "request":
        // Counted in plain numbers, read by the families when scraped (request-tally.ts).
        if (!this.#closed) this.#tally.record(e.outcome, e.durationMs / 1000, e.retries, e.hedges, e.hedgeWon);
        break;
      case "status":
        this.#inc(f.statusChanges, { status: e.status });
        break;
      case "degraded":
        if (e.degraded) this.#inc(f.degradedEpisodes, {});
        break;
      case "ping":
        this.#observe(f.pingRtt, { address: this.#addr(e.member.address) }, e.rtt / 1000);
        break;
      case "ping-failed":
        this.#inc(f.pingFailures, { address: this.#addr(e.member.address) });
        break;
      case "connect-attempt":
        this.#inc(f.reconnectAttempts, {});
        break;
      case "connect-ok":
        this.#inc(f.connects, { result: "ok", address: this.#addr(e.member.address) });
        this.#observe(f.pingRtt, { address: this.#addr(e.member.address) }, e.rtt / 1000);
        break;
      case "connect-failed":
        this.#inc(f.connects, { result: "error", address: this.#addr(e.address) });
        break;
      case "evicted":
      case "draining":
        this.#inc(f.evictions, { reason: snake(e.reason) });
        break;
      case "gave-up":
        this.#inc(f.reconnectGiveups, {});
        break;
      case "resolve":
        this.#inc(f.resolves, { result: "ok" });
        break;
      case "resolve-failed":
        this.#inc(f.resolves, { result: "error" });
        break;
      case "resolve-family-failed":
        // Both labels come from closed sets (familyOf, DnsAnswerKind): bounded.
        this.#inc(f.resolveFamilyFailures, { family: e.family, answer: e.answer });
        break;
      case "ejected":
        this.#inc(f.ejections, { reason: snake(e.reason) });
        break;
      case "retry-budget-exhausted":
        this.#inc(f.retryBudgetExhausted, { kind: e.kind });
        break;
      case "server-error":
        this.#inc(f.serverErrors, { kind: e.kind });
        break;
      case "messages-dropped":
        this.#inc(f.messagesDropped, {}, e.count);
        break;
      case "members":
        this.#inc(f.memberCountChanges, { direction: e.to > e.from ? "up" : "down" });
        break;
      default:
        break;
    }
  }

  #addr(address: string): string {
    return this.#perAddress ? address : "";
  }

  #labels(extra: Record<string, string>): Record<string, string> {
    return { channel: this.#source.name, ...extra };
  }

  #track(metric: { remove(labels: Record<string, string>): void }, labels: Record<string, string>): void {
    let sets = this.#used.get(metric);
    if (!sets) this.#used.set(metric, (sets = new Map()));
    const key = JSON.stringify(labels);
    if (!sets.has(key)) sets.set(key, labels);
  }

  #inc(
    metric: { inc(labels: Record<string, string>, value?: number): void; remove(labels: Record<string, string>): void },
    extra: Record<string, string>,
    by = 1,
  ): void {
    if (this.#closed) return;
    const labels = this.#labels(extra);
    this.#track(metric, labels);
    metric.inc(labels, by);
  }

  #observe(
    metric: { observe(labels: Record<string, string>, value: number): void; remove(labels: Record<string, string>): void },
    extra: Record<string, string>,
    value: number,
  ): void {
    if (this.#closed) return;
    const labels = this.#labels(extra);
    this.#track(metric, labels);
    metric.observe(labels, value);
  }
}

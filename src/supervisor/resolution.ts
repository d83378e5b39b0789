import { addressKey, type Address } from "../core/address.js";
import type { Clock } from "../core/clock.js";
import { ResolveError } from "../core/errors.js";
import { familyOf, isFailedAnswer, type ChannelEvent, type FamilyAnswer } from "../core/events.js";
import type { Listeners } from "../core/listeners.js";
import { describeAnswers } from "../resolve/family-answers.js";
import type { Resolver } from "../resolve/resolver.js";
import type { SupervisorStats } from "./stats.js";

/** What the supervisor hears from its resolver: where its addresses come from, and the events they make. */
export interface ResolutionHandlers {
  addresses(addresses: readonly Address[]): void;
  /** A failed lookup (the last good addresses stay in force). */
  failed(error: Error): void;
}

/**
 * Watches the channel's resolver: hands each answer on, reports it (resolve,
 * resolve-failed, resolve-family-failed events) and remembers the last one,
 * for stats and for saying why a channel has no address.
 */
export class ResolutionWatch {
  readonly #resolver: Resolver;
  readonly #clock: Clock;
  readonly #events: Listeners<ChannelEvent>;
  /** When (a reading of the clock) and what the last answer was. */
  #at: number | undefined;
  #ttl: number | undefined;
  #error: Error | undefined;
  /** Why the last set was empty (undefined when it had addresses). */
  #empty: string | undefined;
  #answered = false;
  #closed = false;

  constructor(resolver: Resolver, clock: Clock, events: Listeners<ChannelEvent>) {
    this.#resolver = resolver;
    this.#clock = clock;
    this.#events = events;
  }

  start(on: ResolutionHandlers): void {
    this.#resolver.start({
      onAddresses: (set) => {
        if (this.#closed) return;
        this.#answered = true;
        this.#at = this.#clock.now();
        this.#ttl = set.ttl;
        this.#error = undefined;
        this.#empty =
          set.addresses.length > 0 ? undefined : set.answers?.length ? describeAnswers(set.answers) : `${this.#resolver.target} returned no addresses`;
        on.addresses(set.addresses);
        this.#events.emit({ type: "resolve", addresses: [...new Set(set.addresses.map(addressKey))], ttl: set.ttl });
        this.#familyFailures(set.answers);
      },
      onError: (error) => {
        on.failed(error);
        this.#answered = true;
        this.#error = error;
        if (error instanceof ResolveError) this.#familyFailures(error.answers);
        this.#events.emit({ type: "resolve-failed", error });
      },
    });
  }

  /** Every address is failing: ask for a fresh answer if the source allows it. */
  refresh(): void {
    this.#resolver.refresh?.();
  }

  close(): void {
    this.#closed = true;
    this.#resolver.close();
  }

  /** Why the channel has no address: never resolved (the error), or resolved to none (what was answered). */
  noAddressReason(): string | undefined {
    if (!this.#answered || (this.#at !== undefined && this.#empty === undefined)) return undefined;
    return this.#error?.message ?? this.#empty;
  }

  stats(): SupervisorStats["resolution"] {
    const at = this.#at;
    const ttl = this.#ttl;
    const finite = ttl !== undefined && Number.isFinite(ttl);
    const now = this.#clock.now();
    return {
      target: this.#resolver.target,
      resolvedAt: at === undefined ? undefined : new Date(this.#clock.wall() - (now - at)).toISOString(),
      ttlMs: finite ? ttl : null,
      nextRefreshInMs: finite && at !== undefined ? Math.max(0, at + ttl - now) : null,
      lastError: this.#error?.message,
      noAddresses: this.noAddressReason(),
    };
  }

  /** Each DNS family that failed in a lookup (whether or not the lookup succeeded on the other) is an event. */
  #familyFailures(answers: readonly FamilyAnswer[] | undefined): void {
    for (const a of answers ?? []) {
      if (!isFailedAnswer(a)) continue;
      this.#events.emit({
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
}

import { register as defaultRegistry, type Registry } from "prom-client";
import { ConfigError } from "../core/errors.js";
import type { ReconnectEvent } from "../core/events.js";
import { checkKeys, optionalString, requireObject } from "../core/options-check.js";
import { reconnectFamiliesFor, type ReconnectFamilies } from "./reconnect-families.js";
import type { ReconnectMetricsSource } from "./reconnect-source.js";

export interface ReconnectMetricsOptions {
  /** The `name` label (default: the handle's `name`). */
  name?: string;
}

const STATUSES = ["connected", "disconnected"] as const;

/**
 * Feeds one Reconnect handle's events into the shared families of a
 * registry; its gauges are read from the handle at scrape time. close()
 * removes every series it created. Series outlive a give-up on purpose
 * (`dialtone_reconnect_gave_up` 1 is the thing to alert on) and go when the
 * handle, or this object, is closed.
 */
export class ReconnectMetrics {
  readonly registry: Registry;
  /** The `name` label of every series. */
  readonly name: string;
  #f: ReconnectFamilies;
  #off: () => void;
  #closed = false;

  constructor(source: ReconnectMetricsSource, registry: Registry = defaultRegistry, options: ReconnectMetricsOptions = {}) {
    checkKeys("", requireObject("options", options), ["name"]);
    const name = optionalString("name", options.name) ?? source.name;
    this.#f = reconnectFamiliesFor(registry);
    if (this.#f.sources.has(name)) {
      throw new ConfigError("name", `a Reconnect handle named ${JSON.stringify(name)} already reports to this registry; give each handle its own name`);
    }
    this.registry = registry;
    this.name = name;
    this.#f.sources.set(name, source);
    // Counters exist from the start at 0, so rate() and absent() behave.
    for (const status of STATUSES) this.#f.statusChanges.inc({ name, status }, 0);
    this.#f.attempts.inc({ name }, 0);
    this.#f.failures.inc({ name }, 0);
    this.#off = source.on((e) => this.#onEvent(e));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#off();
    const name = this.name;
    this.#f.sources.delete(name);
    for (const status of STATUSES) this.#f.statusChanges.remove({ name, status });
    this.#f.attempts.remove({ name });
    this.#f.failures.remove({ name });
  }

  #onEvent(e: ReconnectEvent): void {
    if (this.#closed) return;
    const name = this.name;
    switch (e.type) {
      case "attempt":
        this.#f.attempts.inc({ name });
        break;
      case "failure":
        this.#f.failures.inc({ name });
        break;
      case "connected":
        this.#f.statusChanges.inc({ name, status: "connected" });
        break;
      case "disconnected":
        this.#f.statusChanges.inc({ name, status: "disconnected" });
        break;
      default:
        // gave-up is read from the handle at scrape time (the gauge).
        break;
    }
  }
}

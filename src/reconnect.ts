import type { Registry } from "prom-client";
import { ClosedError } from "./core/errors.js";
import { ReconnectMetrics, type ReconnectMetricsOptions } from "./metrics/reconnect-metrics.js";
import { ReconnectLoop } from "./supervisor/reconnect.js";

/**
 * The public Reconnect handle: the supervisor's reconnect loop plus
 * `metrics()`.
 *
 * Why a subclass up here: supervisor/ may not import prom-client or
 * metrics/ (imports run downward only), and metrics/ knows nothing of how
 * events are produced. So the loop exposes typed events and a read-only
 * `stats()`, metrics/ consumes them through its own ReconnectMetricsSource
 * interface, and this file, above both like index.ts, joins them. A factory
 * that metrics/ registers into the supervisor would also keep the rule, but
 * would make `metrics()` work only if some import had run first.
 * A channel's member slots do not use this loop at all (the supervisor dials
 * them, with one backoff per address); they report through the channel's own
 * metrics.
 */
export class Reconnect<T> extends ReconnectLoop<T> {
  readonly #metrics = new Set<ReconnectMetrics>();

  /**
   * Reports this handle to a prom-client Registry (default: prom-client's
   * global one) under the label name="<name>". Many handles may share a
   * registry; two with the same name are refused with ConfigError. Closing
   * the handle, or the returned object, removes its series; after a give-up
   * they stay (with dialtone_reconnect_gave_up 1) until then.
   */
  metrics(registry?: Registry, options?: ReconnectMetricsOptions): ReconnectMetrics {
    if (this.stats().closed) throw new ClosedError(`Reconnect ${JSON.stringify(this.name)}`);
    const m = new ReconnectMetrics(this, registry, options);
    this.#metrics.add(m);
    return m;
  }

  override async close(): Promise<void> {
    await super.close();
    for (const m of this.#metrics) m.close();
    this.#metrics.clear();
  }
}

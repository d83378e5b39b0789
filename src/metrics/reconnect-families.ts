import { Counter, Gauge, type Registry } from "prom-client";
import { reconnectAttemptsFor } from "./reconnect-attempts.js";
import type { ReconnectMetricsSource } from "./reconnect-source.js";

/**
 * The Reconnect-handle metric families on one registry. Many handles share
 * them, told apart by the `name` label. Gauges are computed at scrape time
 * from the handles registered here (keyed by their label), so a handle's
 * gauges vanish the moment it stops reporting.
 */
export class ReconnectFamilies {
  readonly sources = new Map<string, ReconnectMetricsSource>();
  readonly statusChanges: Counter<"name" | "status">;
  readonly attempts: Counter<"channel" | "name">;
  readonly failures: Counter<"name">;

  constructor(registry: Registry) {
    const registers = [registry];
    const sources = this.sources;
    type Snapshot = ReturnType<ReconnectMetricsSource["stats"]>;
    const gauge = (name: string, help: string, read: (s: Snapshot) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ["name"],
        registers,
        collect() {
          this.reset();
          for (const [label, s] of sources) this.set({ name: label }, read(s.stats()));
        },
      });
    };
    gauge("dialtone_reconnect_connected", "1 while the Reconnect handle holds a live connection, else 0.", (s) => (s.status === "connected" ? 1 : 0));
    gauge("dialtone_reconnect_gave_up", "1 once the Reconnect handle gave up after its backoff timeout, else 0.", (s) => (s.gaveUp ? 1 : 0));
    gauge(
      "dialtone_reconnect_backoff_seconds",
      "The backoff delay now being waited before the next attempt, seconds; 0 when connected or dialing.",
      (s) => s.backoffDelay / 1000,
    );
    // 0 rather than absent while disconnected: the series then exists exactly as
    // long as the handle reports, so absent() means "not reporting", never "down".
    gauge("dialtone_reconnect_connected_since_seconds", "Unix time the live connection was made, seconds; 0 while disconnected.", (s) =>
      s.connectedSince === undefined ? 0 : s.connectedSince / 1000,
    );
    this.statusChanges = new Counter({
      name: "dialtone_reconnect_status_changes_total",
      help: "Reconnect handle status changes, by the status entered (connected, disconnected).",
      labelNames: ["name", "status"],
      registers,
    });
    this.attempts = reconnectAttemptsFor(registry);
    this.failures = new Counter({
      name: "dialtone_reconnect_failures_total",
      help: "Failed dial attempts of a Reconnect handle.",
      labelNames: ["name"],
      registers,
    });
  }
}

const byRegistry = new WeakMap<Registry, ReconnectFamilies>();

/** The families on `registry`, registered the first time a handle asks. */
export function reconnectFamiliesFor(registry: Registry): ReconnectFamilies {
  let f = byRegistry.get(registry);
  if (!f) {
    f = new ReconnectFamilies(registry);
    byRegistry.set(registry, f);
  }
  return f;
}

import { Counter, type Registry } from "prom-client";

/**
 * `dialtone_reconnect_attempts_total` is reported by two producers: a
 * channel's member slots (label `channel`) and standalone Reconnect handles
 * (label `name`). A registry holds one metric per name, so whichever
 * registers first would make the other throw; both take the one counter
 * from here instead, and each series carries only its own label.
 */
const byRegistry = new WeakMap<Registry, Counter<"channel" | "name">>();

export function reconnectAttemptsFor(registry: Registry): Counter<"channel" | "name"> {
  let c = byRegistry.get(registry);
  if (!c) {
    c = new Counter({
      name: "dialtone_reconnect_attempts_total",
      help: "Dial attempts, by a channel's member slots (label channel) or a Reconnect handle (label name).",
      labelNames: ["channel", "name"],
      registers: [registry],
    });
    byRegistry.set(registry, c);
  }
  return c;
}

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { MemberState } from "../core/events.js";
import { reconnectAttemptsFor } from "./reconnect-attempts.js";
import { TallyHistogram, type RequestTally } from "./request-tally.js";
import type { MetricsSource } from "./source.js";

/** Every state a member can be in; the by-state gauge reports zeros too. */
const STATES: readonly MemberState[] = ["connecting", "ready", "unhealthy", "draining"];

/** PING round trips on loopback are tens of µs; across a region, tens of ms. */
const PING_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/**
 * The dialtone metric families on one registry. Many channels share them,
 * told apart by the `channel` label. Gauges are computed at scrape time from
 * the channels registered here, so a closed channel's gauges vanish with it.
 */
export class Families {
  readonly sources = new Set<MetricsSource>();
  /** Each channel's request counts (request-tally.ts), read when scraped. */
  readonly tallies = new Set<RequestTally>();
  readonly statusChanges: Counter<"channel" | "status">;
  readonly degradedEpisodes: Counter<"channel">;
  readonly pingRtt: Histogram<"channel" | "address">;
  readonly pingFailures: Counter<"channel" | "address">;
  readonly connects: Counter<"channel" | "result" | "address">;
  readonly evictions: Counter<"channel" | "reason">;
  /** Shared with Reconnect handles (they label it `name`): see reconnect-attempts.ts. */
  readonly reconnectAttempts: Counter<"channel" | "name">;
  readonly reconnectGiveups: Counter<"channel">;
  readonly resolves: Counter<"channel" | "result">;
  readonly resolveFamilyFailures: Counter<"channel" | "family" | "answer">;
  readonly requests: Counter<"channel" | "outcome">;
  readonly requestRetries: Counter<"channel">;
  readonly retryBudgetExhausted: Counter<"channel" | "kind">;
  readonly hedges: Counter<"channel">;
  readonly ejections: Counter<"channel" | "reason">;
  readonly hedgesWon: Counter<"channel">;
  readonly requestDuration: TallyHistogram;
  readonly serverErrors: Counter<"channel" | "kind">;
  readonly messagesDropped: Counter<"channel">;
  readonly memberCountChanges: Counter<"channel" | "direction">;

  constructor(registry: Registry) {
    const registers = [registry];
    const sources = this.sources;
    const tallies = this.tallies;
    // Counters fed from the tallies: each scrape adds what changed since the last.
    const flushOne = (counter: Counter<"channel">, key: "retries" | "hedges" | "hedgesWon"): void => {
      for (const t of tallies) {
        const delta = t[key] - t.flushed[key];
        if (delta > 0) counter.inc({ channel: t.channel }, delta);
        t.flushed[key] = t[key];
      }
    };
    const gauge = (name: string, help: string, read: (s: MetricsSource, set: (v: number) => void) => void): void => {
      new Gauge({
        name,
        help,
        labelNames: ["channel"],
        registers,
        collect() {
          this.reset();
          for (const s of sources) read(s, (v) => this.set({ channel: s.name }, v));
        },
      });
    };
    gauge("dialtone_members_wanted", "Members the channel keeps warm now (its members option; within { min, max } it follows load).", (s, set) =>
      set(s.stats().wanted),
    );
    gauge("dialtone_members_current", "Members that exist now, in any state but closed.", (s, set) => set(s.stats().members.length));
    gauge("dialtone_members_healthy", "Members that are ready: connected and answering PINGs.", (s, set) => set(s.stats().ready));
    gauge("dialtone_channel_connected", "1 when the channel has at least one usable member, else 0.", (s, set) =>
      set(s.stats().status === "connected" ? 1 : 0),
    );
    gauge("dialtone_channel_degraded", "1 while the channel is in degraded mode, else 0.", (s, set) => set(s.stats().degraded ? 1 : 0));
    gauge("dialtone_resolved_addresses", "Addresses the channel's discovery currently returns.", (s, set) => set(s.stats().addresses.length));
    new Gauge({
      name: "dialtone_members_by_state",
      help: "Members by state (connecting, ready, unhealthy, draining).",
      labelNames: ["channel", "state"],
      registers,
      collect() {
        this.reset();
        for (const s of sources) {
          const counts = new Map<string, number>(STATES.map((st) => [st, 0]));
          for (const m of s.stats().members) if (counts.has(m.state)) counts.set(m.state, (counts.get(m.state) ?? 0) + 1);
          for (const [state, n] of counts) this.set({ channel: s.name, state }, n);
        }
      },
    });
    this.statusChanges = new Counter({
      name: "dialtone_status_changes_total",
      help: "Channel status changes, by the status entered.",
      labelNames: ["channel", "status"],
      registers,
    });
    this.degradedEpisodes = new Counter({
      name: "dialtone_degraded_episodes_total",
      help: "Times the channel entered degraded mode.",
      labelNames: ["channel"],
      registers,
    });
    this.pingRtt = new Histogram({
      name: "dialtone_ping_rtt_seconds",
      help: "PING/PONG round trip of members, seconds (address label only when opted in).",
      labelNames: ["channel", "address"],
      buckets: PING_BUCKETS,
      registers,
    });
    this.pingFailures = new Counter({
      name: "dialtone_ping_failures_total",
      help: "PINGs that failed or got no PONG in time (address label only when opted in).",
      labelNames: ["channel", "address"],
      registers,
    });
    this.connects = new Counter({
      name: "dialtone_connects_total",
      help: "Member dials, by result (ok, error).",
      labelNames: ["channel", "result", "address"],
      registers,
    });
    this.evictions = new Counter({
      name: "dialtone_evictions_total",
      help: "Members taken out of service, by reason (unhealthy, peer_closed, goaway, lame_duck, address_removed, rebalanced, surplus).",
      labelNames: ["channel", "reason"],
      registers,
    });
    this.reconnectAttempts = reconnectAttemptsFor(registry);
    this.reconnectGiveups = new Counter({
      name: "dialtone_reconnect_giveups_total",
      help: "Member slots that gave up after their backoff timeout.",
      labelNames: ["channel"],
      registers,
    });
    this.resolves = new Counter({
      name: "dialtone_resolves_total",
      help: "Address resolutions, by result (ok, error).",
      labelNames: ["channel", "result"],
      registers,
    });
    this.resolveFamilyFailures = new Counter({
      name: "dialtone_resolve_family_failures_total",
      help: "DNS families (ipv4, ipv6, srv) that failed in a lookup, by answer (timeout, servfail, refused, notimp, formerr, malformed, error); the family kept its last good addresses.",
      labelNames: ["channel", "family", "answer"],
      registers,
    });
    this.requests = new Counter({
      name: "dialtone_requests_total",
      help: "Requests, by outcome (ok, error, timeout, no_member, queue_full, overloaded, aborted, closed).",
      labelNames: ["channel", "outcome"],
      registers,
      collect() {
        for (const t of tallies) {
          for (const [outcome, n] of t.outcomes) {
            const delta = n - (t.flushed.outcomes.get(outcome) ?? 0);
            if (delta > 0) this.inc({ channel: t.channel, outcome }, delta);
            t.flushed.outcomes.set(outcome, n);
          }
        }
      },
    });
    this.requestRetries = new Counter({
      name: "dialtone_request_retries_total",
      help: "Requests re-sent on another member.",
      labelNames: ["channel"],
      registers,
      collect() {
        flushOne(this, "retries");
      },
    });
    this.ejections = new Counter({
      name: "dialtone_ejections_total",
      help: "Members ejected by outlier detection, by reason (consecutive_5xx, consecutive_gateway, consecutive_local).",
      labelNames: ["channel", "reason"],
      registers,
    });
    this.hedges = new Counter({
      name: "dialtone_hedges_total",
      help: "Hedged attempts sent: extra attempts of idempotent calls still waiting for an answer.",
      labelNames: ["channel"],
      registers,
      collect() {
        flushOne(this, "hedges");
      },
    });
    this.hedgesWon = new Counter({
      name: "dialtone_hedges_won_total",
      help: "Calls whose answer came from a hedged attempt.",
      labelNames: ["channel"],
      registers,
      collect() {
        flushOne(this, "hedgesWon");
      },
    });
    this.retryBudgetExhausted = new Counter({
      name: "dialtone_retry_budget_exhausted_total",
      help: "Retries and hedges not sent because the retry budget was spent, by kind (retry, hedge; hedge-load: past hedge.maxExtraLoad).",
      labelNames: ["channel", "kind"],
      registers,
    });
    // No subject label: subjects are unbounded, and the event carries them.
    this.serverErrors = new Counter({
      name: "dialtone_server_errors_total",
      help: "-ERR messages servers sent on live connections, by kind (permission, auth, protocol).",
      labelNames: ["channel", "kind"],
      registers,
    });
    this.messagesDropped = new Counter({
      name: "dialtone_messages_dropped_total",
      help: "Messages dropped because a subscription's reader fell behind its bounded buffer.",
      labelNames: ["channel"],
      registers,
    });
    this.memberCountChanges = new Counter({
      name: "dialtone_member_count_changes_total",
      help: "Times members that follow load grew or shrank the member count, by direction (up, down).",
      labelNames: ["channel", "direction"],
      registers,
    });
    this.requestDuration = new TallyHistogram(
      registry,
      "dialtone_request_duration_seconds",
      "Whole-request duration including waiting and retries, seconds.",
      tallies,
    );
  }
}

const byRegistry = new WeakMap<Registry, Families>();

/** The families on `registry`, registered the first time a channel asks. */
export function familiesFor(registry: Registry): Families {
  let f = byRegistry.get(registry);
  if (!f) {
    f = new Families(registry);
    byRegistry.set(registry, f);
  }
  return f;
}

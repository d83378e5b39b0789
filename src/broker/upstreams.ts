import type { Registry } from "prom-client";
import {
  ConfigError,
  createHttp2Channel,
  createNatsChannel,
  type ChannelEvent,
  type ChannelStats,
  type Http2Channel,
  type Http2ChannelOptions,
  type NatsChannel,
  type NatsChannelOptions,
} from "../index.js";
import { describeUpstream, type UpstreamConfig } from "./config.js";
import { EventLog, type LoggedEvent } from "./event-log.js";
import { checkUpstream } from "./upstream-options.js";

type Channel = Http2Channel | NatsChannel;

/** One configured upstream and, while it is in use, its channel. */
class Upstream {
  readonly config: UpstreamConfig;
  channel: Channel | undefined;
  /** Epoch ms of the last request start or end; undefined before the first. */
  lastActivity: number | undefined;
  inFlight = 0;
  readonly log = new EventLog();
  #off: (() => void) | undefined;
  #metrics: { close(): void } | undefined;

  constructor(config: UpstreamConfig) {
    this.config = config;
  }

  open(registry: Registry): Channel {
    if (this.channel) return this.channel;
    // `name` (the metrics label) is the upstream's own unless its options say otherwise.
    const base = { name: this.config.name, ...this.config.options, target: this.config.target };
    const ch: Channel = this.config.kind === "nats" ? createNatsChannel(base as NatsChannelOptions) : createHttp2Channel(base as Http2ChannelOptions);
    this.#metrics = ch.metrics(registry);
    this.#off = ch.on((e) => this.log.record(e));
    this.log.note("channel opened");
    this.channel = ch;
    return ch;
  }

  /**
   * Graceful: the channel lets in-flight calls finish (its closeGrace) before
   * its sockets go. Its metrics leave the registry at once, not when the
   * close ends: a replacement channel under the same name (a reload, or a
   * request right after reaping) must be able to report while this one
   * drains.
   */
  async shut(why: string): Promise<void> {
    const ch = this.channel;
    if (!ch) return;
    this.channel = undefined;
    this.#off?.();
    this.#off = undefined;
    this.#metrics?.close();
    this.#metrics = undefined;
    this.log.note(`channel closed (${why})`);
    await ch.close();
  }
}

export interface UpstreamSnapshot {
  name: string;
  kind: "http2" | "nats";
  target: string;
  hosts: string[];
  default: boolean;
  warm: boolean;
  open: boolean;
  in_flight: number;
  last_activity: string | null;
  idle_timeout: number;
  time_remaining: number | null;
  is_healthy: boolean;
  is_connected: boolean;
  channel: ChannelStats | null;
  rtt: Record<string, number[]>;
  events: LoggedEvent[];
}

/**
 * The broker's channels: made on first use (or at start when `warm`),
 * tracked for activity, closed after `idle.timeout` without requests, and
 * re-made transparently by the next request. Reload replaces only what
 * changed.
 */
export class Upstreams {
  readonly #registry: Registry;
  readonly #idleTimeout: number;
  #byName = new Map<string, Upstream>();
  #closed = false;

  constructor(configs: readonly UpstreamConfig[], registry: Registry, idleTimeout: number) {
    this.#registry = registry;
    this.#idleTimeout = idleTimeout;
    for (const c of configs) this.#byName.set(c.name, new Upstream(c));
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  kindOf(name: string): "http2" | "nats" | undefined {
    return this.#byName.get(name)?.config.kind;
  }

  /** Opens every `warm` upstream now, so its first request finds members ready. */
  warmUp(): void {
    for (const u of this.#byName.values()) if (u.config.warm) u.open(this.#registry);
  }

  /**
   * A channel for one request; `release()` must be called when the request
   * is over (its body too). While any request holds it the channel is never
   * reaped.
   */
  acquire<K extends "http2" | "nats">(name: string, kind: K): { channel: K extends "http2" ? Http2Channel : NatsChannel; release(): void } {
    const u = this.#byName.get(name);
    if (!u || u.config.kind !== kind || this.#closed) throw new ConfigError(`upstream ${name}`, `no ${kind} upstream named ${JSON.stringify(name)}`);
    const channel = u.open(this.#registry);
    u.inFlight++;
    u.lastActivity = Date.now();
    let done = false;
    return {
      channel: channel as K extends "http2" ? Http2Channel : NatsChannel,
      release() {
        if (done) return;
        done = true;
        u.inFlight--;
        u.lastActivity = Date.now();
      },
    };
  }

  /** Closes channels idle for idle.timeout. Warm upstreams stay open: /readyz promises them. */
  reapIdle(now = Date.now()): string[] {
    if (this.#idleTimeout === 0) return [];
    const reaped: string[] = [];
    for (const u of this.#byName.values()) {
      if (!u.channel || u.config.warm || u.inFlight > 0) continue;
      if (now - (u.lastActivity ?? 0) < this.#idleTimeout) continue;
      reaped.push(u.config.name);
      void u.shut("idle").catch(() => {});
    }
    return reaped;
  }

  /**
   * SIGHUP: upstreams that are new are added, removed ones closed, changed
   * ones (any setting) closed and re-made lazily; unchanged ones keep their
   * channel and its warm members.
   */
  async apply(configs: readonly UpstreamConfig[]): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const next = new Map<string, Upstream>();
    const added: string[] = [];
    const changed: string[] = [];
    const closing: Array<Promise<void>> = [];
    for (const c of configs) {
      const old = this.#byName.get(c.name);
      if (old && sameConfig(old.config, c)) {
        next.set(c.name, old);
        continue;
      }
      if (old) {
        changed.push(c.name);
        closing.push(old.shut("config changed"));
      } else added.push(c.name);
      next.set(c.name, new Upstream(c));
    }
    const removed = [...this.#byName.keys()].filter((n) => !next.has(n));
    for (const n of removed) closing.push(this.#byName.get(n)?.shut("removed from config") ?? Promise.resolve());
    this.#byName = next;
    this.warmUp();
    await Promise.allSettled(closing);
    return { added, changed, removed };
  }

  get inFlight(): number {
    let n = 0;
    for (const u of this.#byName.values()) n += u.inFlight;
    return n;
  }

  /** Every warm upstream that has no usable member now. */
  notReady(): string[] {
    return [...this.#byName.values()].filter((u) => u.config.warm && !u.channel?.connected).map((u) => u.config.name);
  }

  snapshot(now = Date.now()): UpstreamSnapshot[] {
    return [...this.#byName.values()].map((u) => {
      const stats = u.channel?.stats() ?? null;
      const remaining = u.channel && !u.config.warm && this.#idleTimeout > 0 ? Math.max(0, this.#idleTimeout - (now - (u.lastActivity ?? now))) : null;
      return {
        ...describeUpstream(u.config),
        open: u.channel !== undefined,
        in_flight: u.inFlight,
        last_activity: u.lastActivity === undefined ? null : new Date(u.lastActivity).toISOString(),
        idle_timeout: this.#idleTimeout,
        time_remaining: remaining,
        is_healthy: stats !== null && stats.ready > 0 && !stats.degraded,
        is_connected: u.channel?.connected ?? false,
        channel: stats,
        rtt: u.log.rtts(),
        events: u.log.recent(),
      };
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#byName.values()].map((u) => u.shut("broker stopping")));
  }
}

function sameConfig(a: UpstreamConfig, b: UpstreamConfig): boolean {
  // TLS material is read into Buffers; JSON turns them into comparable arrays.
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Checks an upstream's (already resolved) channel options again, as creating its channel would, without making one. */
export function validateUpstream(u: UpstreamConfig): void {
  checkUpstream(`upstreams.${u.name}`, u.kind, u.target, u.name, u.options);
}

export type { ChannelEvent };

import { HealthChecker, type HealthReport } from "../health/health-checker.js";
import type { HealthOptions } from "../health/options.js";
import type { Clock, Timer } from "../core/clock.js";
import type { PoolMemberRef } from "../pool/pool.js";
import type { MemberConnection } from "./connection.js";

/**
 * The supervisor's side of one member: only its effects — the connection
 * (through the pool's load record), its health checker, and how far the
 * supervisor's own work on it got. Its state (connecting, ready, …) is the
 * regulator's record alone.
 */
export class MemberEffects<C extends MemberConnection> {
  readonly entry: PoolMemberRef<C>;
  /** The slot it was dialed for (fixed, like its id and address). */
  readonly slot: number;
  readonly health: HealthChecker;
  /** Dialed, first PING not answered yet. */
  warming = true;
  /** The connection reported itself closed. */
  connClosed = false;
  /** Destroyed and out of the pool. */
  finished = false;
  /** Rejects when the connection dies or is told to go away during warm-up. */
  readonly failed: Promise<never>;
  readonly fail: (error: Error) => void;

  constructor(entry: PoolMemberRef<C>, slot: number, health: HealthOptions, onHealth: (r: HealthReport) => void, random: () => number, clock: Clock) {
    this.entry = entry;
    this.slot = slot;
    let fail!: (error: Error) => void;
    this.failed = new Promise<never>((_, reject) => (fail = reject));
    // Only a warm-up awaits it; later failures must not surface as unhandled.
    this.failed.catch(() => {});
    this.fail = fail;
    this.health = new HealthChecker(entry.connection, health, onHealth, random, clock);
  }

  /**
   * The warm-up's first PING: its round trip, or a rejection when no PONG
   * comes within `timeout` (`timedOut()`'s error) or the connection dies or
   * is told to go away first (fail()).
   */
  async firstPing(timeout: number, clock: Clock, timedOut: () => Error): Promise<number> {
    let timer: Timer | undefined;
    try {
      return await Promise.race([
        this.entry.connection.ping(timeout),
        new Promise<never>((_, reject) => {
          timer = clock.setTimeout(() => reject(timedOut()), timeout);
        }),
        this.failed,
      ]);
    } finally {
      timer?.cancel();
    }
  }

  get id(): number {
    return this.entry.id;
  }

  get key(): string {
    return this.entry.key;
  }

  get connection(): C {
    return this.entry.connection;
  }
}

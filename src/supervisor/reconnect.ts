import pRetry from "p-retry";
import { raceSignal, sleep } from "../core/abort.js";
import { ClosedError, ConfigError, DialtoneError, GaveUpError, asError } from "../core/errors.js";
import { checkKeys, describeType, optionalBoolean, optionalString, requireObject } from "../core/options-check.js";
import { iterateEvents } from "../core/event-iterator.js";
import type { ConnectionStatus, ReconnectEvent } from "../core/events.js";
import { Listeners } from "../core/listeners.js";
import { RECONNECT_BACKOFF, baseDelay, jitterExtra, resolveBackoff, type BackoffOptions } from "./backoff.js";
import { StatusStream } from "./status-stream.js";

export type { ConnectionStatus, ReconnectEvent };

/** A read-only snapshot of a handle, for scrapes and dashboards. */
export interface ReconnectStats {
  status: ConnectionStatus;
  /** Unix time in ms when the live connection was made; undefined while disconnected. */
  connectedSince: number | undefined;
  /** The backoff delay (ms, jitter included) now being waited before the next attempt; 0 when not waiting. */
  backoffDelay: number;
  /** True once the handle gave up after `backoff.timeout` of failures. */
  gaveUp: boolean;
  /** True once close() was called (or the signal aborted). */
  closed: boolean;
}

export interface ReconnectOptions<T> {
  /** Opens one connection. Must honour `signal`. */
  connect(context: { signal: AbortSignal; attempt: number }): Promise<T>;
  /** Settles when the connection is gone (the value or reason is the cause, if any). */
  lost(connection: T): Promise<unknown>;
  /** Closes a connection when the handle is closed. */
  dispose?(connection: T): void | Promise<void>;
  backoff?: Partial<BackoffOptions>;
  /** Aborting it closes the handle. */
  signal?: AbortSignal;
  /** Used in error messages. */
  name?: string;
  /**
   * Let backoff timers not keep the process alive (default false: a handle
   * someone holds is work in progress, like a socket).
   */
  unref?: boolean;
}

/**
 * Keeps one connection alive: connect, wait until it is lost, reconnect with
 * exponential backoff (p-retry), and give up after `backoff.timeout` of
 * continuous failure. Each disconnected period is one p-retry run, so the
 * delay and the give-up clock both reset after every success.
 *
 * `status()` streams connected/disconnected with current-state semantics;
 * `closed()` resolves on close() and rejects with GaveUpError on give-up.
 */
export class ReconnectLoop<T> implements AsyncDisposable {
  readonly backoff: BackoffOptions;
  readonly name: string;
  #options: ReconnectOptions<T>;
  #abort = new AbortController();
  #status = new StatusStream<ConnectionStatus>("disconnected");
  #events = new Listeners<ReconnectEvent>();
  #current: T | undefined;
  #done: Promise<void>;
  #lastError: Error | undefined;
  #connectedSince: number | undefined;
  #backoffDelay = 0;
  #gaveUp = false;

  constructor(options: ReconnectOptions<T>) {
    checkReconnectOptions(options);
    this.backoff = resolveBackoff(options.backoff, RECONNECT_BACKOFF);
    this.name = options.name ?? "reconnect";
    this.#options = options;
    if (options.signal) {
      if (options.signal.aborted) this.#abort.abort(options.signal.reason);
      else options.signal.addEventListener("abort", () => void this.close(), { once: true });
    }
    // Started on a microtask so listeners added right after construction see attempt 1.
    this.#done = Promise.resolve().then(() => this.#run());
    // closed() may never be called; the rejection is still observed here.
    this.#done.catch(() => {});
  }

  /** The live connection, if connected. */
  get current(): T | undefined {
    return this.#current;
  }

  get state(): ConnectionStatus {
    return this.#status.current;
  }

  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** Connected/Disconnected as the consumer finds it; ends when the handle closes. */
  status(signal?: AbortSignal): AsyncGenerator<ConnectionStatus, void, undefined> {
    return this.#status.watch(signal);
  }

  stats(): ReconnectStats {
    return {
      status: this.#status.current,
      connectedSince: this.#connectedSince,
      backoffDelay: this.#backoffDelay,
      gaveUp: this.#gaveUp,
      closed: this.#abort.signal.aborted,
    };
  }

  /** Subscribes to the typed event stream; returns the unsubscribe function. */
  on(listener: (event: ReconnectEvent) => void): () => void {
    return this.#events.add(listener);
  }

  /**
   * The event stream as an async iterator, with a bounded buffer (default
   * 1024): a slow reader loses the oldest events and is told how many.
   */
  events(options: { signal?: AbortSignal; bufferSize?: number } = {}): AsyncGenerator<ReconnectEvent, void, undefined> {
    return iterateEvents(this.#events, options);
  }

  /** Resolves when closed; rejects with GaveUpError when the handle gave up. */
  closed(): Promise<void> {
    return this.#done;
  }

  /** Stops the loop, closes the live connection, and waits for both. */
  async close(): Promise<void> {
    if (!this.#abort.signal.aborted) this.#abort.abort(new ClosedError(this.name));
    await this.#done.catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    try {
      while (!signal.aborted) {
        const conn = await this.#connectWithBackoff(signal);
        let cause: Error | undefined;
        try {
          // A lost() that settles with an Error, either way, names the cause.
          // Closing the handle ends the wait as if the connection were lost.
          const value = await raceSignal(this.#options.lost(conn), signal).catch((e: unknown) => {
            if (signal.aborted) return undefined;
            throw e;
          });
          if (value instanceof Error && !signal.aborted) cause = value;
        } catch (err) {
          cause = signal.aborted ? undefined : asError(err);
        }
        this.#current = undefined;
        this.#connectedSince = undefined;
        if (signal.aborted) {
          await this.#dispose(conn);
          break;
        }
        this.#lastError = cause;
        this.#status.set("disconnected");
        this.#events.emit({ type: "disconnected", error: cause });
      }
    } catch (err) {
      if (!signal.aborted) {
        const gaveUp = err instanceof GaveUpError ? err : new GaveUpError(this.name, this.backoff.timeout, 0, err);
        this.#gaveUp = true;
        this.#backoffDelay = 0;
        this.#events.emit({ type: "gave-up", error: gaveUp });
        throw gaveUp;
      }
    } finally {
      this.#backoffDelay = 0;
      this.#status.end("disconnected");
    }
  }

  /** One disconnected period: attempts until connected, aborted, or timed out. */
  #connectWithBackoff(signal: AbortSignal): Promise<T> {
    const b = this.backoff;
    let attempts = 0;
    let jitterWait = 0;
    return pRetry(
      async (attempt: number) => {
        attempts = attempt;
        this.#backoffDelay = 0;
        this.#events.emit({ type: "attempt", attempt });
        let conn: T;
        try {
          conn = await this.#options.connect({ signal, attempt });
        } catch (err) {
          // p-retry refuses to retry TypeErrors (and turns non-Errors into them); a failed dial is always retryable.
          if (err instanceof TypeError || !(err instanceof Error)) {
            throw new DialtoneError("ERR_DIALTONE_CONNECT", asError(err).message, { cause: err });
          }
          throw err;
        }
        if (signal.aborted) {
          await this.#dispose(conn);
          throw signal.reason;
        }
        // State first, then the event: a listener that reads stats() (a scrape) sees it connected.
        this.#current = conn;
        // A timestamp shown to people (stats), not a duration. Reconnect is not a channel and takes no
        // clock: its waits are p-retry's timers, on the system clock.
        this.#connectedSince = Date.now();
        this.#status.set("connected");
        this.#events.emit({ type: "connected", attempt });
        return conn;
      },
      {
        retries: Number.POSITIVE_INFINITY,
        factor: b.multiplier,
        minTimeout: b.initial,
        maxTimeout: b.max,
        randomize: false,
        maxRetryTime: b.timeout === 0 ? Number.POSITIVE_INFINITY : b.timeout,
        signal,
        unref: this.#options.unref ?? false,
        onFailedAttempt: async ({ error, attemptNumber }) => {
          this.#lastError = error;
          const base = baseDelay(b, attemptNumber);
          jitterWait = jitterExtra(b, base);
          this.#backoffDelay = base + jitterWait;
          this.#events.emit({ type: "failure", attempt: attemptNumber, error, delay: base + jitterWait });
          // p-retry's own jitter doubles delays; ours is a bounded fraction, added here.
          if (jitterWait > 0) await sleep(jitterWait, signal, this.#options.unref ?? false);
        },
      },
    ).catch((err: unknown) => {
      if (signal.aborted) throw err;
      throw new GaveUpError(this.name, b.timeout, attempts, err);
    });
  }

  async #dispose(conn: T): Promise<void> {
    try {
      await this.#options.dispose?.(conn);
    } catch {
      // Closing a connection we are abandoning cannot fail in a way anyone can act on.
    }
  }
}

const RECONNECT_KEYS: Readonly<Record<keyof ReconnectOptions<unknown>, true>> = {
  connect: true,
  lost: true,
  dispose: true,
  backoff: true,
  signal: true,
  name: true,
  unref: true,
};

/**
 * Checked before anything starts: an unknown key (`onLost`, `timeout` at the
 * top instead of in `backoff`) or a missing `lost` would otherwise surface
 * only as a handle that never reconnects, or a TypeError on a microtask.
 */
function checkReconnectOptions(options: unknown): void {
  const o = requireObject("options", options);
  checkKeys("", o, Object.keys(RECONNECT_KEYS));
  for (const k of ["connect", "lost"] as const) {
    if (typeof o[k] !== "function") throw new ConfigError(k, `expected a function, got ${describeType(o[k])}`);
  }
  if (o.dispose !== undefined && typeof o.dispose !== "function") throw new ConfigError("dispose", `expected a function, got ${describeType(o.dispose)}`);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new ConfigError("signal", `expected an AbortSignal, got ${describeType(o.signal)}`);
  optionalString("name", o.name);
  optionalBoolean("unref", o.unref);
}

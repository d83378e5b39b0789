import { constants, type ClientHttp2Stream, type OutgoingHttpHeaders } from "node:http2";
import { raceSignal } from "../../core/abort.js";
import { ClosedError, ConfigError, DialtoneError, NoMemberError, QueueFullError, RequestError, RequestTimeoutError } from "../../core/errors.js";
import { iterateEvents } from "../../core/event-iterator.js";
import type { Registry } from "prom-client";
import { ChannelMetrics, type MetricsOptions } from "../../metrics/channel-metrics.js";
import type { ChannelEvent, ConnectionStatus, RequestOutcome } from "../../core/events.js";
import { Supervisor, type SupervisorStats } from "../../supervisor/supervisor.js";
import type { Http2Connection } from "./connection.js";
import { Http2Connector } from "./connector.js";
import { resolveHttp2Options, type Http2ChannelOptions, type ResolvedHttp2Options } from "./options.js";
import { sendOnConnection, type Http2RequestInit, type Http2Response } from "./request.js";

export interface Http2StreamInit {
  method?: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  /** Leave the request side open for the caller to write (default false: end it at once). */
  endStream?: boolean;
  signal?: AbortSignal;
}

/**
 * An always-warm HTTP/2 channel: N members across distinct addresses,
 * PING-checked, P2C-balanced, degraded rather than dark, and safe retries
 * where HTTP/2 proves a request was not processed.
 */
export class Http2Channel implements AsyncDisposable {
  readonly target: string;
  /** The `channel` label of its metrics. */
  readonly name: string;
  #metrics = new Set<ChannelMetrics>();
  readonly #o: ResolvedHttp2Options;
  readonly #sup: Supervisor<Http2Connection>;

  constructor(options: Http2ChannelOptions) {
    this.#o = resolveHttp2Options(options);
    this.target = this.#o.target;
    this.name = this.#o.name;
    const connector = new Http2Connector({
      url: this.#o.url,
      target: this.target,
      tls: this.#o.tls,
      connectTimeout: this.#o.connectTimeout,
    });
    this.#sup = new Supervisor<Http2Connection>({
      target: this.target,
      resolver: this.#o.resolver,
      connector,
      members: this.#o.members,
      health: this.#o.health,
      backoff: this.#o.backoff,
      criticalMin: this.#o.criticalMin,
      balancer: this.#o.balancer,
      acquireTimeout: this.#o.acquireTimeout,
      maxQueue: this.#o.maxQueue,
      closeGrace: this.#o.closeGrace,
      drainTimeout: this.#o.drainTimeout,
      random: this.#o.random,
    });
  }

  /** Resolves when every member is connected and has answered a PING. Pass a signal to bound the wait. */
  ready(signal?: AbortSignal): Promise<void> {
    return this.#sup.ready(signal);
  }

  /**
   * One request/response. Retried on another member only when HTTP/2 proves
   * the first attempt was not processed, or when `idempotent` is set.
   */
  async request(init: Http2RequestInit): Promise<Http2Response> {
    validateInit(init);
    // Outcome events cost an allocation per request, so only when someone listens.
    if (this.#sup.events.size === 0) return this.#request(init, { retries: 0, address: undefined });
    const started = performance.now();
    const trace = { retries: 0, address: undefined as string | undefined };
    try {
      const res = await this.#request(init, trace);
      this.#sup.events.emit({ type: "request", outcome: "ok", durationMs: performance.now() - started, retries: trace.retries, code: undefined, address: trace.address });
      return res;
    } catch (err) {
      const outcome = outcomeOf(err, init.signal);
      const code = err instanceof DialtoneError ? err.code : (err as NodeJS.ErrnoException | undefined)?.code;
      this.#sup.events.emit({ type: "request", outcome, durationMs: performance.now() - started, retries: trace.retries, code, address: trace.address });
      throw err;
    }
  }

  async #request(init: Http2RequestInit, trace: { retries: number; address: string | undefined }): Promise<Http2Response> {
    const timeout = init.timeout ?? this.#o.requestTimeout;
    const deadline = performance.now() + timeout;
    const attempts = 1 + this.#o.maxRetries;
    let last: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw last ?? new RequestTimeoutError(this.target, undefined, timeout);
      const lease = await this.#sup.acquire(init.signal, Math.min(this.#o.acquireTimeout, remaining));
      trace.retries = attempt - 1;
      trace.address = lease.member.key;
      const started = performance.now();
      try {
        const res = await sendOnConnection(lease.connection, this.target, init, Math.max(1, deadline - started), this.#o.maxResponseBytes);
        lease.release(performance.now() - started);
        return res;
      } catch (err) {
        lease.release();
        last = err;
        if (!(err instanceof RequestError)) throw err;
        this.#sup.noteError(err);
        const retryable = err.unprocessed || (init.idempotent === true && !(err instanceof RequestTimeoutError));
        if (!retryable || init.signal?.aborted) throw err;
      }
    }
    throw last;
  }

  /**
   * A raw ClientHttp2Stream on a picked member; it counts as in flight until
   * it closes. No retries: the caller owns the stream.
   */
  async stream(init: Http2StreamInit): Promise<ClientHttp2Stream> {
    validateInit(init);
    const lease = await this.#sup.acquire(init.signal);
    let stream: ClientHttp2Stream;
    try {
      stream = lease.connection.session.request(
        { ...init.headers, ":method": (init.method ?? "GET").toUpperCase(), ":path": init.path },
        { endStream: init.endStream ?? true, signal: init.signal },
      );
    } catch (err) {
      lease.release();
      throw new RequestError("ERR_DIALTONE_MEMBER_LOST", this.target, lease.member.key, `stream not opened: ${(err as Error).message}`, true, { cause: err });
    }
    lease.connection.track(stream);
    const started = performance.now();
    stream.once("close", () => lease.release(stream.rstCode === constants.NGHTTP2_NO_ERROR ? performance.now() - started : undefined));
    return stream;
  }

  /** Connected/Disconnected with current-state semantics; ends when the channel closes. */
  status(signal?: AbortSignal): AsyncGenerator<ConnectionStatus, void, undefined> {
    return this.#sup.status(signal);
  }

  /** The status now, without waiting. */
  get connected(): boolean {
    return this.#sup.statusNow === "connected";
  }

  /** A JSON snapshot of members, addresses and state. */
  stats(): SupervisorStats {
    return this.#sup.stats();
  }

  /** Subscribes to the typed event stream; returns the unsubscribe function. */
  on(listener: (event: ChannelEvent) => void): () => void {
    return this.#sup.events.add(listener);
  }

  /**
   * The event stream as an async iterator, with a bounded buffer (default
   * 1024): a slow reader loses the oldest events and is told how many.
   */
  events(options: { signal?: AbortSignal; bufferSize?: number } = {}): AsyncGenerator<ChannelEvent, void, undefined> {
    return iterateEvents(this.#sup.events, options);
  }

  /** Waits until `predicate` holds for an event, or the signal aborts. */
  waitFor<E extends ChannelEvent>(predicate: (e: ChannelEvent) => e is E, signal?: AbortSignal): Promise<E> {
    let off: () => void = () => {};
    const p = new Promise<E>((resolve) => {
      off = this.on((e) => {
        if (predicate(e)) resolve(e);
      });
    });
    return raceSignal(p, signal).finally(off);
  }

  /**
   * Reports this channel to a prom-client Registry (default: prom-client's
   * global one) under the label channel="<name>". Many channels may share a
   * registry; closing the channel, or the returned handle, removes its series.
   */
  metrics(registry?: Registry, options?: MetricsOptions): ChannelMetrics {
    if (this.#sup.closed) throw new ClosedError(`channel ${this.target}`);
    const m = new ChannelMetrics(this, registry, options);
    this.#metrics.add(m);
    return m;
  }

  async close(): Promise<void> {
    await this.#sup.close();
    for (const m of this.#metrics) m.close();
    this.#metrics.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

export function createHttp2Channel(options: Http2ChannelOptions): Http2Channel {
  return new Http2Channel(options);
}

function validateInit(init: { path: string; method?: string }): void {
  if (!init || typeof init.path !== "string" || !init.path.startsWith("/")) {
    throw new ConfigError("path", `expected a path starting with "/", got ${JSON.stringify(init?.path)}`);
  }
  if (init.method !== undefined && !/^[A-Za-z]+$/.test(init.method)) {
    throw new ConfigError("method", `invalid HTTP method ${JSON.stringify(init.method)}`);
  }
}

function outcomeOf(err: unknown, signal: AbortSignal | undefined): RequestOutcome {
  if (err instanceof RequestTimeoutError) return "timeout";
  if (err instanceof NoMemberError) return "no-member";
  if (err instanceof QueueFullError) return "queue-full";
  if (err instanceof ClosedError) return "closed";
  if (signal?.aborted) return "aborted";
  return "error";
}

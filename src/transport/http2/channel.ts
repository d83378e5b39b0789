import { constants, type ClientHttp2Stream, type OutgoingHttpHeaders } from "node:http2";
import { raceSignal } from "../../core/abort.js";
import { ConfigError, RequestError, RequestTimeoutError } from "../../core/errors.js";
import type { ChannelEvent } from "../../supervisor/events.js";
import type { ConnectionStatus } from "../../supervisor/reconnect.js";
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
  readonly #o: ResolvedHttp2Options;
  readonly #sup: Supervisor<Http2Connection>;

  constructor(options: Http2ChannelOptions) {
    this.#o = resolveHttp2Options(options);
    this.target = this.#o.target;
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
    const timeout = init.timeout ?? this.#o.requestTimeout;
    const deadline = performance.now() + timeout;
    const attempts = 1 + this.#o.maxRetries;
    let last: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw last ?? new RequestTimeoutError(this.target, undefined, timeout);
      const lease = await this.#sup.acquire(init.signal, Math.min(this.#o.acquireTimeout, remaining));
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

  close(): Promise<void> {
    return this.#sup.close();
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

import { constants, type ClientHttp2Stream, type OutgoingHttpHeaders } from "node:http2";
import { ConfigError, RequestError } from "../../core/errors.js";
import { ChannelBase } from "../channel-base.js";
import { supervisorFor } from "../common-options.js";
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
export class Http2Channel extends ChannelBase<Http2Connection> {
  readonly #o: ResolvedHttp2Options;

  constructor(options: Http2ChannelOptions) {
    const o = resolveHttp2Options(options);
    const connector = new Http2Connector({ url: o.url, target: o.target, tls: o.tls, connectTimeout: o.connectTimeout });
    super(o.target, o.name, supervisorFor<Http2Connection>(o, o.target, o.resolver, connector));
    this.#o = o;
  }

  /**
   * One request/response. Retried on another member only when HTTP/2 proves
   * the first attempt was not processed, or when `idempotent` is set.
   */
  async request(init: Http2RequestInit): Promise<Http2Response> {
    validateInit(init);
    return await this.call(
      { signal: init.signal, timeout: init.timeout ?? this.#o.requestTimeout, idempotent: init.idempotent },
      this.#o,
      (lease, budget) => sendOnConnection(lease.connection, this.target, init, budget, this.#o.maxResponseBytes),
    );
  }

  /**
   * A raw ClientHttp2Stream on a picked member; it counts as in flight until
   * it closes. No retries: the caller owns the stream.
   */
  async stream(init: Http2StreamInit): Promise<ClientHttp2Stream> {
    validateInit(init);
    const lease = await this.sup.acquire(init.signal);
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

/**
 * `dialtone/grpc-js`: a grpc-js channel (its public ChannelInterface) over a
 * dialtone HTTP/2 channel. Handed to a grpc-js Client as `channelOverride`,
 * every call of a generated or dynamic client goes to one of the channel's
 * warm members (P2C, health checks, hedging, retry budget) instead of
 * grpc-js's own subchannels. It uses only the channel's public API.
 */
import grpc from "@grpc/grpc-js";
import type { ChannelEvent } from "../core/events.js";
import type { Http2Channel } from "../transport/http2/channel.js";
import { AbortPool } from "../core/abort-pool.js";
import { DialtoneGrpcCall, type GrpcCall } from "./grpc-js-call.js";
import { idempotentMethods, type IdempotentSetting } from "./grpc-js-methods.js";
export type { IdempotentSetting } from "./grpc-js-methods.js";

const State = grpc.connectivityState;
type ChannelRef = ReturnType<grpc.ChannelInterface["getChannelzRef"]>;

export interface GrpcChannelOptions {
  /**
   * Calls that may be sent twice, so the channel hedges and retries them
   * under its policies: full method paths ("/pkg.Service/Method"), whole
   * services ("/pkg.Service/"), or a function of the path. Methods that a
   * `serviceConfig` gives a retryPolicy or hedgingPolicy count too.
   * Only calls whose whole request is known when they start (unary and
   * server-streaming) can be; a streaming request is sent once.
   */
  idempotent?: IdempotentSetting;
  /** grpc-js's "grpc.service_config" (JSON text or object); only its methodConfig's retry/hedging names are read. */
  serviceConfig?: string | object;
  /** Largest response message accepted, as grpc-js's "grpc.max_receive_message_length" (default 4 MiB; -1 for no limit). */
  maxReceiveMessageLength?: number;
  /** Largest request message sent, as grpc-js's "grpc.max_send_message_length" (default -1: no limit). */
  maxSendMessageLength?: number;
}

/** grpc-js's defaults (constants.ts). */
const DEFAULT_MAX_RECEIVE = 4 * 1024 * 1024;
let nextChannelId = 1;
let nextCallNumber = 1;

/** A grpc-js ChannelInterface whose calls run on `channel`'s members. */
export class DialtoneGrpcChannel implements grpc.ChannelInterface {
  readonly #channel: Http2Channel;
  readonly #idempotent: (method: string) => boolean;
  readonly #maxReceive: number;
  readonly #maxSend: number;
  readonly #ref: ChannelRef;
  /** The target's host[:port] (a call's default :authority) and whether it is TLS, worked out once, not per call. */
  readonly #host: string;
  readonly #secure: boolean;
  readonly #aborts = new AbortPool();
  #closed = false;
  readonly #watchers = new Set<{ from: grpc.connectivityState; done: (err?: Error) => void; timer: NodeJS.Timeout | undefined }>();
  #unsubscribe: (() => void) | undefined;

  constructor(channel: Http2Channel, options: GrpcChannelOptions = {}) {
    this.#channel = channel;
    this.#idempotent = idempotentMethods(options.idempotent, options.serviceConfig);
    this.#maxReceive = messageLimit("maxReceiveMessageLength", options.maxReceiveMessageLength, DEFAULT_MAX_RECEIVE);
    this.#maxSend = messageLimit("maxSendMessageLength", options.maxSendMessageLength, -1);
    this.#ref = { kind: "channel", id: nextChannelId++, name: channel.target } as ChannelRef;
    this.#host = new URL(channel.target).host;
    this.#secure = channel.target.startsWith("https:");
  }

  getTarget(): string {
    return this.#channel.target;
  }

  /**
   * READY while a member is connected; CONNECTING until the first connection
   * error, TRANSIENT_FAILURE after one; SHUTDOWN once closed. Never IDLE:
   * a dialtone channel is always warm, so `tryToConnect` changes nothing.
   */
  getConnectivityState(_tryToConnect?: boolean): grpc.connectivityState {
    if (this.#closed) return State.SHUTDOWN;
    if (this.#channel.connected) return State.READY;
    const s = this.#channel.stats();
    return s.lastError !== undefined || s.addresses.some((a) => a.failures > 0) ? State.TRANSIENT_FAILURE : State.CONNECTING;
  }

  /** Calls back once the state is no longer `currentState`, or with an error when `deadline` passes first. */
  watchConnectivityState(currentState: grpc.connectivityState, deadline: Date | number, callback: (error?: Error) => void): void {
    if (this.getConnectivityState() !== currentState) return void process.nextTick(callback);
    const at = deadline instanceof Date ? deadline.getTime() : deadline;
    const w = { from: currentState, done: callback, timer: undefined as NodeJS.Timeout | undefined };
    if (at !== Infinity) {
      w.timer = setTimeout(
        () => {
          this.#watchers.delete(w);
          this.#maybeUnsubscribe();
          callback(new Error("Deadline passed without connectivity state change"));
        },
        Math.max(0, Math.min(at - Date.now(), 2_147_483_647)),
      );
    }
    this.#watchers.add(w);
    this.#unsubscribe ??= this.#channel.on((e: ChannelEvent) => {
      if (e.type !== "request" && e.type !== "ping") this.#notify();
    });
  }

  getChannelzRef(): ChannelRef {
    return this.#ref;
  }

  createCall(
    method: string,
    deadline: grpc.Deadline,
    host: string | null | undefined,
    _parentCall: unknown,
    _propagateFlags: number | null | undefined,
  ): GrpcCall {
    return new DialtoneGrpcCall({
      channel: this.#channel,
      method,
      deadline,
      host: host ?? this.#host,
      callNumber: nextCallNumber++,
      idempotent: this.#idempotent(method),
      maxReceiveMessageLength: this.#maxReceive,
      maxSendMessageLength: this.#maxSend,
      shutdown: this.#closed,
      secure: this.#secure,
      aborts: this.#aborts,
    });
  }

  /**
   * SHUTDOWN: new calls fail UNAVAILABLE, calls in flight finish. The
   * dialtone channel stays open: it is the caller's, and may serve others.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#notify();
  }

  #notify(): void {
    const now = this.getConnectivityState();
    for (const w of this.#watchers) {
      if (w.from === now) continue;
      this.#watchers.delete(w);
      clearTimeout(w.timer);
      w.done();
    }
    this.#maybeUnsubscribe();
  }

  #maybeUnsubscribe(): void {
    if (this.#watchers.size > 0) return;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}

function messageLimit(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < -1) throw new TypeError(`createGrpcChannel: ${name} must be an integer ≥ -1 (-1: no limit)`);
  return value;
}

/**
 * A grpc-js channel over `channel`, for a Client's `channelOverride`:
 * `new pkg.Service(api.target, grpc.credentials.createInsecure(), { channelOverride: createGrpcChannel(api) })`.
 */
export function createGrpcChannel(channel: Http2Channel, options?: GrpcChannelOptions): DialtoneGrpcChannel {
  return new DialtoneGrpcChannel(channel, options);
}

/**
 * The same as a Client's `channelFactoryOverride`: grpc-js's own channel
 * options ("grpc.service_config", "grpc.max_receive_message_length",
 * "grpc.max_send_message_length") are read from the Client's options.
 */
export function grpcChannelFactory(
  channel: Http2Channel,
  options: GrpcChannelOptions = {},
): (target: string, credentials: grpc.ChannelCredentials, channelOptions: grpc.ChannelOptions) => DialtoneGrpcChannel {
  return (_target, _credentials, o) =>
    new DialtoneGrpcChannel(channel, {
      serviceConfig: o["grpc.service_config"] as string | undefined,
      maxReceiveMessageLength: o["grpc.max_receive_message_length"] as number | undefined,
      maxSendMessageLength: o["grpc.max_send_message_length"] as number | undefined,
      ...options,
    });
}

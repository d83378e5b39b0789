/**
 * One grpc-js call (the channel-level `Call` grpc-js's Client drives:
 * start, sendMessageWithContext, halfClose, startRead, cancelWithStatus) as
 * one request on a dialtone HTTP/2 channel. Interceptors, serialization and
 * CallOptions stay grpc-js's: they sit above this object.
 */
import { PassThrough, type Readable } from "node:stream";
import type { OutgoingHttpHeaders } from "node:http2";
import grpc from "@grpc/grpc-js";
import type { Deadline } from "../core/deadlines.js";
import { RequestError } from "../core/errors.js";
import type { Http2StreamingResponse } from "../transport/http2/exchange.js";
import type { Http2Channel } from "../transport/http2/channel.js";
import type { AbortPool } from "../core/abort-pool.js";
import { decompress, frame, FrameDecoder, FrameTooLargeError } from "./grpc-js-framing.js";
import { requestHeaders, timeoutHeader, toMetadata } from "./grpc-js-metadata.js";
import { statusFromError, statusFromHttp, statusFromTrailers, type GrpcStatus } from "./grpc-js-status.js";

const Status = grpc.status;
/** grpc-js's channel-level call, as its Client uses it (the type is not exported by name). */
export type GrpcCall = ReturnType<grpc.ChannelInterface["createCall"]>;
type MessageContext = Parameters<GrpcCall["sendMessageWithContext"]>[0];

/** The longest timeout the channel takes for a response head (Node's longest timer, about 24.8 days). */
const MAX_HEAD_TIMEOUT_MS = 2_147_483_647;
/** grpc-js's per-call retry buffer: a streaming request is replayed for a transparent retry while it is this small. */
const REPLAY_LIMIT = 256 * 1024;
/** Transparent retries of a streaming request after HTTP/2 proved it unprocessed (bytes bodies are the channel's own). */
const TRANSPARENT_RETRIES = 3;

export interface CallSettings {
  readonly channel: Http2Channel;
  readonly method: string;
  readonly deadline: grpc.Deadline;
  readonly host: string;
  readonly callNumber: number;
  /** Hedged and retried under the channel's policies (only when the whole request is known before it is sent). */
  readonly idempotent: boolean;
  readonly maxReceiveMessageLength: number;
  readonly maxSendMessageLength: number;
  /** The grpc-js channel was closed before this call was made. */
  readonly shutdown: boolean;
  readonly secure: boolean;
  /** The grpc-js channel's reusable AbortControllers. */
  readonly aborts: AbortPool;
}

export class DialtoneGrpcCall implements GrpcCall {
  readonly #s: CallSettings;
  /** Cancels the request while it waits for a member or its head; taken when first needed, handed back unused. */
  #ac: AbortController | undefined;
  #listener: grpc.InterceptingListener | undefined;
  #credentials: grpc.CallCredentials | undefined;
  /** The call's deadline, in the channel's deadline queue (on its clock). */
  #deadline: Deadline | undefined;
  /** Sent and waiting for a response head: only then has the channel a request that the signal must cancel. */
  #waitingForHead = false;
  /** The status went to the listener (or is on its way): nothing more happens. */
  #ended = false;
  #pendingStatus: GrpcStatus | undefined;
  // Request side.
  #frames: Buffer[] = [];
  #frameBytes = 0;
  #replayable = true;
  #halfClosed = false;
  #pipe: PassThrough | undefined;
  #attempt = 0;
  // Response side.
  #body: Readable | undefined;
  #inbox: Buffer[] = [];
  #reading = false;

  constructor(settings: CallSettings) {
    this.#s = settings;
  }

  start(metadata: grpc.Metadata, listener: grpc.InterceptingListener): void {
    this.#listener = listener;
    if (this.#s.shutdown) return this.#end(status(Status.UNAVAILABLE, "Channel has been shut down"));
    const left = this.#timeLeft();
    if (left <= 0) return this.#end(status(Status.DEADLINE_EXCEEDED, "Deadline exceeded"));
    // On the channel's clock, in its deadline queue: no Node timer per call, and a deadline past
    // Node's longest timer (or a fake clock's scripted time) is waited out in full.
    if (left !== Infinity) this.#deadline = this.#s.channel.schedule(left, deadlineExceeded, this);
    void this.#open(metadata);
  }

  sendMessageWithContext(context: MessageContext, message: Buffer): void {
    const done = (): void => context.callback?.();
    if (this.#ended) return done();
    const max = this.#s.maxSendMessageLength;
    if (max >= 0 && message.length > max) {
      this.cancelWithStatus(Status.RESOURCE_EXHAUSTED, `Sent message larger than max (${message.length} vs. ${max})`);
      return done();
    }
    const f = frame(message);
    if (!this.#pipe || this.#replayable) {
      this.#frames.push(f);
      this.#frameBytes += f.length;
    }
    if (!this.#pipe) return done();
    if (this.#frameBytes > REPLAY_LIMIT) this.#noReplay();
    // The PassThrough holds the callback while its buffer is full: grpc-js's writable sees back-pressure.
    this.#pipe.write(f, () => done());
  }

  halfClose(): void {
    this.#halfClosed = true;
    this.#pipe?.end();
  }

  startRead(): void {
    this.#reading = true;
    this.#deliver();
  }

  cancelWithStatus(code: grpc.status, details: string): void {
    this.#end(status(code, details));
  }

  getPeer(): string {
    return new URL(this.#s.channel.target).host;
  }

  setCredentials(credentials: grpc.CallCredentials): void {
    this.#credentials = credentials;
  }

  getCallNumber(): number {
    return this.#s.callNumber;
  }

  getAuthContext(): null {
    return null;
  }

  // grpc-js 1.0–1.7's Call interface also has these.
  getDeadline(): grpc.Deadline {
    return this.#s.deadline;
  }

  getCredentials(): grpc.CallCredentials | undefined {
    return this.#credentials;
  }

  getMethod(): string {
    return this.#s.method;
  }

  getHost(): string {
    return this.#s.host;
  }

  /** Milliseconds until the deadline by the channel's wall clock (grpc-js deadlines are wall-clock times); NaN counts as none. */
  #timeLeft(): number {
    return timeLeft(this.#s.deadline, this.#s.channel.clock.wall());
  }

  async #open(metadata: grpc.Metadata): Promise<void> {
    let md = metadata;
    try {
      if (this.#credentials) {
        if (!this.#s.secure)
          return this.#end(status(Status.UNAUTHENTICATED, "Call credentials need a TLS channel (https:// target); refusing to send them in the clear"));
        const service = this.#s.method.slice(0, this.#s.method.lastIndexOf("/"));
        const extra = await this.#credentials.generateMetadata({
          service_url: `${new URL(this.#s.channel.target).origin}${service}`,
          method_name: this.#s.method.slice(this.#s.method.lastIndexOf("/") + 1),
        });
        md = metadata.clone();
        md.merge(extra);
      } else {
        // grpc-js's Client calls start, sendMessage and halfClose in one go for a unary or
        // server-streaming call: one microtask later the whole request is known and can be replayed.
        await Promise.resolve();
      }
    } catch (err) {
      return this.#end(status(Status.UNAVAILABLE, `Getting metadata from plugin failed with error: ${(err as Error).message}`));
    }
    if (this.#ended) return;
    if (md.getOptions().waitForReady && !this.#s.channel.connected) {
      // waitForReady: wait for a member until the deadline (or a cancel), instead of the acquire timeout.
      try {
        await this.#s.channel.ready(this.#signal());
      } catch (err) {
        if (!this.#ended) this.#end(statusFromError(err));
        return;
      }
      if (this.#ended) return;
    }
    const left = this.#timeLeft();
    const prepared = requestHeaders(md, left === Infinity ? undefined : timeoutHeader(left));
    if ("refused" in prepared) return this.#end(status(Status.INTERNAL, prepared.refused));
    this.#send(prepared.headers);
  }

  #send(headers: OutgoingHttpHeaders): void {
    const whole = this.#halfClosed;
    let body: Buffer | PassThrough;
    if (whole) {
      // A unary request is one frame: sent as it is, not copied again.
      body = this.#frames.length === 1 ? (this.#frames[0] as Buffer) : Buffer.concat(this.#frames, this.#frameBytes);
    } else {
      const pipe = new PassThrough();
      for (const f of this.#frames) pipe.write(f);
      if (this.#frameBytes > REPLAY_LIMIT) this.#noReplay();
      this.#pipe = pipe;
      body = pipe;
    }
    const left = this.#timeLeft();
    this.#waitingForHead = true;
    this.#s.channel
      .requestStream({
        method: "POST",
        path: this.#s.method,
        headers,
        body,
        signal: this.#signal(),
        // The head waits at most Node's longest timer; the call's own deadline (above) ends it when due.
        timeout: Math.min(MAX_HEAD_TIMEOUT_MS, Math.max(1, Math.ceil(left))),
        idempotent: whole && this.#s.idempotent,
      })
      .then(
        (res) => this.#onHead(res),
        (err: unknown) => this.#onFailure(err, headers, whole),
      );
  }

  #signal(): AbortSignal {
    return (this.#ac ??= this.#s.aborts.take()).signal;
  }

  #noReplay(): void {
    this.#replayable = false;
    this.#frames = [];
    this.#frameBytes = 0;
  }

  /** Failed before any response head: retried transparently when HTTP/2 proves nothing was processed. */
  #onFailure(err: unknown, headers: OutgoingHttpHeaders, whole: boolean): void {
    this.#waitingForHead = false;
    if (this.#ended) return;
    this.#pipe?.destroy();
    this.#pipe = undefined;
    // A whole request was already retried by the channel itself; a streaming one only here, from the replay buffer.
    if (!whole && err instanceof RequestError && err.unprocessed && this.#replayable && this.#attempt < TRANSPARENT_RETRIES) {
      this.#attempt++;
      return this.#send(headers);
    }
    this.#end(statusFromError(err));
  }

  #onHead(res: Http2StreamingResponse): void {
    this.#waitingForHead = false;
    if (this.#ended) return void res.body.destroy();
    this.#noReplay();
    this.#body = res.body;
    const trailersOnly = statusFromTrailers(res.headers);
    if (trailersOnly) {
      res.body.resume();
      return this.#finish(trailersOnly);
    }
    const encoding = res.headers["grpc-encoding"];
    const md = toMetadata(res.headers);
    md.remove("grpc-encoding");
    md.remove("grpc-accept-encoding");
    if (res.status === 200) this.#listener?.onReceiveMetadata(md);
    const max = this.#s.maxReceiveMessageLength;
    const decoder = new FrameDecoder(max);
    res.body.on("data", (chunk: Buffer) => {
      if (this.#ended) return;
      try {
        for (const m of decoder.write(chunk)) this.#inbox.push(m.compressed ? decompress(encoding as string | undefined, m.message, max) : m.message);
      } catch (err) {
        // grpc-js: a non-200 answer (an HTML error page) says more than the framing error it causes.
        if (res.status !== 200) return this.#end(statusFromHttp(res.status));
        const tooLarge = err instanceof FrameTooLargeError || (err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE";
        return this.cancelWithStatus(tooLarge ? Status.RESOURCE_EXHAUSTED : Status.INTERNAL, (err as Error).message);
      }
      if (this.#inbox.length > 0 && !this.#reading) res.body.pause();
      this.#deliver();
    });
    // Each fires once ('end' or 'error'): plain listeners, without once()'s wrapper per call.
    res.body.on("end", () => {
      res.trailers.then(
        (t) =>
          this.#finish(
            statusFromTrailers(t) ?? (res.status !== 200 ? statusFromHttp(res.status, t) : status(Status.INTERNAL, "Call ended without gRPC status")),
          ),
        (err: unknown) => this.#finish(statusFromError(err)),
      );
    });
    res.body.on("error", (err) => this.#finish(statusFromError(err)));
  }

  /** The call's status is known: it goes to the listener once every message before it has been read. */
  #finish(s: GrpcStatus): void {
    if (this.#ended || this.#pendingStatus) return;
    this.#pendingStatus = s;
    this.#deliver();
  }

  #deliver(): void {
    while (this.#reading && this.#inbox.length > 0 && !this.#ended) {
      this.#reading = false;
      this.#listener?.onReceiveMessage(this.#inbox.shift());
    }
    if (this.#ended) return;
    if (this.#inbox.length === 0) {
      if (this.#pendingStatus) return this.#end(this.#pendingStatus);
      this.#body?.resume();
    }
  }

  /** Ends the call with `s`, once: the stream (if still open) is cancelled with RST_STREAM CANCEL. */
  #end(s: GrpcStatus): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#deadline) this.#s.channel.unschedule(this.#deadline);
    this.#inbox = [];
    this.#frames = [];
    // Only a request still waiting for its head (or for a member, or for waitForReady) has a use for the
    // abort; after the head, destroying the body cancels the stream. An abort costs a DOMException.
    const ac = this.#ac;
    if (ac) {
      if (this.#waitingForHead || !this.#body) ac.abort();
      else this.#s.aborts.give(ac);
    }
    this.#pipe?.destroy();
    if (this.#body && !this.#body.readableEnded) this.#body.destroy();
    const listener = this.#listener;
    // Never from inside start() or a grpc-js callback: grpc-js reports a status on a later tick too.
    process.nextTick(() => listener?.onReceiveStatus(s));
  }
}

/** The deadline's time (a shared function: the queue holds the call, not a closure). */
function deadlineExceeded(call: DialtoneGrpcCall): void {
  call.cancelWithStatus(Status.DEADLINE_EXCEEDED, "Deadline exceeded");
}

/** Milliseconds from `now` (wall clock) to a grpc-js deadline: Infinity for none (Infinity, or a date that is not one). */
export function timeLeft(deadline: grpc.Deadline, now: number): number {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isNaN(at) || at === Infinity ? Infinity : at - now;
}

function status(code: grpc.status, details: string): GrpcStatus {
  return { code, details, metadata: new grpc.Metadata() };
}

/**
 * `dialtone/otel`: OpenTelemetry spans for every call through a dialtone
 * channel — `request()`, `requestStream()`, `stream()`, and so the undici,
 * Connect and grpc-js adapters, and NATS `request()`/`publish()` — built
 * from dialtone's diagnostics channels (`dialtone:call:start`, …; see
 * docs/observability.md). `@opentelemetry/api` is this subpath's optional
 * peer dependency: the main "dialtone" entry never loads it.
 *
 * One CLIENT span per call (PRODUCER for a NATS publish) with the stable
 * HTTP (or messaging) semantic conventions, and one child span per attempt:
 * a retry or a hedge carries `http.request.resend_count`, a hedge that lost
 * `dialtone.attempt.outcome: "cancelled"`. Each attempt's context goes out
 * in its request's headers (HTTP/2 or NATS) through the global propagator,
 * so the backend's server span is the attempt span's child. A change of the
 * member under an attempt in flight (`dialtone:attempt:member`: suspect,
 * unhealthy, ejected, draining, closed, …) is an event on that attempt's
 * span and its call's, and on no other call's.
 */
import diagnosticsChannel from "node:diagnostics_channel";
import {
  context,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import type { AttemptEndMessage, AttemptMemberMessage, AttemptStartMessage, CallEndMessage, CallStartMessage } from "../index.js";

export interface DialtoneInstrumentationConfig {
  /** Subscribe at construction (default true); registerInstrumentations() enables it otherwise. */
  enabled?: boolean;
}

/** The instrumentation's name, as its tracer is named. */
export const INSTRUMENTATION_NAME = "dialtone";
const VERSION = "0.1.0";

/** HTTP methods the semantic conventions name; any other is "_OTHER" with the original beside it. */
const KNOWN_METHODS = new Set(["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"]);

/**
 * Attempt failures that mean the member changed under the call (lost or
 * closed with the channel, draining after a GOAWAY): the event for an
 * attempt that failed so without having heard the change itself.
 */
const FAILURE_CHANGES: Readonly<Record<string, { change: string; reason: string }>> = {
  ERR_DIALTONE_MEMBER_LOST: { change: "closed", reason: "lost" },
  ERR_DIALTONE_GOAWAY: { change: "draining", reason: "goaway" },
  ERR_DIALTONE_CLOSED: { change: "closed", reason: "channel closed" },
};

interface AttemptRecord {
  span: Span;
  /** The member changes already on its span. */
  changes: Set<string> | undefined;
}

interface CallRecord {
  span: Span;
  ctx: Context;
  attrs: Attributes;
  attempts: Map<number, AttemptRecord>;
}

const setter: TextMapSetter<AttemptStartMessage> = {
  set(carrier, key, value) {
    carrier.setHeader(key, value);
  },
};

const headerGetter: TextMapGetter<Readonly<Record<string, unknown>>> = {
  keys: (carrier) => Object.keys(carrier),
  get(carrier, key) {
    const v = carrier[key];
    return typeof v === "string" ? v : Array.isArray(v) ? v.map(String) : undefined;
  },
};

/**
 * The instrumentation: an object of the shape OpenTelemetry's
 * `registerInstrumentations({ instrumentations: [...] })` takes (no
 * dependency on @opentelemetry/instrumentation), or use it alone:
 * `new DialtoneInstrumentation()` subscribes at once and uses the global
 * tracer provider; `disable()` unsubscribes.
 */
export class DialtoneInstrumentation {
  readonly instrumentationName = INSTRUMENTATION_NAME;
  readonly instrumentationVersion = VERSION;
  #config: DialtoneInstrumentationConfig;
  #provider: TracerProvider | undefined;
  #tracer: Tracer | undefined;
  #enabled = false;
  readonly #calls = new WeakMap<CallStartMessage, CallRecord>();

  constructor(config: DialtoneInstrumentationConfig = {}) {
    this.#config = { ...config };
    if (config.enabled !== false) this.enable();
  }

  getConfig(): DialtoneInstrumentationConfig {
    return { ...this.#config, enabled: this.#enabled };
  }

  setConfig(config: DialtoneInstrumentationConfig): void {
    this.#config = { ...config };
  }

  setTracerProvider(provider: TracerProvider): void {
    this.#provider = provider;
    this.#tracer = undefined;
  }

  /** No metrics of its own: dialtone's are prom-client's (ChannelMetrics). */
  setMeterProvider(): void {}

  enable(): void {
    if (this.#enabled) return;
    this.#enabled = true;
    diagnosticsChannel.subscribe("dialtone:call:start", this.#onCallStart);
    diagnosticsChannel.subscribe("dialtone:attempt:start", this.#onAttemptStart);
    diagnosticsChannel.subscribe("dialtone:attempt:member", this.#onAttemptMember);
    diagnosticsChannel.subscribe("dialtone:attempt:end", this.#onAttemptEnd);
    diagnosticsChannel.subscribe("dialtone:call:end", this.#onCallEnd);
  }

  disable(): void {
    if (!this.#enabled) return;
    this.#enabled = false;
    diagnosticsChannel.unsubscribe("dialtone:call:start", this.#onCallStart);
    diagnosticsChannel.unsubscribe("dialtone:attempt:start", this.#onAttemptStart);
    diagnosticsChannel.unsubscribe("dialtone:attempt:member", this.#onAttemptMember);
    diagnosticsChannel.unsubscribe("dialtone:attempt:end", this.#onAttemptEnd);
    diagnosticsChannel.unsubscribe("dialtone:call:end", this.#onCallEnd);
  }

  #getTracer(): Tracer {
    return (this.#tracer ??= (this.#provider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_NAME, VERSION));
  }

  readonly #onCallStart = (message: unknown): void => {
    const call = message as CallStartMessage;
    // A request that already carries a trace context (an undici instrumentation, a caller's own
    // injection) is that span's child; otherwise the caller's active span's.
    const parent = call.headers?.traceparent !== undefined ? propagation.extract(context.active(), call.headers, headerGetter) : context.active();
    const attrs = callAttributes(call);
    const kind = call.protocol === "nats" && call.operation === "publish" ? SpanKind.PRODUCER : SpanKind.CLIENT;
    const span = this.#getTracer().startSpan(spanName(call), { kind, attributes: attrs }, parent);
    this.#calls.set(call, { span, ctx: trace.setSpan(parent, span), attrs, attempts: new Map() });
  };

  readonly #onAttemptStart = (message: unknown): void => {
    const m = message as AttemptStartMessage;
    const rec = this.#calls.get(m.call);
    if (!rec) return;
    const attrs: Attributes = { ...rec.attrs, ...peerAttributes(m.address), "dialtone.attempt.reason": m.reason };
    if (m.attempt > 1 && m.call.protocol === "http2") attrs["http.request.resend_count"] = m.attempt - 1;
    if (m.attempt > 1) attrs["dialtone.attempt"] = m.attempt;
    const kind = m.call.protocol === "nats" && m.call.operation === "publish" ? SpanKind.PRODUCER : SpanKind.CLIENT;
    const span = this.#getTracer().startSpan(spanName(m.call), { kind, attributes: attrs }, rec.ctx);
    rec.attempts.set(m.attempt, { span, changes: undefined });
    // The attempt's context goes out with its request: the backend's span is this attempt's child.
    propagation.inject(trace.setSpan(rec.ctx, span), m, setter);
  };

  /** The member under an attempt in flight changed: an event on the attempt's span and on its call's. */
  readonly #onAttemptMember = (message: unknown): void => {
    const m = message as AttemptMemberMessage;
    const rec = this.#calls.get(m.call);
    const attempt = rec?.attempts.get(m.attempt);
    if (!rec || !attempt) return;
    memberEvent(rec, attempt, m.attempt, m.address, m.change, m.reason);
  };

  readonly #onAttemptEnd = (message: unknown): void => {
    const m = message as AttemptEndMessage;
    const rec = this.#calls.get(m.call);
    const attempt = rec?.attempts.get(m.attempt);
    if (!rec || !attempt) return;
    rec.attempts.delete(m.attempt);
    const span = attempt.span;
    span.setAttribute("dialtone.attempt.outcome", m.outcome);
    // Failed because its member went away, and not told of it before (the failure came first): said now.
    const failure = FAILURE_CHANGES[(m.error as { code?: string } | undefined)?.code ?? ""];
    if (failure && !attempt.changes?.has(failure.change)) memberEvent(rec, attempt, m.attempt, m.address, failure.change, failure.reason);
    finish(span, m.call, m.status, m.outcome === "error" ? (m.error ?? new Error("stream failed")) : undefined);
  };

  readonly #onCallEnd = (message: unknown): void => {
    const m = message as CallEndMessage;
    const rec = this.#calls.get(m.call);
    if (!rec) return;
    this.#calls.delete(m.call);
    if (m.address !== undefined) rec.span.setAttributes(peerAttributes(m.address));
    if (m.attempts > 1) rec.span.setAttribute("dialtone.attempts", m.attempts);
    finish(rec.span, m.call, m.status, m.outcome === "ok" ? undefined : (m.error ?? new Error(m.outcome)));
    // Attempts still open when the call ends are hedges that lost: the call cancels them now.
    for (const { span } of rec.attempts.values()) {
      span.setAttribute("dialtone.attempt.outcome", "cancelled");
      span.end();
    }
  };
}

/** `dialtone.member.<change>` on the attempt's span and its call's, with the member, the reason and (on the call's) the attempt. */
function memberEvent(rec: CallRecord, attempt: AttemptRecord, n: number, address: string, change: string, reason: string): void {
  (attempt.changes ??= new Set()).add(change);
  const attrs: Attributes = { ...peerAttributes(address), "dialtone.member.reason": reason, "dialtone.attempt": n };
  attempt.span.addEvent(`dialtone.member.${change}`, attrs);
  rec.span.addEvent(`dialtone.member.${change}`, attrs);
}

/** Sets the outcome's attributes and status on `span` and ends it. */
function finish(span: Span, call: CallStartMessage, status: number | undefined, error: Error | undefined): void {
  if (status !== undefined && call.protocol === "http2") {
    span.setAttribute("http.response.status_code", status);
    if (status >= 400 && error === undefined) {
      span.setAttribute("error.type", String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
  if (error !== undefined) {
    span.setAttribute("error.type", errorType(error));
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  }
  span.end();
}

/** A low-cardinality class of error, as the conventions ask: dialtone's stable code, else the error's code or name. */
function errorType(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && code !== "" ? code : error.name || "Error";
}

function spanName(call: CallStartMessage): string {
  if (call.protocol === "nats") return `${call.operation === "publish" ? "publish" : "send"} ${call.subject ?? ""}`.trim();
  const method = call.method ?? "GET";
  return KNOWN_METHODS.has(method) ? method : "HTTP";
}

/** The call's attributes (each attempt's too): never a credential (targets carry none; url.full is rebuilt without user-info). */
function callAttributes(call: CallStartMessage): Attributes {
  const attrs: Attributes = { "dialtone.channel": call.channel, "dialtone.operation": call.operation };
  if (call.protocol === "nats") {
    attrs["messaging.system"] = "nats";
    attrs["messaging.destination.name"] = call.subject;
    attrs["messaging.operation.type"] = "send";
    attrs["messaging.operation.name"] = call.operation;
    const server = firstServer(call.target);
    if (server) {
      attrs["server.address"] = server.host;
      if (server.port !== undefined) attrs["server.port"] = server.port;
    }
    return attrs;
  }
  const method = call.method ?? "GET";
  attrs["http.request.method"] = KNOWN_METHODS.has(method) ? method : "_OTHER";
  if (!KNOWN_METHODS.has(method)) attrs["http.request.method_original"] = method;
  try {
    const url = new URL(call.path ?? "/", call.target);
    url.username = "";
    url.password = "";
    attrs["url.full"] = url.href;
    attrs["url.scheme"] = url.protocol.slice(0, -1);
    attrs["server.address"] = url.hostname.replace(/^\[(.*)\]$/, "$1");
    attrs["server.port"] = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  } catch {
    // A target is always a URL; nothing to add if it somehow is not.
  }
  return attrs;
}

/** `ip:port` / `[v6]:port` → network.peer.address / network.peer.port. */
function peerAttributes(address: string): Attributes {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(address);
  return m ? { "network.peer.address": m[1], "network.peer.port": Number(m[2]) } : { "network.peer.address": address };
}

/** The first server of a NATS target (`nats://a:4222,b:4222`), user-info dropped. */
function firstServer(target: string): { host: string; port: number | undefined } | undefined {
  const first = target.split(",")[0] ?? "";
  const m = /^(?:[a-z][a-z0-9+.-]*:\/\/)?(?:.*@)?(\[[^\]]*\]|[^:/]+)(?::(\d+))?/i.exec(first.trim());
  if (!m || m[1] === undefined) return undefined;
  return { host: m[1].replace(/^\[(.*)\]$/, "$1"), port: m[2] === undefined ? undefined : Number(m[2]) };
}

export { createHttp2Channel, Http2Channel, type Http2StreamInit } from "./transport/http2/channel.js";
export { createNatsChannel, NatsChannel, type NatsPayload, type NatsRequestOptions } from "./transport/nats/channel.js";
export { validateNatsOptions, type NatsChannelOptions } from "./transport/nats/options.js";
export type { NatsAuth, NatsTls } from "./transport/nats/connector.js";
export type { NatsAuthenticator } from "./transport/nats/auth.js";
export type { BackoffDelay } from "./transport/nats/backoff-hook.js";
export { NatsAuthError } from "./transport/nats/errors.js";
export { ChannelSubscription, type ChannelSubscribeOptions } from "./transport/nats/subscription.js";
export { validateHttp2Options, type Http2ChannelOptions } from "./transport/http2/options.js";
export type { Http2RequestInit } from "./transport/http2/request-input.js";
export { MAX_HEADER_LIST_BYTES } from "./transport/http2/request-input.js";
export type { Http2Response, Http2StreamingResponse } from "./transport/http2/exchange.js";
export type { Http2Body } from "./transport/http2/body.js";
export type { Http2TlsOptions } from "./transport/http2/connector.js";
export { Reconnect } from "./reconnect.js";
export type { ReconnectOptions, ReconnectEvent, ReconnectStats, ConnectionStatus } from "./supervisor/reconnect.js";
export { RECONNECT_BACKOFF, SLOT_BACKOFF, type BackoffOptions } from "./supervisor/backoff.js";
export { StatusStream } from "./supervisor/status-stream.js";
export type { ChannelEvent, MemberInfo, EvictionReason, DrainReason, EjectionReason, RequestOutcome, DnsAnswerKind, FamilyAnswer } from "./core/events.js";
export type { SupervisorStats as ChannelStats, MemberStats } from "./supervisor/supervisor.js";
export { HEALTH_DEFAULTS, type HealthOptions, type AppCheck } from "./health/options.js";
export type { MembersRange } from "./transport/common-options.js";
export type { HedgeOptions } from "./dispatch/hedge-timing.js";
export type {
  CallInfo,
  CallStartMessage,
  AttemptReason,
  AttemptStartMessage,
  AttemptEndOutcome,
  AttemptEndMessage,
  CallEndMessage,
  MemberChange,
  AttemptMemberMessage,
} from "./dispatch/diagnostics.js";
export type { RetryBudgetOptions } from "./dispatch/retry-budget.js";
export type { OutlierOptions } from "./pool/outlier.js";
export type { Resolver, ResolverListener, AddressSet } from "./resolve/resolver.js";
export { StaticResolver } from "./resolve/static-resolver.js";
export { DnsResolver, type DnsResolverOptions, type DnsRuntime } from "./resolve/dns-resolver.js";
export { systemClock, type Clock, type Timer } from "./core/clock.js";
export type { Deadline } from "./core/deadlines.js";
export type { Address } from "./core/address.js";
export type { MemberState } from "./core/events.js";
export type { Balancer } from "./pool/pool.js";
export { parseDuration } from "./core/duration.js";
export { ChannelMetrics, type MetricsOptions } from "./metrics/channel-metrics.js";
export type { MetricsSource } from "./metrics/source.js";
export { ReconnectMetrics, type ReconnectMetricsOptions } from "./metrics/reconnect-metrics.js";
export type { ReconnectMetricsSource } from "./metrics/reconnect-source.js";
export {
  DialtoneError,
  ConfigError,
  TargetError,
  ConnectError,
  PingTimeoutError,
  ResolveError,
  NoMemberError,
  QueueFullError,
  ClosedError,
  GaveUpError,
  RequestError,
  RequestTimeoutError,
  NoRespondersError,
  NotReadyError,
  MemberLostError,
  AbortedError,
  BadRequestError,
  OverloadedError,
  type DialtoneErrorCode,
} from "./core/errors.js";

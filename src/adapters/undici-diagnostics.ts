/**
 * undici's diagnostics channels (its docs/api/DiagnosticsChannel.md),
 * published by dialtone's Dispatcher as undici's own Client publishes them
 * (lib/core/request.js, lib/dispatcher/client-h2.js), so that tools built on
 * them — `@opentelemetry/instrumentation-undici` first — see a request sent
 * through `dialtone/undici` as they see one sent through undici's Pool:
 *
 * - `undici:request:create` `{ request }` before the request goes out; its
 *   `addHeader(name, value)` adds a header that reaches the backend;
 * - `undici:client:sendHeaders` `{ request, headers, socket }` as an attempt
 *   goes to a member (`socket`: the member's remoteAddress/remotePort, h2);
 * - `undici:request:bodySent` `{ request }` once the body is all sent;
 * - `undici:request:headers` `{ request, response: { statusCode, headers, statusText } }`;
 * - `undici:request:trailers` `{ request, trailers }` at a clean end;
 * - `undici:request:error` `{ request, error }` at any other end.
 *
 * As with undici's HTTP/2 client, response headers and trailers are
 * objects (name → value). Nothing is built while nobody subscribes.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import diagnosticsChannel from "node:diagnostics_channel";
import type { AttemptStartMessage } from "../index.js";
import { invalidArgument } from "./undici-errors.js";
import type { HeaderRecord } from "./undici-handlers.js";
import { toOutgoing } from "./undici-request.js";

const create = diagnosticsChannel.channel("undici:request:create");
const sendHeaders = diagnosticsChannel.channel("undici:client:sendHeaders");
const bodySent = diagnosticsChannel.channel("undici:request:bodySent");
const headers = diagnosticsChannel.channel("undici:request:headers");
const trailers = diagnosticsChannel.channel("undici:request:trailers");
const error = diagnosticsChannel.channel("undici:request:error");

/** RFC 9110 token: what undici's addHeader() takes as a name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The `request` object of undici's messages: the same object in every message of one request. */
export class DiagnosticsRequest {
  completed = false;
  aborted = false;
  constructor(
    readonly origin: string,
    readonly method: string,
    readonly path: string,
    /** [name, value, name, value, …], as undici's Request holds them. */
    readonly headers: string[],
  ) {}

  /** Adds a request header (an instrumentation's traceparent), as undici's Request.addHeader does. */
  addHeader(key: string, value: unknown): this {
    if (value === undefined) return this;
    if (typeof key !== "string" || !TOKEN.test(key)) throw invalidArgument("invalid header key");
    if (value !== null && typeof value === "object" && !Array.isArray(value)) throw invalidArgument(`invalid ${key} header`);
    for (const v of Array.isArray(value) ? value : [value]) this.headers.push(key.toLowerCase(), String(v));
    return this;
  }
}

/** A request's diagnostics, or undefined when nobody listens to undici:request:create (nothing else is published then). */
export function requestCreated(origin: string, method: string, path: string, headers: unknown): DiagnosticsRequest | undefined {
  if (!create.hasSubscribers) return undefined;
  // undici's request headers as its Request holds them: [name, value, …] (checked as undici checks them: bad ones throw).
  const flat: string[] = [];
  for (const [k, v] of Object.entries(toOutgoing(headers))) flat.push(k, String(v));
  const request = new DiagnosticsRequest(origin, method, path, flat);
  create.publish({ request });
  return request;
}

/**
 * The request whose channel call is running: undici:client:sendHeaders is
 * published from dialtone's own attempt:start (which names the member), and
 * this says which undici request that attempt belongs to.
 */
const current = new AsyncLocalStorage<DiagnosticsRequest>();
let watching = false;

function onAttemptStart(message: unknown): void {
  const request = current.getStore();
  if (!request || !sendHeaders.hasSubscribers) return;
  const m = message as AttemptStartMessage;
  const at = /^\[?([^\]]*?)\]?:(\d+)$/.exec(m.address);
  const socket = { remoteAddress: at?.[1] ?? m.address, remotePort: at ? Number(at[2]) : undefined, alpnProtocol: "h2" };
  let header = "";
  for (let i = 0; i + 1 < request.headers.length; i += 2) header += `${request.headers[i]}: ${request.headers[i + 1]}\r\n`;
  sendHeaders.publish({ request, headers: header, socket });
}

/** Runs the channel call `fn` as `request`'s, so its attempts publish undici:client:sendHeaders when someone listens. */
export function runAs<T>(request: DiagnosticsRequest | undefined, fn: () => Promise<T>): Promise<T> {
  if (!sendHeaders.hasSubscribers) {
    // Its last subscriber left: stop listening to dialtone's channel, so calls stop building its messages.
    if (watching) {
      watching = false;
      diagnosticsChannel.unsubscribe("dialtone:attempt:start", onAttemptStart);
    }
    return fn();
  }
  if (!request) return fn();
  if (!watching) {
    watching = true;
    diagnosticsChannel.subscribe("dialtone:attempt:start", onAttemptStart);
  }
  return current.run(request, fn);
}

export function publishBodySent(request: DiagnosticsRequest | undefined): void {
  if (request && bodySent.hasSubscribers) bodySent.publish({ request });
}

export function publishHeaders(request: DiagnosticsRequest | undefined, statusCode: number, h: HeaderRecord): void {
  if (request && headers.hasSubscribers) headers.publish({ request, response: { statusCode, headers: h, statusText: "" } });
}

export function publishTrailers(request: DiagnosticsRequest | undefined, t: HeaderRecord): void {
  if (!request) return;
  request.completed = true;
  if (trailers.hasSubscribers) trailers.publish({ request, trailers: t });
}

export function publishError(request: DiagnosticsRequest | undefined, err: Error): void {
  if (!request || request.completed) return;
  request.aborted = true;
  if (error.hasSubscribers) error.publish({ request, error: err });
}

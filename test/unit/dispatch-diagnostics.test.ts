import diagnosticsChannel from "node:diagnostics_channel";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/core/clock.js";
import { NoMemberError, RequestError } from "../../src/core/errors.js";
import type { ChannelEvent } from "../../src/core/events.js";
import { Listeners } from "../../src/core/listeners.js";
import { tracing, type CallInfo } from "../../src/dispatch/diagnostics.js";
import type { AttemptContext, DispatchLease, DispatchOptions, LeaseSource } from "../../src/dispatch/lease.js";
import { dispatch } from "../../src/dispatch/pipeline.js";

/** A lease whose release is the class's own (prototype) method: tracing would shadow it on the instance. */
class FakeLease implements DispatchLease<null> {
  readonly connection = null;
  released: Array<number | undefined> = [];
  constructor(readonly member: { key: string; id: number }) {}
  release(latencyMs?: number): void {
    this.released.push(latencyMs);
  }
}

function source(leases: FakeLease[], fail?: Error): LeaseSource<null> {
  let n = 0;
  return {
    acquire: () => (fail ? Promise.reject(fail) : Promise.resolve(leases[n++ % leases.length] as FakeLease)),
    noteError: () => undefined,
    events: new Listeners<ChannelEvent>(),
    clock: systemClock,
  };
}

const INFO: CallInfo = { protocol: "http2", operation: "request", method: "GET", path: "/x" };
const options = (info?: CallInfo): DispatchOptions => ({
  target: "http://svc.test:80",
  channel: "svc",
  timeout: 5000,
  maxRetries: 2,
  acquireTimeout: 1000,
  info,
});

const NAMES = ["dialtone:call:start", "dialtone:attempt:start", "dialtone:attempt:member", "dialtone:attempt:end", "dialtone:call:end"];
const subscriptions: Array<() => void> = [];
afterEach(() => {
  for (const off of subscriptions.splice(0)) off();
});

/** Records every message of dialtone's channels as [channel, message]. */
function record(onAttemptStart?: (m: { setHeader(n: string, v: string): void }) => void): Array<[string, Record<string, unknown>]> {
  const seen: Array<[string, Record<string, unknown>]> = [];
  for (const name of NAMES) {
    const fn = (m: unknown): void => {
      seen.push([name, m as Record<string, unknown>]);
      if (name === "dialtone:attempt:start") onAttemptStart?.(m as { setHeader(n: string, v: string): void });
    };
    diagnosticsChannel.subscribe(name, fn);
    subscriptions.push(() => diagnosticsChannel.unsubscribe(name, fn));
  }
  return seen;
}

const refused = (): RequestError => new RequestError("ERR_DIALTONE_REFUSED_STREAM", "http://svc.test:80", "10.0.0.1:80", "refused", true);

describe("dialtone's diagnostics channels from the dispatch layer", () => {
  it("nobody subscribes: tracing() is false, a call given no info builds nothing (its lease is never wrapped) and publishes nothing", async () => {
    expect(tracing()).toBe(false);
    const lease = new FakeLease({ key: "10.0.0.1:80", id: 1 });
    let seenHeaders: unknown = "unset";
    await dispatch(source([lease]), options(), async (_l, ctx) => {
      seenHeaders = ctx.headers;
      return { status: 200 };
    });
    expect(Object.hasOwn(lease, "release")).toBe(false);
    expect(seenHeaders).toBeUndefined();
    expect(lease.released).toHaveLength(1);
    // A subscriber turns it on; unsubscribing turns it off again.
    record();
    expect(tracing()).toBe(true);
    for (const off of subscriptions.splice(0)) off();
    expect(tracing()).toBe(false);
  });

  it("a retry after an unprocessed failure: call start, each attempt's start and end with its reason and outcome, call end", async () => {
    const seen = record((m) => m.setHeader("traceparent", "00-abc-def-01"));
    const a = new FakeLease({ key: "10.0.0.1:80", id: 1 });
    const b = new FakeLease({ key: "[::1]:80", id: 2 });
    const headers: unknown[] = [];
    const res = await dispatch(source([a, b]), options(INFO), async (_l, ctx) => {
      headers.push(ctx.headers);
      if (ctx.attempt === 1) throw refused();
      return { status: 204 };
    });
    expect(res).toEqual({ status: 204 });
    expect(headers).toEqual([{ traceparent: "00-abc-def-01" }, { traceparent: "00-abc-def-01" }]);
    expect(seen.map(([n, m]) => [n, m.attempt, m.reason ?? m.outcome])).toEqual([
      ["dialtone:call:start", undefined, undefined],
      ["dialtone:attempt:start", 1, "first"],
      ["dialtone:attempt:end", 1, "error"],
      ["dialtone:attempt:start", 2, "retry-unprocessed"],
      ["dialtone:attempt:end", 2, "ok"],
      ["dialtone:call:end", undefined, "ok"],
    ]);
    const call = seen[0]![1];
    expect(call).toMatchObject({
      channel: "svc",
      target: "http://svc.test:80",
      protocol: "http2",
      operation: "request",
      method: "GET",
      path: "/x",
      idempotent: false,
    });
    // Every message of the call carries the same call object.
    expect(seen.slice(1).every(([, m]) => m.call === call)).toBe(true);
    expect(seen[2]![1]).toMatchObject({ address: "10.0.0.1:80", error: expect.any(RequestError) });
    expect(seen[5]![1]).toMatchObject({ address: "[::1]:80", status: 204, attempts: 2, error: undefined });
  });

  it("an idempotent call retried after a failure that is not proven unprocessed: the second attempt's reason is retry-idempotent", async () => {
    const seen = record();
    const leases = [new FakeLease({ key: "10.0.0.1:80", id: 1 }), new FakeLease({ key: "10.0.0.2:80", id: 2 })];
    await dispatch(source(leases), { ...options(INFO), idempotent: true }, async (_l, ctx) => {
      if (ctx.attempt === 1) throw new RequestError("ERR_DIALTONE_STREAM", "http://svc.test:80", "10.0.0.1:80", "reset", false);
      return { status: 200 };
    });
    const starts = seen.filter(([n]) => n === "dialtone:attempt:start").map(([, m]) => m.reason);
    expect(starts).toEqual(["first", "retry-idempotent"]);
    expect(seen[0]![1]).toMatchObject({ idempotent: true });
  });

  it("setHeader drops names and values the protocols would refuse, and fields dialtone sets itself", async () => {
    record((m) => {
      m.setHeader("bad name", "x");
      m.setHeader("connection", "close");
      m.setHeader("x-ok", "line\r\nbreak");
      m.setHeader("TraceState", "k=v");
    });
    let headers: unknown;
    await dispatch(source([new FakeLease({ key: "10.0.0.1:80", id: 1 })]), options(INFO), async (_l, ctx) => {
      headers = ctx.headers;
      return {};
    });
    expect(headers).toEqual({ tracestate: "k=v" });
  });

  it("an attempt that keeps its lease (a streamed response) ends, and its call with it, when the lease is released", async () => {
    const seen = record();
    const lease = new FakeLease({ key: "10.0.0.1:80", id: 1 });
    let ctxOf: AttemptContext | undefined;
    await dispatch(source([lease]), options({ ...INFO, operation: "requestStream" }), async (_l, ctx) => {
      ctx.keepLease();
      ctxOf = ctx;
      return { status: 200 };
    });
    expect(seen.map(([n]) => n)).toEqual(["dialtone:call:start", "dialtone:attempt:start"]);
    expect(ctxOf).toBeDefined();
    lease.release(12);
    expect(seen.map(([n]) => n)).toEqual(["dialtone:call:start", "dialtone:attempt:start", "dialtone:attempt:end", "dialtone:call:end"]);
    expect(seen[3]![1]).toMatchObject({ outcome: "ok", status: 200 });
    expect(lease.released).toEqual([12]);
  });

  it("a call that reaches no member ends with its outcome and no attempt", async () => {
    const seen = record();
    const err = new NoMemberError("http://svc.test:80", 1000, undefined);
    await expect(dispatch(source([], err), options(INFO), async () => ({}))).rejects.toBe(err);
    expect(seen.map(([n]) => n)).toEqual(["dialtone:call:start", "dialtone:call:end"]);
    expect(seen[1]![1]).toMatchObject({ outcome: "no-member", attempts: 0, address: undefined, error: err });
  });

  it("a member's changes reach the attempts in flight on it, and only those, until each ends", async () => {
    const seen = record();
    const a = new FakeLease({ key: "10.0.0.1:80", id: 1 });
    const b = new FakeLease({ key: "10.0.0.2:80", id: 2 });
    const src = source([a, b]);
    const member = (id: number): { id: number; address: string; slot: number } => ({ id, address: `10.0.0.${id}:80`, slot: id - 1 });
    // Two streamed calls in flight, one on each member (leases kept until released).
    for (let i = 0; i < 2; i++)
      await dispatch(src, options({ ...INFO, operation: "requestStream" }), async (_l, ctx) => {
        ctx.keepLease();
        return { status: 200 };
      });
    src.events.emit({ type: "draining", member: member(1), reason: "goaway", detail: "GOAWAY (code 0, last stream 1)" });
    src.events.emit({ type: "state", member: member(1), from: "ready", to: "draining", reason: "GOAWAY (code 0, last stream 1)" });
    src.events.emit({ type: "suspect", member: member(2) });
    src.events.emit({ type: "state", member: member(2), from: "ready", to: "unhealthy", reason: "2 PINGs unanswered" });
    src.events.emit({ type: "ejected", member: member(2), reason: "consecutive-5xx", durationMs: 1000 });
    // A member no attempt is on: nobody hears of it.
    src.events.emit({ type: "ejected", member: member(3), reason: "consecutive-5xx", durationMs: 1000 });
    const changes = (): unknown[] => seen.filter(([n]) => n === "dialtone:attempt:member").map(([, m]) => [m.address, m.change, m.reason]);
    expect(changes()).toEqual([
      ["10.0.0.1:80", "draining", "goaway"],
      ["10.0.0.2:80", "suspect", "no answer or PONG within health.suspectAfter"],
      ["10.0.0.2:80", "unhealthy", "2 PINGs unanswered"],
      ["10.0.0.2:80", "ejected", "consecutive-5xx"],
    ]);
    // The call on member 1 ends: member 1's later changes reach nobody; member 2's call still hears its own.
    a.release(5);
    src.events.emit({ type: "state", member: member(1), from: "draining", to: "closed", reason: "drained" });
    src.events.emit({ type: "state", member: member(2), from: "unhealthy", to: "closed", reason: "evicted" });
    expect(changes().slice(4)).toEqual([["10.0.0.2:80", "closed", "evicted"]]);
    b.release(5);
    src.events.emit({ type: "state", member: member(2), from: "closed", to: "closed", reason: "again" });
    expect(changes()).toHaveLength(5);
  });
});

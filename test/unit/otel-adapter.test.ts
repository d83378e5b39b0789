import diagnosticsChannel from "node:diagnostics_channel";
import { SpanKind } from "@opentelemetry/api";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { DialtoneInstrumentation } from "../../src/adapters/otel.js";
import { MemberLostError } from "../../src/core/errors.js";
import type { AttemptEndMessage, CallEndMessage, CallStartMessage } from "../../src/index.js";
import { callTrees, clientTracing } from "../helpers/otel.js";

/**
 * dialtone/otel's mapping from dialtone's diagnostics messages to spans, fed
 * messages published by hand (the integration tests, otel-*.test.ts, feed it
 * real calls): attribute rules a real backend cannot vary on demand.
 */
const exporter = clientTracing();
const instrumentation = new DialtoneInstrumentation();
afterAll(() => instrumentation.disable());
beforeEach(() => exporter.reset());

function publish(name: string, message: object): void {
  diagnosticsChannel.channel(name).publish(message);
}

/** One call with one attempt on `address`, ended as `end` says. */
function oneCall(call: CallStartMessage, address: string, end: Partial<AttemptEndMessage> & Partial<CallEndMessage>): void {
  publish("dialtone:call:start", call);
  publish("dialtone:attempt:start", { call, attempt: 1, reason: "first", address, setHeader: () => undefined });
  publish("dialtone:attempt:end", { call, attempt: 1, address, outcome: end.error ? "error" : "ok", status: end.status, error: end.error });
  publish("dialtone:call:end", { call, outcome: end.error ? "error" : "ok", address, status: end.status, error: end.error, attempts: 1 });
}

describe("dialtone/otel's span attributes", () => {
  it("an IPv6 member, a method outside the conventions' list, and a member lost under the call (a span event)", () => {
    const call: CallStartMessage = {
      channel: "api",
      target: "http://[::1]:8443",
      idempotent: false,
      protocol: "http2",
      operation: "request",
      method: "PURGE",
      path: "/c",
    };
    oneCall(call, "[::1]:8443", { error: new MemberLostError("http://[::1]:8443", "[::1]:8443", "connection closed by peer") });
    const [tree] = callTrees(exporter.getFinishedSpans());
    expect(tree!.call.name).toBe("HTTP");
    expect(tree!.call.attributes).toMatchObject({
      "http.request.method": "_OTHER",
      "http.request.method_original": "PURGE",
      "server.address": "::1",
      "server.port": 8443,
      "url.full": "http://[::1]:8443/c",
      "network.peer.address": "::1",
      "network.peer.port": 8443,
      "error.type": "ERR_DIALTONE_MEMBER_LOST",
    });
    expect(tree!.call.events.map((e) => [e.name, e.attributes?.["network.peer.address"]])).toEqual([
      ["dialtone.member.closed", "::1"],
      ["exception", undefined],
    ]);
  });

  it("a NATS publish: PRODUCER, the first server of the target as server.address, nothing of the target's user-info", () => {
    const call: CallStartMessage = {
      channel: "bus",
      target: "nats://***@10.0.0.5:4222,10.0.0.6:4222",
      idempotent: false,
      protocol: "nats",
      operation: "publish",
      subject: "orders.new",
    };
    oneCall(call, "10.0.0.5:4222", {});
    const [tree] = callTrees(exporter.getFinishedSpans());
    expect(tree!.call.kind).toBe(SpanKind.PRODUCER);
    expect(tree!.call.name).toBe("publish orders.new");
    expect(tree!.call.attributes).toMatchObject({ "server.address": "10.0.0.5", "server.port": 4222, "messaging.operation.name": "publish" });
    expect(JSON.stringify(tree!.call.attributes)).not.toContain("***");
  });

  it("nothing is traced once disabled", () => {
    instrumentation.disable();
    try {
      oneCall(
        { channel: "api", target: "http://a:80", idempotent: false, protocol: "http2", operation: "request", method: "GET", path: "/" },
        "10.0.0.1:80",
        {},
      );
      expect(exporter.getFinishedSpans()).toHaveLength(0);
    } finally {
      instrumentation.enable();
    }
  });
});

import { describe, expect, it } from "vitest";
import type { UpstreamConfig } from "../../src/broker/config.js";
import { failureOf } from "../../src/broker/error-response.js";
import { clientResponseHeaders, upstreamRequestHeaders } from "../../src/broker/headers.js";
import { hostOf, Router } from "../../src/broker/router.js";
import { BadRequestError, ClosedError, NoMemberError, QueueFullError, RequestError, RequestTimeoutError } from "../../src/index.js";

function up(name: string, hosts: string[], extra: Partial<UpstreamConfig> = {}): UpstreamConfig {
  return { name, kind: "http2", target: `http://${name}:1`, hosts, default: false, warm: false, options: {}, ...extra };
}

describe("broker routing", () => {
  const router = new Router([
    up("api", ["api.internal"]),
    up("eu", ["*.eu.internal"]),
    up("wide", ["*.internal"]),
    up("fallback", [], { default: true }),
    up("q", ["q.internal"], { kind: "nats" }),
  ]);

  it("matches exact hosts ignoring port and case, then the longest wildcard, then the default", () => {
    expect(router.route("api.internal")).toBe("api");
    expect(router.route("API.Internal:8443")).toBe("api");
    expect(router.route("api.internal.")).toBe("api");
    expect(router.route("x.eu.internal")).toBe("eu");
    expect(router.route("x.us.internal")).toBe("wide");
    expect(router.route("eu.internal")).toBe("wide");
    expect(router.route("example.com")).toBe("fallback");
    expect(router.route(undefined)).toBe("fallback");
    // A nats upstream is never a Host route.
    expect(router.route("q.internal")).toBe("wide");
  });

  it("has no route without a default", () => {
    expect(new Router([up("api", ["api.internal"])]).route("other")).toBeUndefined();
  });

  it("takes the host out of an authority", () => {
    expect(hostOf("[::1]:80")).toBe("::1");
    expect(hostOf("h:1")).toBe("h");
    expect(hostOf("H")).toBe("h");
  });
});

describe("broker headers", () => {
  it("strips hop-by-hop fields, those the Connection header lists, and Host; keeps te: trailers", () => {
    const out = upstreamRequestHeaders({
      host: "a",
      connection: "close, X-Private",
      "x-private": "1",
      "keep-alive": "5",
      "transfer-encoding": "chunked",
      upgrade: "h2c",
      "proxy-authorization": "secret",
      te: "trailers",
      "x-ok": "1",
      cookie: "c=1",
    });
    expect(out).toEqual({ te: "trailers", "x-ok": "1", cookie: "c=1" });
    expect(upstreamRequestHeaders({ te: "gzip" })).toEqual({});
  });

  it("sends back neither pseudo-headers nor connection-specific fields", () => {
    expect(clientResponseHeaders({ ":status": "200", "content-type": "a", connection: "x", "grpc-status": "0" })).toEqual({
      "content-type": "a",
      "grpc-status": "0",
    });
  });
});

describe("broker error mapping", () => {
  it("gives each failure a status the client can act on", () => {
    expect(failureOf(new BadRequestError("t", "headers.x", "bad")).status).toBe(400);
    // Well-formed but too large: the client can act by sending less (431 for headers, 413 for a body).
    expect(failureOf(new BadRequestError("t", "headers", "over", { reason: "too-large" })).status).toBe(431);
    expect(failureOf(new BadRequestError("t", "body", "over", { reason: "too-large" })).status).toBe(413);
    expect(failureOf(new NoMemberError("t", 5000, undefined))).toMatchObject({ status: 503, retryAfter: 1, code: "ERR_DIALTONE_NO_MEMBER" });
    expect(failureOf(new QueueFullError("t", 1, undefined)).status).toBe(503);
    expect(failureOf(new ClosedError("t")).status).toBe(503);
    expect(failureOf(new RequestTimeoutError("t", undefined, 100)).status).toBe(504);
    expect(failureOf(new RequestError("ERR_DIALTONE_STREAM", "t", "a:1", "reset", false)).status).toBe(502);
    expect(failureOf(new Error("boom\nsecret")).reason).toBe("upstream request failed");
  });
});

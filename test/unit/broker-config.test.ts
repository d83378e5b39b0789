import { describe, expect, it } from "vitest";
import { loadBrokerConfig, parseUpstreamSpec } from "../../src/broker/command.js";
import { parseConfigText, resolveConfig } from "../../src/broker/config.js";
import { parseListenAddress } from "../../src/broker/listen-address.js";
import { ConfigError } from "../../src/index.js";
import { COMMON_KEYS } from "../../src/transport/common-options.js";
import { HTTP2_KEYS } from "../../src/transport/http2/options.js";
import { NATS_KEYS } from "../../src/transport/nats/options.js";

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

const ISSUE_EXAMPLE = `
listen: [ "http://127.0.0.1:7000", "unix:///run/dialtone/broker.sock" ]
admin: "http://127.0.0.1:9901"
idle: { timeout: 30m, checkInterval: 5m }
upstreams:
  api:    { target: "https://api.internal:8443", discovery: "dns:///api.internal:8443", members: 3, hosts: ["api.internal"] }
  prices: { kind: nats, target: "nats://10.0.0.5:4222,10.0.0.6:4222", warm: true }
`;

describe("broker config", () => {
  it("reads the issue's example: durations in ms, listeners parsed, kinds and defaults filled", () => {
    const c = resolveConfig(parseConfigText(ISSUE_EXAMPLE, "example.yaml"));
    expect(c.listen.map((l) => l.kind)).toEqual(["tcp", "unix"]);
    expect(c.admin).toMatchObject({ kind: "tcp", host: "127.0.0.1", port: 9901 });
    expect(c.idle).toEqual({ timeout: 1_800_000, checkInterval: 300_000 });
    expect(c.shutdownGrace).toBe(10_000);
    const [api, prices] = c.upstreams;
    expect(api).toMatchObject({
      name: "api",
      kind: "http2",
      hosts: ["api.internal"],
      warm: false,
      options: { discovery: "dns:///api.internal:8443", members: 3 },
    });
    expect(prices).toMatchObject({ name: "prices", kind: "nats", warm: true });
  });

  it("takes JSON too, and converts durations nested in channel options", () => {
    const c = resolveConfig(
      parseConfigText(
        JSON.stringify({ upstreams: { a: { target: "http://a:1", health: { interval: "2s", timeout: "250ms" }, acquireTimeout: "1m" } } }),
        "c.json",
      ),
    );
    expect(c.upstreams[0]!.options).toEqual({ health: { interval: 2000, timeout: 250 }, acquireTimeout: 60_000 });
  });

  it("names the setting in every error, with a suggestion for a typo", () => {
    expect(configError(() => resolveConfig({ idle: { timeout: "soon" } })).option).toBe("idle.timeout");
    expect(configError(() => resolveConfig({ listn: [] })).message).toContain("did you mean listen?");
    expect(configError(() => resolveConfig({ upstreams: { api: { target: "http://a:1", memebrs: 3 } } })).message).toContain("upstreams.api.members");
    expect(configError(() => resolveConfig({ upstreams: { api: { hosts: ["a"] } } })).option).toBe("upstreams.api.target");
    expect(configError(() => resolveConfig({ upstreams: { p: { kind: "nats", target: "nats://a:1", hosts: ["x"] } } })).option).toBe("upstreams.p.hosts");
    expect(configError(() => resolveConfig({ limits: { maxStreams: 0 } })).option).toBe("limits.maxStreams");
    expect(configError(() => resolveConfig({ upstreams: { "bad name": { target: "http://a:1" } } })).option).toBe("upstreams.bad name");
  });

  it("refuses two upstreams on one host and two defaults", () => {
    const both = { a: { target: "http://a:1", hosts: ["x.internal"] }, b: { target: "http://b:1", hosts: ["X.internal"] } };
    expect(configError(() => resolveConfig({ upstreams: both })).message).toContain("x.internal is already routed to upstream a");
    const defs = { a: { target: "http://a:1", default: true }, b: { target: "http://b:1", default: true } };
    expect(configError(() => resolveConfig({ upstreams: defs })).option).toBe("upstreams.b.default");
  });

  it("listens only on loopback or unix sockets unless allowRemote", () => {
    expect(configError(() => parseListenAddress("listen[0]", "http://0.0.0.0:7000", false)).message).toContain("--allow-remote");
    expect(configError(() => parseListenAddress("listen[0]", "http://10.1.2.3:7000", false)).option).toBe("listen[0]");
    expect(parseListenAddress("listen[0]", "http://0.0.0.0:7000", true)).toMatchObject({ host: "0.0.0.0", port: 7000 });
    expect(parseListenAddress("x", "127.0.0.5:80", false)).toMatchObject({ kind: "tcp", host: "127.0.0.5", port: 80 });
    expect(parseListenAddress("x", "[::1]:80", false)).toMatchObject({ host: "::1" });
    expect(parseListenAddress("x", "unix:///run/b.sock", false)).toEqual({ kind: "unix", path: "/run/b.sock", text: "unix:///run/b.sock" });
    expect(configError(() => parseListenAddress("x", "unix://relative.sock", false)).message).toContain("absolute");
    expect(configError(() => parseListenAddress("x", "https://127.0.0.1:1", false)).message).toContain("http://");
    expect(configError(() => parseListenAddress("x", "http://127.0.0.1", false)).message).toContain("port");
  });

  it("keeps a password in a bad YAML line out of the error", () => {
    const e = configError(() => parseConfigText('upstreams:\n  p: { target: "nats://u:hunter22@h:1", : }\n  - x', "c.yaml"));
    expect(e.message).toContain("line");
    expect(e.message).not.toContain("hunter22");
  });

  it("layers flags over DIALTONE_* variables over the file", () => {
    const c = loadBrokerConfig(
      { listen: ["http://127.0.0.1:7100"], "idle-timeout": "1m", upstream: ["api=http://api.internal:80;hosts=api.internal,b.internal;default;members=2"] },
      { DIALTONE_IDLE_TIMEOUT: "5m", DIALTONE_IDLE_CHECK_INTERVAL: "10s", DIALTONE_ADMIN: "off", DIALTONE_UPSTREAMS: "n=nats://127.0.0.1:4222;warm" },
    );
    expect(c.listen).toMatchObject([{ port: 7100 }]);
    expect(c.idle).toEqual({ timeout: 60_000, checkInterval: 10_000 });
    expect(c.admin).toBeUndefined();
    expect(c.upstreams.map((u) => [u.name, u.kind, u.default, u.warm])).toEqual([
      ["n", "nats", false, true],
      ["api", "http2", true, false],
    ]);
    expect(c.upstreams[1]!.hosts).toEqual(["api.internal", "b.internal"]);
  });

  it("parses --upstream specs and refuses unknown settings", () => {
    expect(parseUpstreamSpec("a=nats://h:1,h2:2;warm")).toEqual(["a", { target: "nats://h:1,h2:2", warm: true }]);
    expect(configError(() => parseUpstreamSpec("a=http://h:1;tls=x")).option).toBe("--upstream a");
    expect(configError(() => parseUpstreamSpec("http://h:1")).option).toBe("--upstream");
  });

  it("takes every option the library's channels take: the library's own key lists, so a new option cannot be missed", () => {
    // Whatever the value (a sentinel no option takes), the key must reach the library's own check of that option:
    // an error, if any, names that option — never "unknown option". Keys whose value YAML cannot write (a
    // function) reach it too, and are refused there by type.
    const SENTINEL = Symbol("no option takes this");
    const kinds = [
      { kind: "http2", target: "http://a.internal:80", keys: [...COMMON_KEYS, ...HTTP2_KEYS] },
      { kind: "nats", target: "nats://127.0.0.1:4222", keys: [...COMMON_KEYS, ...NATS_KEYS] },
    ];
    let checked = 0;
    for (const { kind, target, keys } of kinds) {
      for (const key of keys) {
        if (key === "target") continue; // the broker's own required key
        const upstream = { kind, target, [key]: SENTINEL };
        let err: unknown;
        try {
          const c = resolveConfig({ upstreams: { a: upstream } });
          expect(c.upstreams[0]!.options[key], `${kind} ${key}`).toEqual(SENTINEL);
        } catch (e) {
          err = e;
        }
        if (err !== undefined) {
          expect(err, `${kind} ${key}`).toBeInstanceOf(ConfigError);
          expect((err as ConfigError).message, `${kind} ${key}`).not.toContain("unknown option");
          expect((err as ConfigError).option.startsWith(`upstreams.a.${key}`), `${kind} ${key}: ${(err as ConfigError).message}`).toBe(true);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it("takes the options the issue found refused, durations as text, and converts only what the library calls a duration", () => {
    const c = resolveConfig(
      parseConfigText(
        `
upstreams:
  api:
    target: "http://api.internal:80"
    hedge: { delay: 50ms, max: 2 }
    outlier: { consecutive5xx: 3, baseEjection: 10s }
    retryBudget: { ratio: 0.1, window: 5s }
    subset: { clientId: 4 }
    maxOutstanding: 500
    minHold: 1m
    flapWindow: 2s
    name: api-east
    members: { min: 1, max: 4, shrinkAfter: 1m }
  bus:
    target: "nats://127.0.0.1:4222"
    attemptTimeout: 2s
    tlsFirst: true
    retainServerOrder: true
    maxPendingBytes: 1048576
    auth: { user: "svc", pass: "5s" }
`,
        "c.yaml",
      ),
    );
    expect(c.upstreams[0]!.options).toEqual({
      hedge: { delay: 50, max: 2 },
      outlier: { consecutive5xx: 3, baseEjection: 10_000 },
      retryBudget: { ratio: 0.1, window: 5000 },
      subset: { clientId: 4 },
      maxOutstanding: 500,
      minHold: 60_000,
      flapWindow: 2000,
      name: "api-east",
      members: { min: 1, max: 4, shrinkAfter: 60_000 },
    });
    // A password that reads like a duration is a password: only what the library checks as milliseconds is converted.
    expect(c.upstreams[1]!.options).toEqual({
      attemptTimeout: 2000,
      tlsFirst: true,
      retainServerOrder: true,
      maxPendingBytes: 1_048_576,
      auth: { user: "svc", pass: "5s" },
    });
    // Duration text where the library wants a count is refused, not read as milliseconds.
    expect(configError(() => resolveConfig({ upstreams: { a: { target: "http://a:1", maxRetries: "5s" } } })).option).toBe("upstreams.a.maxRetries");
    expect(configError(() => resolveConfig({ upstreams: { a: { target: "http://a:1", minHold: "soon" } } })).option).toBe("upstreams.a.minHold");
  });

  it("suggests the nearest key at any depth, as the library does (hedge.dealy)", () => {
    const e = configError(() => resolveConfig({ upstreams: { a: { target: "http://a:1", hedge: { dealy: 5 } } } }));
    expect(e.option).toBe("upstreams.a.hedge.dealy");
    expect(e.message).toContain("did you mean upstreams.a.hedge.delay?");
    expect(configError(() => resolveConfig({ upstreams: { a: { target: "http://a:1", health: { intervall: "1s" } } } })).message).toContain(
      "did you mean upstreams.a.health.interval?",
    );
    expect(configError(() => resolveConfig({ upstreams: { n: { target: "nats://h:1", atemptTimeout: "1s" } } })).message).toContain(
      "did you mean upstreams.n.attemptTimeout?",
    );
  });
});

import { describe, expect, it } from "vitest";
import { parseHostPort } from "../../src/core/address.js";
import { ConfigError, TargetError, createHttp2Channel, parseDuration, type Http2ChannelOptions } from "../../src/index.js";
import { resolverFor } from "../../src/resolve/target.js";
import { StaticResolver } from "../../src/resolve/static-resolver.js";

const DISCOVERY = "static:///127.0.0.2:1";
const TARGET = "http://backend.test:8080";

/**
 * Constructs a channel that must be rejected; returns the error. A channel
 * that does get created is closed at once (it has not dialed yet: the static
 * resolver answers on the next turn of the event loop).
 */
async function rejected(options: Http2ChannelOptions): Promise<unknown> {
  let ch: ReturnType<typeof createHttp2Channel> | undefined;
  try {
    ch = createHttp2Channel(options);
  } catch (err) {
    return err;
  }
  await ch.close();
  throw new Error(`expected construction to throw for ${JSON.stringify(options)}`);
}

async function expectConfigError(options: Http2ChannelOptions, option: string): Promise<ConfigError> {
  const err = await rejected(options);
  expect(err).toBeInstanceOf(ConfigError);
  const e = err as ConfigError;
  expect(e.option).toBe(option);
  expect(e.message).toContain(option);
  expect(e.code).toBe("ERR_DIALTONE_CONFIG");
  return e;
}

async function expectTargetError(options: Http2ChannelOptions, target: string): Promise<TargetError> {
  const err = await rejected(options);
  expect(err).toBeInstanceOf(TargetError);
  const e = err as TargetError;
  expect(e.target).toBe(target);
  expect(e.message).toContain(target);
  expect(e.code).toBe("ERR_DIALTONE_TARGET");
  return e;
}

describe("createHttp2Channel: construction-time validation", () => {
  it("a valid configuration constructs (and closes) without throwing", async () => {
    const ch = createHttp2Channel({ target: TARGET, discovery: DISCOVERY, members: 2, acquireTimeout: 10 });
    expect(ch.target).toBe("http://backend.test:8080");
    expect(ch.connected).toBe(false);
    await ch.close();
  });

  it.each([0, 1.5, -1, Number.NaN])("members %s → ConfigError naming members", async (members) => {
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, members }, "members");
  });

  it("negative acquireTimeout → ConfigError", async () => {
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, acquireTimeout: -1 }, "acquireTimeout");
  });

  it("health.timeout -1 → ConfigError naming health.timeout", async () => {
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, health: { timeout: -1 } }, "health.timeout");
  });

  it("an unknown health key → ConfigError naming it", async () => {
    await expectConfigError(
      { target: TARGET, discovery: DISCOVERY, health: { intervalMs: 5 } as Http2ChannelOptions["health"] },
      "health.intervalMs",
    );
  });

  it("bad backoff → ConfigError naming the field", async () => {
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, backoff: { multiplier: 0.5 } }, "backoff.multiplier");
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, backoff: { initial: 500, max: 100 } }, "backoff.max");
  });

  it("an unknown option key → ConfigError naming it", async () => {
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, member: 3 } as unknown as Http2ChannelOptions, "member");
  });

  it("criticalMin > members → ConfigError", async () => {
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, members: 2, degraded: { criticalMin: 3 } }, "degraded.criticalMin");
    // Equal is fine.
    const ch = createHttp2Channel({ target: TARGET, discovery: DISCOVERY, members: 2, degraded: { criticalMin: 2 } });
    await ch.close();
  });

  it("tls options with an http:// target → ConfigError", async () => {
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, tls: { rejectUnauthorized: false } }, "tls");
  });

  it("an unknown balancer → ConfigError", async () => {
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, balancer: "round-robin" as "in-flight" }, "balancer");
  });

  it("a missing target → ConfigError", async () => {
    await expectConfigError({ discovery: DISCOVERY } as unknown as Http2ChannelOptions, "target");
  });

  it("unknown scheme ftp://x → TargetError", async () => {
    const e = await expectTargetError({ target: "ftp://x", discovery: DISCOVERY }, "ftp://x");
    expect(e.message).toContain("ftp:");
  });

  it("a target with a path → TargetError", async () => {
    await expectTargetError({ target: "http://backend.test:8080/api", discovery: DISCOVERY }, "http://backend.test:8080/api");
  });

  it.each([
    "static:///300.1.1.1:80",
    "static:///[::1:80",
    "static:///127.0.0.2:0",
    "static:///127.0.0.2:65536",
    "static:///127.0.0.2:http",
    "static:///127.0.0.2:",
    "static:///backend.test:80",
    "static:///",
    "static:///127.0.0.2:80,,127.0.0.3:80",
  ])("a malformed static list %s → TargetError naming it", async (discovery) => {
    await expectTargetError({ target: TARGET, discovery }, discovery);
  });

  it("an unknown discovery scheme → TargetError", async () => {
    await expectTargetError({ target: TARGET, discovery: "consul:///backend" }, "consul:///backend");
  });
});

describe("static discovery lists", () => {
  it("a static entry without a port is a TargetError when there is no default port", () => {
    expect(() => resolverFor("static:///127.0.0.2")).toThrow(TargetError);
    expect(() => resolverFor("static:///127.0.0.2")).toThrow(/missing port/);
  });

  it("a static entry without a port takes the default port (the channel passes the target's port)", () => {
    const r = resolverFor("static:///127.0.0.2,[::1]:9000", 8080);
    expect(r).toBeInstanceOf(StaticResolver);
    expect((r as StaticResolver).addresses).toEqual([
      { host: "127.0.0.2", port: 8080, family: 4 },
      { host: "::1", port: 9000, family: 6 },
    ]);
  });

  it("duplicates are dropped; IPv6 needs brackets with a port", () => {
    const r = resolverFor("static:///127.0.0.2:1,127.0.0.2:1,127.0.0.3:1") as StaticResolver;
    expect(r.addresses.map((a) => `${a.host}:${a.port}`)).toEqual(["127.0.0.2:1", "127.0.0.3:1"]);
    expect(() => resolverFor("static:///::1:80")).toThrow(TargetError);
  });
});

describe("parseDuration", () => {
  it.each([
    ["250ms", 250],
    ["5s", 5000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1.5s", 1500],
    [" 10ms ", 10],
    ["0s", 0],
  ])("%s → %i ms", (text, ms) => {
    expect(parseDuration("opt", text)).toBe(ms);
  });

  it("takes plain numbers as milliseconds", () => {
    expect(parseDuration("opt", 750)).toBe(750);
  });

  it.each(["5 parsecs", "5", "-5s", "", "s", "5sec", "1e3ms", "5S"])("%j → ConfigError naming the option", (text) => {
    try {
      parseDuration("health.interval", text);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).option).toBe("health.interval");
      expect((err as ConfigError).message).toContain("health.interval");
      return;
    }
    throw new Error(`parseDuration accepted ${JSON.stringify(text)}`);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])("the number %s → ConfigError", (n) => {
    expect(() => parseDuration("closeGrace", n)).toThrow(ConfigError);
  });
});

describe("parseHostPort", () => {
  const T = "static:///x";

  it.each([
    ["[::1]:80", undefined, { host: "::1", port: 80 }],
    ["[2001:db8::1]:8443", undefined, { host: "2001:db8::1", port: 8443 }],
    ["127.0.0.1:8080", undefined, { host: "127.0.0.1", port: 8080 }],
    ["backend.test:1", undefined, { host: "backend.test", port: 1 }],
    ["backend.test:65535", undefined, { host: "backend.test", port: 65535 }],
    ["backend.test", 443, { host: "backend.test", port: 443 }],
    ["[::1]", 443, { host: "::1", port: 443 }],
    ["::1", 80, { host: "::1", port: 80 }],
    [" 127.0.0.1:80 ", undefined, { host: "127.0.0.1", port: 80 }],
  ] as Array<[string, number | undefined, { host: string; port: number }]>)("%j (default %s) → %o", (input, def, out) => {
    expect(parseHostPort(input, T, def)).toEqual(out);
  });

  it.each([
    ["backend.test", undefined, /missing port/],
    ["[::1]", undefined, /missing port/],
    ["127.0.0.1:0", undefined, /out of range/],
    ["127.0.0.1:65536", undefined, /out of range/],
    ["127.0.0.1:99999", 80, /out of range/],
    ["127.0.0.1:123456", undefined, /bad port/],
    ["127.0.0.1:-1", undefined, /bad port/],
    ["127.0.0.1:8a", undefined, /bad port/],
    ["127.0.0.1:", 80, /bad port/],
    [":80", undefined, /empty host/],
    ["[::1:80", undefined, /unclosed/],
    ["[::1]80", undefined, /after "\]"/],
    ["[127.0.0.1]:80", undefined, /not an IPv6/],
    ["::1:80:zz", undefined, /IPv6 needs \[brackets\]/],
  ] as Array<[string, number | undefined, RegExp]>)("%j (default %s) → TargetError", (input, def, why) => {
    try {
      parseHostPort(input, T, def);
    } catch (err) {
      expect(err).toBeInstanceOf(TargetError);
      expect((err as TargetError).target).toBe(T);
      expect((err as TargetError).message).toMatch(why);
      return;
    }
    throw new Error(`parseHostPort accepted ${JSON.stringify(input)}`);
  });
});

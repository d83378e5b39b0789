import { describe, expect, it } from "vitest";
import { parseHostPort } from "../../src/core/address.js";
import { MAX_TIMER_MS, requireTimeout } from "../../src/core/duration.js";
import { closestKey } from "../../src/core/options-check.js";
import { redactTarget } from "../../src/core/redact.js";
import { MAX_MEMBERS } from "../../src/transport/common-options.js";
import {
  ConfigError,
  DialtoneError,
  DnsResolver,
  Reconnect,
  TargetError,
  createHttp2Channel,
  parseDuration,
  type Http2ChannelOptions,
  type ReconnectOptions,
} from "../../src/index.js";
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
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, health: { intervalMs: 5 } as Http2ChannelOptions["health"] }, "health.intervalMs");
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

// ---- issue 10, items 5, 6 (options) and 8 ----

const MAX = MAX_TIMER_MS;
const HTTPS = "https://backend.test:8443";

describe("durations are bounded by setTimeout's limit (2^31−1 ms)", () => {
  it("MAX_TIMER_MS is setTimeout's limit", () => {
    expect(MAX_TIMER_MS).toBe(2_147_483_647);
  });

  it.each([
    ["health.interval", { health: { interval: 3e9 } }],
    ["health.interval", { health: { interval: MAX + 1 } }],
    ["health.timeout", { health: { timeout: MAX + 1 } }],
    ["health.suspectAfter", { health: { suspectAfter: Number.MAX_SAFE_INTEGER } }],
    ["backoff.initial", { backoff: { initial: MAX + 1, max: MAX + 1 } }],
    ["backoff.max", { backoff: { max: 1e10 } }],
    ["backoff.timeout", { backoff: { timeout: 1e10 } }],
    ["acquireTimeout", { acquireTimeout: MAX + 1 }],
    ["connectTimeout", { connectTimeout: MAX + 1 }],
    ["connectTimeout", { connectTimeout: 0 }],
    ["closeGrace", { closeGrace: 1e12 }],
    ["drainTimeout", { drainTimeout: MAX + 1 }],
    ["readyTimeout", { readyTimeout: Number.MAX_SAFE_INTEGER }],
    ["requestTimeout", { requestTimeout: Number.MAX_SAFE_INTEGER }],
    ["requestTimeout", { requestTimeout: 0 }],
    ["requestTimeout", { requestTimeout: "5s" }],
  ] as Array<[string, Partial<Http2ChannelOptions>]>)("%s in %j → ConfigError naming it", async (option, extra) => {
    const e = await expectConfigError({ target: TARGET, discovery: DISCOVERY, ...extra } as Http2ChannelOptions, option);
    expect(e.message).toContain(String(MAX));
  });

  it("exactly MAX_TIMER_MS is accepted everywhere a duration enters", async () => {
    const ch = createHttp2Channel({
      target: TARGET,
      discovery: DISCOVERY,
      health: { interval: MAX, timeout: MAX, suspectAfter: MAX },
      backoff: { initial: MAX, max: MAX, timeout: MAX },
      acquireTimeout: MAX,
      connectTimeout: MAX,
      closeGrace: 0,
      drainTimeout: MAX,
      readyTimeout: MAX,
      requestTimeout: MAX,
    });
    await ch.close();
  });

  it("a DNS resolver duration past the limit is refused at construction", async () => {
    await expectConfigError({ target: TARGET, discovery: "dns:///backend.test:80", dns: { nameservers: ["127.0.0.1:53"], timeout: MAX + 1 } }, "dns.timeout");
    await expectConfigError({ target: TARGET, discovery: "dns:///backend.test:80", dns: { nameservers: ["127.0.0.1:53"], maxTtl: 1e10 } }, "dns.maxTtl");
  });

  it("parseDuration refuses durations past the limit, as numbers and as text", () => {
    expect(() => parseDuration("health.interval", 3e9)).toThrow(ConfigError);
    expect(() => parseDuration("health.interval", "600h")).toThrow(/health\.interval/);
    expect(parseDuration("health.interval", "596h")).toBe(596 * 3_600_000);
    expect(parseDuration("health.interval", MAX)).toBe(MAX);
  });

  it("Reconnect refuses a backoff past the limit before it starts", () => {
    const connect = async (): Promise<number> => 1;
    const lost = (): Promise<unknown> => new Promise(() => {});
    for (const backoff of [{ timeout: 3e9 }, { initial: 1e10, max: 1e10 }, { max: Number.MAX_SAFE_INTEGER }]) {
      expect(() => new Reconnect({ connect, lost, backoff })).toThrow(ConfigError);
    }
  });
});

describe("requireTimeout: the per-call timeout check", () => {
  it.each([Number.NaN, -1, 0, "5s", Number.POSITIVE_INFINITY, MAX + 1, null, undefined, {}, "1000"])("%j → ConfigError with option timeout", (value) => {
    try {
      requireTimeout("timeout", value);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect(err).toBeInstanceOf(DialtoneError);
      expect((err as ConfigError).option).toBe("timeout");
      expect((err as ConfigError).code).toBe("ERR_DIALTONE_CONFIG");
      return;
    }
    throw new Error(`requireTimeout accepted ${String(value)}`);
  });

  it.each([1, 0.5, 1500, MAX])("%s is a valid timeout and comes back unchanged", (value) => {
    expect(requireTimeout("timeout", value)).toBe(value);
  });
});

describe("integer options have upper bounds", () => {
  it.each([
    ["members", { members: 10_001 }],
    ["members", { members: 1e5 }],
    ["maxQueue", { maxQueue: 2 ** 53 }],
    ["maxRetries", { maxRetries: 1e300 }],
    ["maxResponseBytes", { maxResponseBytes: Number.POSITIVE_INFINITY }],
    ["maxResponseBytes", { maxResponseBytes: 2 ** 60 }],
    ["health.unhealthyAfter", { health: { unhealthyAfter: 2 ** 53 } }],
  ] as Array<[string, Partial<Http2ChannelOptions>]>)("%s in %j → ConfigError", async (option, extra) => {
    await expectConfigError({ target: TARGET, discovery: DISCOVERY, ...extra } as Http2ChannelOptions, option);
  });

  it("the members bound is 10,000 (MAX_MEMBERS)", () => {
    expect(MAX_MEMBERS).toBe(10_000);
  });
});

describe("option objects are checked at every depth", () => {
  it.each([
    [{ target: HTTPS, tls: { caFile: "/etc/ca.pem" } }, "tls.caFile", "did you mean tls.ca?"],
    [{ target: HTTPS, tls: { rejectUnauthorised: false } }, "tls.rejectUnauthorised", "did you mean tls.rejectUnauthorized?"],
    [{ target: TARGET, health: { intervalMs: 5 } }, "health.intervalMs", "did you mean health.interval?"],
    [{ target: TARGET, backoff: { maxDelay: 5 } }, "backoff.maxDelay", "did you mean backoff.max?"],
    [{ target: TARGET, backoff: { intial: 5 } }, "backoff.intial", "did you mean backoff.initial?"],
    [{ target: TARGET, degraded: { criticalmin: 0 } }, "degraded.criticalmin", "did you mean degraded.criticalMin?"],
    [{ target: TARGET, discovery: "dns:///backend.test:80", dns: { nameserver: ["127.0.0.1:53"] } }, "dns.nameserver", "did you mean dns.nameservers?"],
    [{ target: TARGET, member: 3 }, "member", "did you mean members?"],
    [{ target: TARGET, frobnicate: 3 }, "frobnicate", undefined],
  ] as Array<[Record<string, unknown>, string, string | undefined]>)("%j → ConfigError naming %s", async (opts, option, hint) => {
    const e = await expectConfigError({ discovery: DISCOVERY, ...opts } as unknown as Http2ChannelOptions, option);
    expect(e.message).toContain("unknown option");
    if (hint) expect(e.message).toContain(hint);
    else expect(e.message).not.toContain("did you mean");
  });

  it.each([
    [{ target: HTTPS, tls: "insecure" }, "tls"],
    [{ target: HTTPS, tls: { ca: 5 } }, "tls.ca"],
    [{ target: HTTPS, tls: { ca: [] } }, "tls.ca"],
    [{ target: HTTPS, tls: { ca: ["pem", 5] } }, "tls.ca"],
    [{ target: HTTPS, tls: { cert: "pem" } }, "tls.key"],
    [{ target: HTTPS, tls: { key: Buffer.from("k") } }, "tls.cert"],
    [{ target: HTTPS, tls: { cert: {}, key: "k" } }, "tls.cert"],
    [{ target: HTTPS, tls: { rejectUnauthorized: "false" } }, "tls.rejectUnauthorized"],
    [{ target: HTTPS, tls: { servername: 5 } }, "tls.servername"],
    [{ target: TARGET, health: 1000 }, "health"],
    [{ target: TARGET, health: [] }, "health"],
    [{ target: TARGET, backoff: "fast" }, "backoff"],
    [{ target: TARGET, degraded: 1 }, "degraded"],
    [{ target: TARGET, dns: { nameservers: ["127.0.0.1:53"] } }, "dns"],
    [{ target: TARGET, discovery: "dns:///backend.test:80", dns: "8.8.8.8" }, "dns"],
    [{ target: TARGET, discovery: "dns:///backend.test:80", dns: { nameservers: "127.0.0.1:53" } }, "dns.nameservers"],
    [{ target: TARGET, discovery: "dns:///backend.test:80", dns: { nameservers: ["127.0.0.1:53"], rotate: "yes" } }, "dns.rotate"],
    [{ target: TARGET, random: 0.5 }, "random"],
  ] as Array<[Record<string, unknown>, string]>)("%j → ConfigError naming %s", async (opts, option) => {
    await expectConfigError({ discovery: DISCOVERY, ...opts } as unknown as Http2ChannelOptions, option);
  });

  it("well-formed tls options are accepted (ca as string, Buffer or a list; cert and key together)", async () => {
    for (const tls of [
      { ca: "pem" },
      { ca: Buffer.from("pem") },
      { ca: ["a", Buffer.from("b")] },
      { cert: "c", key: "k", rejectUnauthorized: true, servername: "x.test" },
    ]) {
      const ch = createHttp2Channel({ target: HTTPS, discovery: DISCOVERY, tls });
      await ch.close();
    }
  });

  it("Reconnect options: unknown keys and wrong types are ConfigErrors before anything starts", () => {
    const connect = async (): Promise<number> => 1;
    const lost = (): Promise<unknown> => new Promise(() => {});
    const cases: Array<[Record<string, unknown>, string, string | undefined]> = [
      [{ connect, lost, onLost: lost }, "onLost", undefined],
      [{ connect, lost, timeout: 5 }, "timeout", undefined],
      [{ connect, lost, backof: {} }, "backof", "did you mean backoff?"],
      [{ connect, lost, backoff: { timeOut: 5 } }, "backoff.timeOut", "did you mean backoff.timeout?"],
      [{ connect, lost, backoff: 5 }, "backoff", undefined],
      [{ connect }, "lost", undefined],
      [{ lost }, "connect", undefined],
      [{ connect, lost, dispose: "close" }, "dispose", undefined],
      [{ connect, lost, signal: {} }, "signal", undefined],
      [{ connect, lost, name: 5 }, "name", undefined],
      [{ connect, lost, unref: "yes" }, "unref", undefined],
    ];
    for (const [opts, option, hint] of cases) {
      let err: unknown;
      try {
        new Reconnect(opts as unknown as ReconnectOptions<number>);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(Object.keys(opts))).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).option).toBe(option);
      if (hint) expect((err as ConfigError).message).toContain(hint);
    }
  });
});

describe("closestKey", () => {
  it.each([
    ["caFile", ["ca", "cert", "key"], "ca"],
    ["password", ["user", "pass", "token"], "pass"],
    ["Members", ["members"], "members"],
    ["intervl", ["interval", "timeout"], "interval"],
    ["zzz", ["interval", "timeout"], undefined],
    ["x", ["ca", "key"], undefined],
  ] as Array<[string, string[], string | undefined]>)("%s among %j → %s", (key, known, want) => {
    expect(closestKey(key, known)).toBe(want);
  });
});

describe("credentials in targets are refused and never echoed", () => {
  const SECRET = "s3cr3t-pw";

  function expectRedacted(err: unknown): TargetError {
    expect(err).toBeInstanceOf(TargetError);
    const e = err as TargetError;
    expect(e.code).toBe("ERR_DIALTONE_TARGET");
    for (const text of [e.message, e.target, String(e.stack), JSON.stringify(e)]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain("app:");
    }
    return e;
  }

  it.each([
    `https://app:${SECRET}@backend.test`,
    `http://app:${SECRET}@backend.test:8080`,
    `https://:${SECRET}@backend.test`,
    `https://app:${SECRET}@backend.test/path`,
    `ftp://app:${SECRET}@backend.test`,
    `http://app:${SECRET}@[bad`,
  ])("%s → TargetError without the user-info", async (target) => {
    const e = expectRedacted(await rejected({ target, discovery: DISCOVERY }));
    expect(e.target).toContain("***@");
  });

  it("a URL object with credentials is redacted too", async () => {
    const e = expectRedacted(await rejected({ target: new URL(`https://app:${SECRET}@backend.test`), discovery: DISCOVERY }));
    expect(e.message).toMatch(/credentials/);
  });

  it.each([
    `static:///app:${SECRET}@127.0.0.2:80`,
    `static:///127.0.0.3:80,app:${SECRET}@127.0.0.2:80`,
    `dns://app:${SECRET}@127.0.0.1:53/backend.test:80`,
    `app:${SECRET}@127.0.0.2:80`,
  ])("discovery %s → TargetError without the user-info", async (discovery) => {
    expectRedacted(await rejected({ target: TARGET, discovery }));
  });
});

describe("redactTarget", () => {
  it.each([
    ["https://app:pw@host", "https://***@host"],
    ["https://app:p@ss@host:8443/x", "https://***@host:8443/x"],
    ["https://host:8443", "https://host:8443"],
    ["nats://u:pw@10.0.0.1:4222,u:pw@10.0.0.2:4222", "nats://***@10.0.0.1:4222,***@10.0.0.2:4222"],
    ["nats://10.0.0.1:4222,u:pw@10.0.0.2:4222", "nats://10.0.0.1:4222,***@10.0.0.2:4222"],
    ["nats://u:p,w@10.0.0.2:4222", "nats://***,***@10.0.0.2:4222"],
    ["nats://token@host", "nats://***@host"],
    ["static:///u:pw@127.0.0.2:80", "static:///***@127.0.0.2:80"],
    ["u:pw@127.0.0.2:80", "***@127.0.0.2:80"],
    ["https://app:p/w@host", "https://***@host"],
    ["", ""],
  ])("%s → %s", (raw, want) => {
    expect(redactTarget(raw)).toBe(want);
  });
});

describe("a DnsResolver built directly gets the channel's checks", () => {
  it("refuses credentials in its target without echoing them, and unknown option keys by name", () => {
    let err: unknown;
    try {
      new DnsResolver("dns://app:s3cret@127.0.0.1:53/svc.test:80");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TargetError);
    expect(String((err as Error).message) + (err as TargetError).target).not.toContain("s3cret");
    expect(() => new DnsResolver("dns:///svc.test:80", { nameserver: ["127.0.0.1:53"] } as never)).toThrow(/dns\.nameserver.*nameservers/);
    expect(() => new DnsResolver("dns:///svc.test:80", { family: 4 })).not.toThrow();
  });
});

describe("validateHttp2Options / validateNatsOptions: the constructors' checks without a channel", () => {
  it("throw what the constructors throw, and accept what they accept", async () => {
    const { validateHttp2Options, validateNatsOptions } = await import("../../src/index.js");
    expect(() => validateHttp2Options({ target: "http://svc.test:8080", discovery: "static:///127.0.0.2:8080", members: 2 })).not.toThrow();
    expect(() => validateHttp2Options({ target: "http://svc.test:8080", health: { interval: 3e9 } })).toThrow(ConfigError);
    expect(() => validateHttp2Options({ target: "ftp://svc.test" })).toThrow(TargetError);
    expect(() => validateNatsOptions({ target: "nats://127.0.0.2:4222,127.0.0.3:4222" })).not.toThrow();
    expect(() => validateNatsOptions({ target: "nats://127.0.0.2:4222", auth: { password: "x" } as never })).toThrow(/auth\.password/);
  });
});

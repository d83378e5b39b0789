import { describe, expect, it } from "vitest";
import { ConfigError, DialtoneError, NoMemberError, TargetError, createNatsChannel, type NatsChannelOptions } from "../../src/index.js";
import { resolveNatsOptions } from "../../src/transport/nats/options.js";

// Construction validates synchronously, before any socket; nothing here connects anywhere.
describe("NATS channel configuration errors at construction", () => {
  it.each([
    [{ target: "http://127.0.0.2:4222" }, TargetError, /nats:\/\/host:port/],
    [{ target: "" }, ConfigError, /target/],
    [{ target: "nats://127.0.0.2:4222", members: 0 }, ConfigError, /members/],
    [{ target: "nats://127.0.0.2:4222", auth: { user: "u", token: "t" } }, ConfigError, /auth/],
    [{ target: "nats://127.0.0.2:4222", maxPending: 0 }, ConfigError, /maxPending/],
    [{ target: "nats://127.0.0.2:4222", requestTimeout: -1 }, ConfigError, /requestTimeout/],
    [{ target: "nats://127.0.0.2:4222", frobnicate: true }, ConfigError, /frobnicate/],
    [{ target: "nats://127.0.0.2:99999" }, TargetError, /port/],
    [{ target: "nats://a.test:4222,http://b.test:4222" }, TargetError, /scheme "http:"/],
    [{ target: "127.0.0.2:4222,nats://127.0.0.3:4222" }, TargetError, /nats:\/\/host:port/],
    [{ target: [] }, ConfigError, /target/],
    [{ target: "nats://127.0.0.2:4222", maxPendingBytes: 0 }, ConfigError, /maxPendingBytes/],
    [{ target: "nats://127.0.0.2:4222", tlsFirst: "yes" }, ConfigError, /tlsFirst/],
    [{ target: "nats://127.0.0.2:4222", authenticator: "u:p" }, ConfigError, /authenticator/],
    [{ target: "nats://127.0.0.2:4222", authenticator: () => ({}), auth: { token: "t" } }, ConfigError, /authenticator/],
    [{ target: "nats://127.0.0.2:4222", auth: { nkeySeed: "not-a-seed" } }, ConfigError, /nkeySeed/],
    [{ target: "nats://127.0.0.2:4222", backoff: () => -1 }, ConfigError, /backoff/],
  ])("%j", (opts, cls, msg) => {
    expect(() => createNatsChannel(opts as Parameters<typeof createNatsChannel>[0])).toThrow(cls);
    expect(() => createNatsChannel(opts as Parameters<typeof createNatsChannel>[0])).toThrow(msg);
  });

  it("subscribe() with no usable member fails after acquireTimeout instead of waiting forever", async () => {
    // Nothing listens on port 1: every dial is refused, so no member ever becomes usable.
    const ch = createNatsChannel({ target: "nats://127.0.0.2:1", members: 1, acquireTimeout: 300 });
    try {
      const started = performance.now();
      await expect(ch.subscribe("events")).rejects.toBeInstanceOf(NoMemberError);
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      await ch.close();
    }
  });

  it("rejects subjects NATS would reject, before sending", async () => {
    const ch = createNatsChannel({ target: "nats://127.0.0.2:1", acquireTimeout: 10 });
    try {
      await expect(ch.request("has space")).rejects.toThrow(/invalid NATS subject/);
      await expect(ch.request("a..b")).rejects.toThrow(/invalid NATS subject/);
      await expect(ch.publish("wild.*")).rejects.toThrow(/invalid NATS subject/);
    } finally {
      await ch.close();
    }
  });
});

// ---- issue 10, items 5, 6 (options) and 8 ----

const SECRET = "s3cr3t-pw";
const ONE = "127.0.0.2:1";

/** The ConfigError/TargetError a construction throws; nothing here dials (construction is synchronous). */
function thrown(opts: Record<string, unknown>): DialtoneError {
  try {
    resolveNatsOptions(opts as unknown as NatsChannelOptions);
  } catch (err) {
    expect(err).toBeInstanceOf(DialtoneError);
    return err as DialtoneError;
  }
  throw new Error(`expected ${JSON.stringify(Object.keys(opts))} to be refused`);
}

function expectNoSecret(e: Error & { target?: string }): void {
  for (const text of [e.message, e.target ?? "", String(e.stack), JSON.stringify(e)]) {
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain("app:");
  }
}

describe("NATS: credentials in the target move into auth and are never echoed", () => {
  it("user:pass@ becomes auth.user/pass; target and name carry no credentials", async () => {
    const o = resolveNatsOptions({ target: `nats://app:${SECRET}@${ONE}` });
    expect(o.auth).toEqual({ user: "app", pass: SECRET });
    expect(o.target).toBe(`nats://${ONE}`);
    expect(o.name).toBe(`nats://${ONE}`);
    const ch = createNatsChannel({ target: `nats://app:${SECRET}@${ONE}`, members: 1, acquireTimeout: 10 });
    try {
      expect(ch.target).toBe(`nats://${ONE}`);
      expect(ch.name).toBe(`nats://${ONE}`);
      expect(JSON.stringify(ch.stats())).not.toContain(SECRET);
    } finally {
      await ch.close();
    }
  });

  it("a bare name@ is a token (as NATS clients read it); user-info is percent-decoded", () => {
    expect(resolveNatsOptions({ target: `nats://${SECRET}@${ONE}` }).auth).toEqual({ token: SECRET });
    expect(resolveNatsOptions({ target: `nats://app%2Fx:p%40ss%2Cw@${ONE}` }).auth).toEqual({ user: "app/x", pass: "p@ss,w" });
  });

  it("every server of a list may carry the same credentials; all are stripped from the target", () => {
    const o = resolveNatsOptions({ target: `nats://app:${SECRET}@127.0.0.2:4222,app:${SECRET}@127.0.0.3:4222,127.0.0.4:4222` });
    expect(o.auth).toEqual({ user: "app", pass: SECRET });
    expect(o.target).toBe("nats://127.0.0.2:4222,127.0.0.3:4222,127.0.0.4:4222");
  });

  it.each([
    [{ target: `nats://app:${SECRET}@127.0.0.2:4222,bob:other@127.0.0.3:4222` }, "target", /different credentials/],
    [{ target: `nats://app:${SECRET}@${ONE}`, auth: { user: "app", pass: SECRET } }, "auth", /both the target URL and auth/],
    [{ target: `nats://app:${SECRET}@${ONE}`, auth: { token: "t" } }, "auth", /one place/],
  ])("conflicting credentials %# → ConfigError naming %s, without the secret", (opts, option, why) => {
    const e = thrown(opts);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).option).toBe(option);
    expect(e.message).toMatch(why);
    expectNoSecret(e);
  });

  it.each([
    `nats://app:${SECRET}@127.0.0.2:99999`,
    `nats://app:${SECRET}@127.0.0.2:http`,
    `nats://app:${SECRET}@a..test:4222,app:${SECRET}@b.test:4222`,
    `nats://app:s3c,r3t-pw@127.0.0.2:4222`,
    `nats://app:${SECRET}%zz@127.0.0.2:4222`,
    `nats://:${SECRET}@127.0.0.2:4222`,
    `http://app:${SECRET}@127.0.0.2:4222`,
  ])("%s → TargetError without the user-info", (target) => {
    const e = thrown({ target });
    expect(e).toBeInstanceOf(TargetError);
    expectNoSecret(e);
    expect(e.message).not.toContain("s3c");
  });

  it("a discovery string with credentials is refused, redacted", () => {
    const e = thrown({ target: `nats://${ONE}`, discovery: `static:///app:${SECRET}@127.0.0.2:4222` });
    expect(e).toBeInstanceOf(TargetError);
    expectNoSecret(e);
  });
});

describe("NATS: auth and tls are checked key by key", () => {
  it.each([
    [{ auth: { user: "app", password: "pw" } }, "auth.password", "did you mean auth.pass?"],
    [{ auth: { username: "app" } }, "auth.username", "did you mean auth.user?"],
    [{ auth: { nkey: "SU..." } }, "auth.nkey", "did you mean auth.nkeySeed?"],
    [{ tls: { ca_file: "/x" } }, "tls.ca_file", "did you mean tls.caFile?"],
    [{ tls: { rejectUnauthorized: false } }, "tls.rejectUnauthorized", undefined],
    [{ user: "app" }, "user", undefined],
  ] as Array<[Record<string, unknown>, string, string | undefined]>)("%j → ConfigError naming %s", (extra, option, hint) => {
    const e = thrown({ target: `nats://${ONE}`, ...extra });
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).option).toBe(option);
    expect(e.message).toContain("unknown option");
    if (hint) expect(e.message).toContain(hint);
  });

  it.each([
    [{ auth: "app:pw" }, "auth"],
    [{ auth: { user: 5 } }, "auth.user"],
    [{ auth: { user: "app", pass: 5 } }, "auth.pass"],
    [{ auth: { pass: "pw" } }, "auth.pass"],
    [{ auth: { nkeySeed: "SU", credsFile: "/x.creds" } }, "auth"],
    [{ auth: { token: "t", nkeySeed: "SU" } }, "auth"],
    [{ tls: { ca: Buffer.from("x") } }, "tls.ca"],
    [{ tls: { cert: "c" } }, "tls.key"],
    [{ tls: { keyFile: "/k" } }, "tls.certFile"],
    [{ tls: true }, "tls"],
    [{ ignoreDiscoveredServers: "yes" }, "ignoreDiscoveredServers"],
  ] as Array<[Record<string, unknown>, string]>)("%j → ConfigError naming %s", (extra, option) => {
    const e = thrown({ target: `nats://${ONE}`, ...extra });
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).option).toBe(option);
  });

  it("well-formed auth and tls pass through unchanged", () => {
    expect(resolveNatsOptions({ target: `nats://${ONE}`, auth: { user: "u", pass: "p" } }).auth).toEqual({ user: "u", pass: "p" });
    expect(resolveNatsOptions({ target: `nats://${ONE}`, auth: { user: "u" } }).auth).toEqual({ user: "u" });
    expect(resolveNatsOptions({ target: `nats://${ONE}`, auth: { token: "t" } }).auth).toEqual({ token: "t" });
    expect(resolveNatsOptions({ target: `tls://${ONE}`, tls: { caFile: "/ca.pem", certFile: "/c", keyFile: "/k" } }).tls).toEqual({
      options: { caFile: "/ca.pem", certFile: "/c", keyFile: "/k" },
      handshakeFirst: false,
    });
    expect(resolveNatsOptions({ target: `nats://${ONE}`, auth: {} }).auth).toEqual({});
  });
});

describe("NATS: durations and integers are bounded", () => {
  it.each([
    [{ requestTimeout: 3e9 }, "requestTimeout"],
    [{ requestTimeout: 0 }, "requestTimeout"],
    [{ requestTimeout: Number.NaN }, "requestTimeout"],
    [{ health: { interval: 3e9 } }, "health.interval"],
    [{ backoff: { timeout: 1e10 } }, "backoff.timeout"],
    [{ connectTimeout: 2 ** 31 }, "connectTimeout"],
    [{ members: 10_001 }, "members"],
    [{ maxPending: 2 ** 53 }, "maxPending"],
  ] as Array<[Record<string, unknown>, string]>)("%j → ConfigError naming %s", (extra, option) => {
    const e = thrown({ target: `nats://${ONE}`, ...extra });
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).option).toBe(option);
  });
});

describe("NATS: every server-list form NATS users write", () => {
  const A = "127.0.0.2:4222";
  const B = "127.0.0.3:4222";
  it.each([
    [`nats://${A},${B}`, `nats://${A},${B}`],
    [`nats://${A},nats://${B}`, `nats://${A},${B}`],
    [`nats://${A}, nats://${B}`, `nats://${A},${B}`],
    [` nats://${A} ,nats://${B}/ `, `nats://${A},${B}`],
    [[`nats://${A}`, `nats://${B}`], `nats://${A},${B}`],
    [[`nats://${A}`, B], `nats://${A},${B}`],
    [`NATS://${A}`, `NATS://${A}`],
  ] as Array<[string | string[], string]>)("%j → %s", async (target, shown) => {
    const o = resolveNatsOptions({ target });
    expect(o.target).toBe(shown);
    expect(o.tls).toBeUndefined();
  });

  it("tls:// on any server makes TLS required on every member; tlsFirst implies it", () => {
    expect(resolveNatsOptions({ target: `tls://${ONE}` }).tls).toEqual({ options: {}, handshakeFirst: false });
    expect(resolveNatsOptions({ target: [`nats://${ONE}`, "tls://127.0.0.3:4222"] }).target).toBe(`tls://${ONE},127.0.0.3:4222`);
    expect(resolveNatsOptions({ target: `nats://${ONE}`, tlsFirst: true }).tls).toEqual({ options: {}, handshakeFirst: true });
  });

  it("credentials on every URL of an array move into auth; the target keeps none", () => {
    const o = resolveNatsOptions({ target: [`nats://app:${SECRET}@127.0.0.2:4222`, `nats://app:${SECRET}@127.0.0.3:4222`] });
    expect(o.auth).toEqual({ user: "app", pass: SECRET });
    expect(o.target).toBe("nats://127.0.0.2:4222,127.0.0.3:4222");
  });

  it("several host names are allowed; TLS speaks to the target's name for addresses it cannot map", () => {
    const o = resolveNatsOptions({ target: "tls://a.test:4222, tls://b.test:4222" });
    expect(o.target).toBe("tls://a.test:4222,b.test:4222");
    expect(o.tlsName({ host: "10.0.0.9", port: 4222, family: 4 })).toBe("a.test");
    expect(resolveNatsOptions({ target: `tls://${ONE}` }).tlsName({ host: "127.0.0.2", port: 1, family: 4 })).toBeUndefined();
  });

  it("a backoff function is probed and wrapped: a later bad answer becomes a bounded delay", () => {
    let bad = false;
    const o = resolveNatsOptions({ target: `nats://${ONE}`, backoff: (n: number) => (bad ? Number.NaN : n * 100) });
    expect(o.backoffDelay?.(3)).toBe(300);
    bad = true;
    expect(o.backoffDelay?.(4)).toBe(10_000);
  });
});

describe("NATS attemptTimeout (issue 17, item 5)", () => {
  it("is hedge: { delay: attemptTimeout, max: 2 }; not together with hedge; a bad value is a ConfigError", () => {
    const t = "nats://127.0.0.2:4222";
    expect(resolveNatsOptions({ target: t, attemptTimeout: 200 }).hedge).toEqual({ delay: 200, max: 2, maxExtraLoad: false });
    expect(() => resolveNatsOptions({ target: t, attemptTimeout: 200, hedge: { delay: 50 } })).toThrow(/attemptTimeout/);
    expect(() => resolveNatsOptions({ target: t, attemptTimeout: 0 })).toThrow(ConfigError);
    expect(() => resolveNatsOptions({ target: t, attemptTimeout: 0 })).toThrow(/attemptTimeout/);
  });
});

describe("NATS default hedge (issue 24)", () => {
  it("idempotent requests are hedged at the running p95, once, for at most 5 % of them, unless hedge is given or false", () => {
    const t = "nats://127.0.0.2:4222";
    expect(resolveNatsOptions({ target: t }).hedge).toEqual({ delay: "p95", max: 1, maxExtraLoad: 0.05 });
    expect(resolveNatsOptions({ target: t, hedge: false }).hedge).toBeUndefined();
    expect(resolveNatsOptions({ target: t, hedge: { delay: 40 } }).hedge).toEqual({ delay: 40, max: 1, maxExtraLoad: false });
    expect(resolveNatsOptions({ target: t, attemptTimeout: 200 }).hedge).toEqual({ delay: 200, max: 2, maxExtraLoad: false });
  });
});

describe("NATS maxControlLine (issue 22, item 8)", () => {
  it("defaults to nats-server's 4096; a whole number of at least 256, else a ConfigError", () => {
    const t = "nats://127.0.0.2:4222";
    expect(resolveNatsOptions({ target: t }).maxControlLine).toBe(4096);
    expect(resolveNatsOptions({ target: t, maxControlLine: 1024 }).maxControlLine).toBe(1024);
    for (const bad of [100, 1.5, "4k", -1]) expect(() => resolveNatsOptions({ target: t, maxControlLine: bad as number })).toThrow(/maxControlLine/);
  });
});

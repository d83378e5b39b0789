import { describe, expect, it } from "vitest";
import { ConfigError, NoMemberError, TargetError, createNatsChannel } from "../../src/index.js";

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
    [{ target: "nats://a.test:4222,b.test:4222" }, TargetError, /IP literals/],
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

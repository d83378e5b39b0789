import { describe, expect, it } from "vitest";
import { ConfigError, TargetError, createNatsChannel } from "../../src/index.js";

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

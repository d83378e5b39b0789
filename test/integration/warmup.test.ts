import { afterAll, afterEach, describe, expect, it } from "vitest";
import { NotReadyError, createHttp2Channel, type Http2Channel } from "../../src/index.js";
import { startBackends, stopAllBackends } from "../helpers/backends.js";
import { recordEvents } from "../helpers/channel.js";

const channels: Http2Channel[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await stopAllBackends();
});
afterAll(stopAllBackends);

function open(opts: Parameters<typeof createHttp2Channel>[0]): Http2Channel {
  const ch = createHttp2Channel(opts);
  channels.push(ch);
  return ch;
}

describe("warm-up against real HTTP/2 backends", () => {
  it("connects and PINGs N members on N distinct addresses before ready() resolves", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    const port = backends[0]!.port;
    const ch = open({
      target: `http://backend.test:${port}`,
      discovery: `static:///${backends.map((b) => b.key).join(",")}`,
      members: 3,
      // One request at a time below must reach every member: the in-flight balancer spreads them evenly
      // (the peak-EWMA default may rightly prefer the faster members for a while).
      balancer: "in-flight",
    });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const s = ch.stats();
    expect(s.members).toHaveLength(3);
    expect(s.members.every((m) => m.state === "ready")).toBe(true);
    expect(new Set(s.members.map((m) => m.address))).toEqual(new Set(backends.map((b) => b.key)));
    // Every member answered its first PING before it became ready.
    const ok = rec.events.filter((e) => e.type === "connect-ok");
    expect(ok).toHaveLength(3);
    for (const e of ok) if (e.type === "connect-ok") expect(e.rtt).toBeGreaterThan(0);
    expect(ch.connected).toBe(true);
    // And requests reach all three backends.
    const seen = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const r = await ch.request({ path: "/" });
      expect(r.status).toBe(200);
      seen.add(String(r.headers["x-backend"]));
      expect(r.headers["x-authority"]).toBe(`backend.test:${port}`);
    }
    expect(seen).toEqual(new Set(backends.map((b) => b.key)));
  });

  it("stacks members evenly when there are fewer addresses than members", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const ch = open({
      target: `http://backend.test:${backends[0]!.port}`,
      discovery: `static:///${backends.map((b) => b.key).join(",")}`,
      members: 4,
    });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    const per = new Map<string, number>();
    for (const m of ch.stats().members) per.set(m.address, (per.get(m.address) ?? 0) + 1);
    expect([...per.values()]).toEqual([2, 2]);
    // A second member on an address was dialed only after the first there proved itself.
    for (const b of backends) {
      const attempts = rec.events.filter((e) => e.type === "connect-attempt" && e.address === b.key);
      const firstOk = rec.events.find((e) => e.type === "connect-ok" && e.member.address === b.key);
      expect(attempts).toHaveLength(2);
      expect(firstOk).toBeDefined();
      expect(attempts[1]!.at).toBeGreaterThanOrEqual(firstOk!.at);
    }
  });
});

describe("ready(signal)", () => {
  it("when the caller's signal ends the wait, rejects with NotReadyError: how many members were ready and the last connection error", async () => {
    const [good] = await startBackends(["127.0.0.2"]);
    // Nobody listens there: every dial is refused.
    const ch = open({ target: `http://svc.test:${good!.port}`, discovery: `static:///127.0.0.9:${good!.port}`, members: 2 });
    const err = await ch.ready(AbortSignal.timeout(300)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NotReadyError);
    expect((err as NotReadyError).ready).toBe(0);
    expect((err as NotReadyError).wanted).toBe(2);
    expect((err as NotReadyError).message).toContain("0 of 2 members ready");
    expect((err as NotReadyError).message).toContain("ECONNREFUSED");
  });
});

describe("discovery from the target itself", () => {
  it("an IP literal in the URL needs no discovery and no DNS", async () => {
    const backends = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://127.0.0.2:${backends[0]!.port}`, members: 2 });
    await ch.ready(AbortSignal.timeout(10_000));
    expect(ch.stats().addresses.map((a) => a.address)).toEqual([backends[0]!.key]);
    const r = await ch.request({ path: "/" });
    expect(r.headers["x-authority"]).toBe(`127.0.0.2:${backends[0]!.port}`);
  });

  it("a host name is resolved once through the OS (localhost via /etc/hosts)", async () => {
    const backends = await startBackends(["127.0.0.1"]);
    const ch = open({ target: `http://localhost:${backends[0]!.port}`, members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    expect(ch.stats().addresses.map((a) => a.address)).toContain(backends[0]!.key);
    const r = await ch.request({ path: "/" });
    expect(r.headers["x-backend"]).toBe(backends[0]!.key);
    expect(r.headers["x-authority"]).toBe(`localhost:${backends[0]!.port}`);
  });
});

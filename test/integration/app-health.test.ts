import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, createNatsChannel, type ChannelEvent } from "../../src/index.js";
import { eventually } from "../helpers/channel.js";
import { startBackends } from "../helpers/backends.js";
import { startPythonGrpc, stopRealServers } from "../helpers/real-servers.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();
afterEach(stopRealServers);

const FAST = { interval: 200, timeout: 500, unhealthyAfter: 2, healthyAfter: 1, suspectAfter: 0 };

describe("per-member application health (health.check), against real servers", () => {
  it("gRPC Health/Check: a Python server flipped to NOT_SERVING is made unhealthy and evicted like a missed PONG, and gets members again once SERVING", async () => {
    const servers = [await startPythonGrpc("127.0.0.2"), await startPythonGrpc("127.0.0.3")];
    const ch = open({
      target: `http://grpc.test:${servers[0]!.port}`,
      discovery: `static:///${servers.map((s) => s.key).join(",")}`,
      members: 2,
      health: { ...FAST, check: { grpc: { service: "" } } },
      backoff: { initial: 100, max: 400 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    expect(new Set(ch.stats().members.map((m) => m.address))).toEqual(new Set(servers.map((s) => s.key)));
    const evicted: ChannelEvent[] = [];
    ch.on((e) => {
      if (e.type === "evicted" && e.member.address === servers[0]!.key) evicted.push(e);
    });
    servers[0]!.notServing();
    await eventually(() => evicted.length > 0, 3000, "the NOT_SERVING member to be evicted");
    expect(evicted[0]).toMatchObject({ reason: "unhealthy" });
    // Its replacement cannot pass warm-up there, so both members end up on the serving backend.
    await eventually(
      () =>
        ch
          .stats()
          .members.filter((m) => m.state === "ready")
          .every((m) => m.address === servers[1]!.key) && ch.stats().ready === 2,
      5000,
      "both members on the serving backend",
    );
    servers[0]!.serving();
    await eventually(
      () => ch.stats().members.some((m) => m.state === "ready" && m.address === servers[0]!.key),
      8000,
      "a member back on the recovered backend",
    );
  });

  it("HTTP check: a backend whose /healthz answers 503 has its member made unhealthy; 200 again brings one back", async () => {
    const servers = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const ch = open({
      target: `http://svc.test:${servers[0]!.port}`,
      discovery: staticDiscovery(servers),
      members: 2,
      health: { ...FAST, check: { http: { path: "/healthz" } } },
      backoff: { initial: 100, max: 400 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    await servers[0]!.command({ cmd: "health", status: 503 });
    await eventually(
      () => !ch.stats().members.some((m) => m.state === "ready" && m.address === servers[0]!.key),
      3000,
      "no ready member on the failing backend",
    );
    expect((await ch.request({ path: "/" })).body.toString()).toBe(`ok ${servers[1]!.key}`);
    await servers[0]!.command({ cmd: "health", status: 200 });
    await eventually(() => ch.stats().members.some((m) => m.state === "ready" && m.address === servers[0]!.key), 8000, "a member back on the healthy backend");
  });

  it("bad check options are ConfigErrors naming the field", () => {
    const base = { target: "http://svc.test:1", discovery: "static:///127.0.0.2:1" };
    expect(() => open({ ...base, health: { check: { grpc: {}, http: { path: "/" } } as never } })).toThrow(ConfigError);
    expect(() => open({ ...base, health: { check: { http: { path: "healthz" } } } })).toThrow(/health\.check\.http\.path/);
    expect(() => open({ ...base, health: { check: { grpc: { service: "bad service" } } } })).toThrow(/health\.check\.grpc\.service/);
    expect(() => open({ ...base, health: { check: { tcp: {} } as never } })).toThrow(/health\.check\.tcp/);
    expect(() => createNatsChannel({ target: "nats://127.0.0.2:4222", health: { check: { http: { path: "/" } } } })).toThrow(/health\.check/);
  });
});

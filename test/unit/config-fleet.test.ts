import { describe, expect, it } from "vitest";
import { ConfigError, createHttp2Channel, type Http2ChannelOptions } from "../../src/index.js";
import { SUPERVISOR_DEFAULTS, fixedMembers } from "../../src/supervisor/members-plan.js";
import { resolveHttp2Options } from "../../src/transport/http2/options.js";

const DISCOVERY = "static:///127.0.0.2:1";
const TARGET = "http://backend.test:8080";

function configError(options: Http2ChannelOptions): ConfigError {
  try {
    const ch = createHttp2Channel(options);
    void ch.close();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(options)}`);
}

describe("fleet options: members { min, max } and subset { clientId }", () => {
  it.each([
    [{ min: 0, max: 3 }, "members.min"],
    [{ min: 1.5, max: 3 }, "members.min"],
    [{ min: 2, max: 10_001 }, "members.max"],
    [{ min: 3, max: 2 }, "members.max"],
    [{ max: 2 }, "members.min"],
    [{ min: 1, max: 2, target: 0 }, "members.target"],
    [{ min: 1, max: 2, shrinkAfter: -1 }, "members.shrinkAfter"],
    [{ min: 1, max: 2, growAfter: 0 }, "members.growAfter"],
    [{ min: 1, max: 2, growafter: 500 }, "members.growafter"],
    [{ min: 1, max: 2, maximum: 3 }, "members.maximum"],
    [[1, 2], "members"],
    ["3", "members"],
  ])("members %j → ConfigError naming %s", (members, option) => {
    const err = configError({ target: TARGET, discovery: DISCOVERY, members: members as never });
    expect(err.option).toBe(option);
  });

  it.each([
    [{ clientId: -1 }, "subset.clientId"],
    [{ clientId: 1.5 }, "subset.clientId"],
    [{ clientId: "3" }, "subset.clientId"],
    [{}, "subset.clientId"],
    [{ clientId: 1, size: 3 }, "subset.size"],
    [7, "subset"],
  ])("subset %j → ConfigError naming %s", (subset, option) => {
    const err = configError({ target: TARGET, discovery: DISCOVERY, subset: subset as never });
    expect(err.option).toBe(option);
  });

  it("criticalMin is checked against members.min, and a good range and subset construct", async () => {
    expect(configError({ target: TARGET, discovery: DISCOVERY, members: { min: 2, max: 8 }, degraded: { criticalMin: 3 } }).option).toBe(
      "degraded.criticalMin",
    );
    const ch = createHttp2Channel({
      target: TARGET,
      discovery: DISCOVERY,
      members: { min: 2, max: 8, target: 16, growAfter: 500, shrinkAfter: 10_000 },
      subset: { clientId: 4 },
    });
    expect(ch.stats().wanted).toBe(2);
    await ch.close();
  });

  it("members resolve once into the plan the supervisor gets unchanged, defaults from one place", () => {
    expect(resolveHttp2Options({ target: TARGET, discovery: DISCOVERY, members: { min: 1, max: 4, growAfter: 500 } }).members).toEqual({
      min: 1,
      max: 4,
      target: undefined,
      growAfter: 500,
      shrinkAfter: SUPERVISOR_DEFAULTS.shrinkAfter,
    });
    expect(resolveHttp2Options({ target: TARGET, discovery: DISCOVERY, members: 2 }).members).toEqual(fixedMembers(2));
    const o = resolveHttp2Options({ target: TARGET, discovery: DISCOVERY });
    expect([o.flapWindow, o.minHold, o.maxOutstanding]).toEqual([
      SUPERVISOR_DEFAULTS.flapWindow,
      SUPERVISOR_DEFAULTS.minHold,
      SUPERVISOR_DEFAULTS.maxOutstanding,
    ]);
  });
});

import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ClosedError, ConfigError, Reconnect, ReconnectMetrics, type ReconnectEvent, type ReconnectOptions } from "../../src/index.js";
import { familiesFor } from "../../src/metrics/families.js";
import { sample } from "../helpers/prom.js";

/**
 * In-process: the handle's connect is a scripted function (what a user
 * passes), time is vitest's fake clock, and the registry is read back as
 * Prometheus text. The real-socket version is test/integration/reconnect-metrics.test.ts.
 */

interface Conn {
  lose(cause?: Error): void;
  lost: Promise<unknown>;
}

/** Each attempt takes the next step of `script` ("fail" rejects), then `then`. */
function scripted(script: Array<"ok" | "fail">, then: "ok" | "fail" = "fail"): ReconnectOptions<Conn>["connect"] {
  const steps = [...script];
  return async () => {
    if ((steps.shift() ?? then) === "fail") throw new Error("ECONNREFUSED");
    let lose!: (cause?: Error) => void;
    const lost = new Promise<unknown>((resolve) => (lose = (cause) => resolve(cause)));
    return { lose, lost };
  };
}

const handles: Array<Reconnect<Conn>> = [];
function open(
  name: string,
  connect = scripted([], "ok"),
  backoff: ReconnectOptions<Conn>["backoff"] = { initial: 100, multiplier: 2, max: 400, jitter: 0, timeout: 0 },
): Reconnect<Conn> {
  const r = new Reconnect<Conn>({ name, connect, lost: (c) => c.lost, backoff });
  handles.push(r);
  return r;
}

const T0 = 1_700_000_000_000;
beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});
afterEach(async () => {
  const closing = Promise.all(handles.splice(0).map((r) => r.close()));
  await vi.runAllTimersAsync();
  await closing;
  vi.useRealTimers();
});

/** Every dialtone_reconnect_* sample line carrying name="<name>". */
async function seriesOf(registry: Registry, name: string): Promise<string[]> {
  const text = await registry.metrics();
  return text.split("\n").filter((l) => l.startsWith("dialtone_reconnect_") && l.includes(`name="${name}"`));
}

describe("Reconnect metrics: names on a registry", () => {
  it("refuses a second handle with the same name on one registry, and allows it on another registry or under another name", async () => {
    const registry = new Registry();
    open("upstream").metrics(registry);
    const twin = open("upstream");
    expect(() => twin.metrics(registry)).toThrow(ConfigError);
    expect(() => twin.metrics(registry)).toThrow(/named "upstream" already reports/);
    expect(() => twin.metrics(new Registry())).not.toThrow();
    expect(() => twin.metrics(registry, { name: "upstream-2" })).not.toThrow();
    expect(sample(await registry.metrics(), "dialtone_reconnect_connected", { name: "upstream-2" })).toBeDefined();
  });

  it("frees the name once the first handle's metrics are closed", async () => {
    const registry = new Registry();
    const first = open("upstream").metrics(registry);
    first.close();
    expect(() => open("upstream").metrics(registry)).not.toThrow();
  });

  it("checks its options, and refuses a closed handle", async () => {
    const r = open("upstream");
    const registry = new Registry();
    expect(() => r.metrics(registry, { nmae: "x" } as unknown as { name: string })).toThrow(ConfigError);
    expect(() => r.metrics(registry, { name: "" })).toThrow(ConfigError);
    await r.close();
    expect(() => r.metrics(registry)).toThrow(ClosedError);
  });

  it("shares dialtone_reconnect_attempts_total with channel metrics on one registry, whichever registers first", async () => {
    // A registry holds one metric per name; channels label it `channel`, handles `name`.
    for (const channelFirst of [true, false]) {
      const registry = new Registry();
      if (channelFirst) familiesFor(registry);
      open(`h${channelFirst}`).metrics(registry);
      if (!channelFirst) familiesFor(registry);
      familiesFor(registry).reconnectAttempts.inc({ channel: "orders" }, 2);
      await vi.advanceTimersByTimeAsync(0);
      const text = await registry.metrics();
      expect(sample(text, "dialtone_reconnect_attempts_total", { name: `h${channelFirst}` })).toBe(1);
      expect(sample(text, "dialtone_reconnect_attempts_total", { channel: "orders" })).toBe(2);
    }
  });
});

describe("Reconnect metrics: series follow the handle", () => {
  it("closing the handle removes its series and leaves another handle's", async () => {
    const registry = new Registry();
    const a = open("a");
    const b = open("b");
    a.metrics(registry);
    b.metrics(registry);
    await vi.advanceTimersByTimeAsync(0);
    expect(await seriesOf(registry, "a")).toHaveLength(8);
    const closing = a.close();
    await vi.runAllTimersAsync();
    await closing;
    expect(await seriesOf(registry, "a")).toEqual([]);
    expect(await seriesOf(registry, "b")).toHaveLength(8);
    expect(sample(await registry.metrics(), "dialtone_reconnect_connected", { name: "b" })).toBe(1);
  });

  it("closing the returned metrics object removes the series while the handle runs on", async () => {
    const registry = new Registry();
    const r = open("a");
    const m = r.metrics(registry);
    expect(m).toBeInstanceOf(ReconnectMetrics);
    await vi.advanceTimersByTimeAsync(0);
    m.close();
    m.close(); // idempotent
    expect(await seriesOf(registry, "a")).toEqual([]);
    expect(r.state).toBe("connected");
  });

  it("every family follows attempts, failures, backoff, connection and give-up", async () => {
    const registry = new Registry();
    // fail, fail, ok; then (after the loss) fail until timeout.
    const r = open("db", scripted(["fail", "fail", "ok"]), { initial: 100, multiplier: 2, max: 400, jitter: 0, timeout: 1000 });
    const events: ReconnectEvent[] = [];
    r.on((e) => events.push(e));
    r.metrics(registry);
    const read = async (metric: string, labels: Record<string, string> = {}): Promise<number | undefined> =>
      sample(await registry.metrics(), metric, { name: "db", ...labels });

    await vi.advanceTimersByTimeAsync(0); // attempt 1 fails: waits 100 ms
    expect(await read("dialtone_reconnect_connected")).toBe(0);
    expect(await read("dialtone_reconnect_backoff_seconds")).toBe(0.1);
    expect(await read("dialtone_reconnect_connected_since_seconds")).toBe(0);
    await vi.advanceTimersByTimeAsync(100); // attempt 2 fails: waits 200 ms
    expect(await read("dialtone_reconnect_backoff_seconds")).toBe(0.2);
    expect(await read("dialtone_reconnect_failures_total")).toBe(2);
    await vi.advanceTimersByTimeAsync(200); // attempt 3 connects
    expect(await read("dialtone_reconnect_connected")).toBe(1);
    expect(await read("dialtone_reconnect_backoff_seconds")).toBe(0);
    expect(await read("dialtone_reconnect_connected_since_seconds")).toBe((T0 + 300) / 1000);
    expect(await read("dialtone_reconnect_attempts_total")).toBe(3);
    expect(await read("dialtone_reconnect_status_changes_total", { status: "connected" })).toBe(1);

    const cause = new Error("peer reset");
    r.current!.lose(cause);
    await vi.advanceTimersByTimeAsync(0);
    expect(await read("dialtone_reconnect_connected")).toBe(0);
    expect(await read("dialtone_reconnect_connected_since_seconds")).toBe(0);
    expect(await read("dialtone_reconnect_status_changes_total", { status: "disconnected" })).toBe(1);
    expect(await read("dialtone_reconnect_gave_up")).toBe(0);

    await vi.advanceTimersByTimeAsync(1500); // past backoff.timeout of failing
    await expect(r.closed()).rejects.toThrow(/gave up|after/i);
    expect(await read("dialtone_reconnect_gave_up")).toBe(1);
    expect(await read("dialtone_reconnect_backoff_seconds")).toBe(0);
    expect(await read("dialtone_reconnect_connected")).toBe(0);

    // The typed events tell the same story.
    const types = events.map((e) => e.type);
    expect(types.slice(0, 6)).toEqual(["attempt", "failure", "attempt", "failure", "attempt", "connected"]);
    expect(events.find((e) => e.type === "disconnected")).toEqual({ type: "disconnected", error: cause });
    expect(types.at(-1)).toBe("gave-up");
    expect(events.filter((e) => e.type === "attempt").length).toBe(await read("dialtone_reconnect_attempts_total"));
  });
});

describe("Reconnect events()", () => {
  it("yields the typed events as an async iterator, and tells a slow reader how many it lost", async () => {
    const r = open("it", scripted(["fail", "ok"]));
    const ac = new AbortController();
    const all = r.events({ signal: ac.signal });
    const small = r.events({ bufferSize: 2 });
    await vi.advanceTimersByTimeAsync(200);
    const got: ReconnectEvent[] = [];
    for await (const e of all) {
      got.push(e);
      if (e.type === "connected") break;
    }
    expect(got.map((e) => e.type)).toEqual(["attempt", "failure", "attempt", "connected"]);
    const first = await small.next();
    expect(first.value).toEqual({ type: "events-dropped", count: 2 });
    await small.return();
  });
});

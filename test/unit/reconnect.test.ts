import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConfigError, GaveUpError } from "../../src/core/errors.js";
import { RECONNECT_BACKOFF, SLOT_BACKOFF, baseDelay, jitterExtra, resolveBackoff, type BackoffOptions } from "../../src/supervisor/backoff.js";
import { ReconnectLoop as Reconnect, type ConnectionStatus, type ReconnectEvent, type ReconnectOptions } from "../../src/supervisor/reconnect.js";
import { StatusStream } from "../../src/supervisor/status-stream.js";
import { mulberry32 } from "../helpers/random.js";

interface Conn {
  id: number;
  /** Ends the connection (lost() settles). */
  lose(error?: Error): void;
  lost: Promise<unknown>;
}

type Step = "fail" | "ok";

/**
 * A scripted connect: each attempt follows the script ("fail" rejects, "ok"
 * resolves with a new Conn), then `then` for every later attempt.
 */
class Dialer {
  readonly attempts: number[] = [];
  readonly conns: Conn[] = [];
  readonly disposed: Conn[] = [];
  #script: Step[];
  #then: Step;
  #next = 1;

  constructor(script: Step[] = [], then: Step = "fail") {
    this.#script = [...script];
    this.#then = then;
  }

  connect = async ({ signal }: { signal: AbortSignal; attempt: number }): Promise<Conn> => {
    this.attempts.push(Date.now());
    expect(signal).toBeInstanceOf(AbortSignal);
    const step = this.#script.shift() ?? this.#then;
    if (step === "fail") throw new Error(`ECONNREFUSED (attempt at ${Date.now()})`);
    let lose!: (error?: Error) => void;
    const lost = new Promise<unknown>((resolve, reject) => {
      lose = (error?: Error) => (error ? reject(error) : resolve(undefined));
    });
    const c: Conn = { id: this.#next++, lose, lost };
    this.conns.push(c);
    return c;
  };

  options(backoff: Partial<BackoffOptions>, extra: Partial<ReconnectOptions<Conn>> = {}): ReconnectOptions<Conn> {
    return {
      connect: this.connect,
      lost: (c) => c.lost,
      dispose: (c) => {
        this.disposed.push(c);
      },
      backoff,
      name: "test-upstream",
      ...extra,
    };
  }
}

function record(r: Reconnect<Conn>): Array<ReconnectEvent & { at: number }> {
  const events: Array<ReconnectEvent & { at: number }> = [];
  r.on((e) => events.push({ ...e, at: Date.now() }));
  return events;
}

/** Collects a status iterator's values until it ends. */
function collect(it: AsyncGenerator<ConnectionStatus, void, undefined>): { values: ConnectionStatus[]; done: Promise<void> } {
  const values: ConnectionStatus[] = [];
  const done = (async () => {
    for await (const v of it) values.push(v);
  })();
  return { values, done };
}

const handles: Array<Reconnect<Conn>> = [];
function open(o: ReconnectOptions<Conn>): Reconnect<Conn> {
  const r = new Reconnect<Conn>(o);
  handles.push(r);
  return r;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});

afterEach(async () => {
  const closing = Promise.all(handles.splice(0).map((r) => r.close()));
  await vi.runAllTimersAsync();
  await closing;
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("Reconnect: backoff timing", () => {
  it("attempts at 0, initial, initial + initial×m, … capped at max (jitter 0)", async () => {
    const d = new Dialer();
    const r = open(d.options({ initial: 100, multiplier: 2, max: 400, timeout: 0, jitter: 0 }));
    const events = record(r);
    await vi.advanceTimersByTimeAsync(1900);
    expect(d.attempts).toEqual([0, 100, 300, 700, 1100, 1500, 1900]);
    const failures = events.filter((e) => e.type === "failure");
    expect(failures.map((e) => (e.type === "failure" ? e.delay : -1)).slice(0, 6)).toEqual([100, 200, 400, 400, 400, 400]);
    expect(failures.map((e) => (e.type === "failure" ? e.attempt : -1)).slice(0, 4)).toEqual([1, 2, 3, 4]);
    // Every attempt is announced, the first included.
    expect(events.filter((e) => e.type === "attempt").map((e) => e.at)).toEqual(d.attempts);
    expect(r.state).toBe("disconnected");
    expect(r.lastError?.message).toMatch(/ECONNREFUSED/);
  });

  it("a listener added right after construction sees the first attempt event too", async () => {
    const d = new Dialer();
    const r = open(d.options({ initial: 100, multiplier: 2, max: 400, timeout: 0, jitter: 0 }));
    const events = record(r);
    await vi.advanceTimersByTimeAsync(300);
    expect(d.attempts).toEqual([0, 100, 300]);
    // Each attempt is announced: attempt 1 at t=0 included.
    expect(events.filter((e) => e.type === "attempt").map((e) => (e.type === "attempt" ? e.attempt : -1))).toEqual([1, 2, 3]);
  });

  it("with multiplier 1 the delay stays at initial", async () => {
    const d = new Dialer();
    open(d.options({ initial: 250, multiplier: 1, max: 250, timeout: 0, jitter: 0 }));
    await vi.advanceTimersByTimeAsync(1000);
    expect(d.attempts).toEqual([0, 250, 500, 750, 1000]);
  });

  it("jitter > 0 stretches each delay within [base, base × (1 + jitter)]", async () => {
    vi.spyOn(Math, "random").mockImplementation(mulberry32(77));
    const d = new Dialer();
    const r = open(d.options({ initial: 100, multiplier: 2, max: 800, timeout: 0, jitter: 0.5 }));
    const events = record(r);
    await vi.advanceTimersByTimeAsync(10_000);
    const bases = [100, 200, 400, 800, 800, 800, 800];
    expect(d.attempts.length).toBeGreaterThan(bases.length);
    const gaps = d.attempts.slice(1).map((t, i) => t - (d.attempts[i] as number));
    const delays = events.flatMap((e) => (e.type === "failure" ? [e.delay] : []));
    bases.forEach((base, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(base);
      expect(gaps[i]).toBeLessThanOrEqual(base * 1.5);
      // The reported delay is the wait that really happened.
      expect(delays[i]).toBe(gaps[i]);
    });
    // Jitter did something (a seeded run, so this is deterministic).
    expect(gaps.slice(0, bases.length).some((g, i) => g > (bases[i] as number))).toBe(true);
  });
});

describe("Reconnect: giving up", () => {
  it("gives up after `timeout` of continuous failure: GaveUpError, gave-up event, status stream ends", async () => {
    const d = new Dialer();
    const r = open(d.options({ initial: 100, multiplier: 2, max: 400, timeout: 1000, jitter: 0 }));
    const events = record(r);
    const status = collect(r.status());
    let settled: unknown = "pending";
    r.closed().then(
      () => (settled = "resolved"),
      (err: unknown) => (settled = err),
    );
    await vi.advanceTimersByTimeAsync(999);
    expect(settled).toBe("pending");
    expect(events.filter((e) => e.type === "gave-up")).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBeInstanceOf(GaveUpError);
    const err = settled as GaveUpError;
    expect(err.code).toBe("ERR_DIALTONE_GAVE_UP");
    expect(err.message).toContain("test-upstream");
    expect(err.message).toContain("ECONNREFUSED");
    expect(err.attempts).toBe(d.attempts.length);
    const gaveUp = events.filter((e) => e.type === "gave-up");
    expect(gaveUp).toHaveLength(1);
    expect(gaveUp[0]!.at).toBe(1000);
    expect(gaveUp[0]!.type === "gave-up" && gaveUp[0]!.error).toBe(err);
    await expect(r.closed()).rejects.toBe(err);
    await status.done;
    expect(status.values).toEqual(["disconnected"]);
    // No attempt was made after giving up, and nothing is left scheduled.
    const n = d.attempts.length;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(d.attempts).toHaveLength(n);
    expect(d.attempts.every((t) => t <= 1000)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a success resets the delay: after a lost connection the first retry waits `initial` again", async () => {
    const d = new Dialer(["fail", "fail", "ok"], "fail");
    const r = open(d.options({ initial: 100, multiplier: 2, max: 10_000, timeout: 0, jitter: 0 }));
    const events = record(r);
    await vi.advanceTimersByTimeAsync(300);
    expect(d.attempts).toEqual([0, 100, 300]);
    expect(r.state).toBe("connected");
    expect(r.current).toBe(d.conns[0]);
    await vi.advanceTimersByTimeAsync(700); // t = 1000
    d.conns[0]!.lose(new Error("peer reset"));
    await vi.advanceTimersByTimeAsync(0);
    expect(r.state).toBe("disconnected");
    expect(r.current).toBeUndefined();
    await vi.advanceTimersByTimeAsync(400);
    // Lost at 1000: attempts at 1000 (at once), 1100 (initial), 1300 (initial × 2).
    expect(d.attempts).toEqual([0, 100, 300, 1000, 1100, 1300]);
    const delays = events.flatMap((e) => (e.type === "failure" ? [e.delay] : []));
    expect(delays).toEqual([100, 200, 100, 200, 400]);
    const disc = events.find((e) => e.type === "disconnected");
    expect(disc?.type === "disconnected" && disc.error?.message).toBe("peer reset");
  });

  it("a success resets the give-up clock", async () => {
    const d = new Dialer(["fail", "fail", "ok", "fail", "fail", "ok"], "fail");
    const r = open(d.options({ initial: 100, multiplier: 2, max: 10_000, timeout: 500, jitter: 0 }));
    const events = record(r);
    await vi.advanceTimersByTimeAsync(2000);
    expect(r.state).toBe("connected");
    d.conns[0]!.lose();
    // 1700 ms after the first failure: without a reset the next failure would give up at once.
    await vi.advanceTimersByTimeAsync(300);
    expect(d.attempts).toEqual([0, 100, 300, 2000, 2100, 2300]);
    expect(r.state).toBe("connected");
    expect(events.filter((e) => e.type === "gave-up")).toEqual([]);
    expect(events.filter((e) => e.type === "connected").map((e) => e.at)).toEqual([300, 2300]);
  });

  it("a connect that rejects with a non-Error value is retried, not given up", async () => {
    let n = 0;
    const r = open({
      connect: async () => {
        n++;
        if (n < 3) throw "ECONNREFUSED as a string";
        return { id: 1, lose: () => {}, lost: new Promise<unknown>(() => {}) };
      },
      lost: (c) => c.lost,
      backoff: { initial: 100, multiplier: 1, max: 100, timeout: 0, jitter: 0 },
    });
    const events = record(r);
    await vi.advanceTimersByTimeAsync(500);
    expect(events.filter((e) => e.type === "gave-up")).toEqual([]);
    expect(n).toBe(3);
    expect(r.state).toBe("connected");
  });

  it("a TypeError from connect is retried (p-retry would not)", async () => {
    let n = 0;
    const r = open({
      connect: async () => {
        n++;
        if (n < 3) throw new TypeError("fetch failed");
        return { id: 1, lose: () => {}, lost: new Promise<unknown>(() => {}) };
      },
      lost: (c) => c.lost,
      backoff: { initial: 100, multiplier: 1, max: 100, timeout: 0, jitter: 0 },
    });
    await vi.advanceTimersByTimeAsync(500);
    expect(n).toBe(3);
    expect(r.state).toBe("connected");
  });

  it("lost() resolving with an Error reports it as the cause of the disconnect", async () => {
    const d = new Dialer(["ok"], "fail");
    let resolveLost!: (v: unknown) => void;
    const r = open(
      d.options({ initial: 100, multiplier: 1, max: 100, timeout: 0, jitter: 0 }, { lost: () => new Promise<unknown>((resolve) => (resolveLost = resolve)) }),
    );
    const events = record(r);
    await vi.advanceTimersByTimeAsync(0);
    expect(r.state).toBe("connected");
    const cause = new Error("GOAWAY from peer");
    // ReconnectOptions.lost: "the value or reason is the cause, if any".
    resolveLost(cause);
    await vi.advanceTimersByTimeAsync(0);
    const disc = events.find((e) => e.type === "disconnected");
    expect(disc?.type === "disconnected" && disc.error).toBe(cause);
  });
});

describe("Reconnect: status stream", () => {
  it("readers see disconnected → connected → disconnected in order; two concurrent readers both see it", async () => {
    const d = new Dialer(["fail", "ok"], "fail");
    const r = open(d.options({ initial: 100, multiplier: 1, max: 100, timeout: 0, jitter: 0 }));
    const a = collect(r.status());
    const b = collect(r.status());
    await vi.advanceTimersByTimeAsync(100);
    expect(r.state).toBe("connected");
    await vi.advanceTimersByTimeAsync(400);
    d.conns[0]!.lose(new Error("reset"));
    await vi.advanceTimersByTimeAsync(300);
    expect(r.state).toBe("disconnected");
    const closing = r.close();
    await vi.advanceTimersByTimeAsync(0);
    await closing;
    await Promise.all([a.done, b.done]);
    expect(a.values).toEqual(["disconnected", "connected", "disconnected"]);
    expect(b.values).toEqual(["disconnected", "connected", "disconnected"]);
  });

  it("a reader that starts late sees the current state first", async () => {
    const d = new Dialer(["ok"]);
    const r = open(d.options({ initial: 100, multiplier: 1, max: 100, timeout: 0, jitter: 0 }));
    await vi.advanceTimersByTimeAsync(10);
    const it = r.status();
    expect(await it.next()).toEqual({ value: "connected", done: false });
    await it.return();
  });

  it("status(signal) ends when the signal aborts", async () => {
    const d = new Dialer();
    const r = open(d.options({ initial: 100, multiplier: 1, max: 100, timeout: 0, jitter: 0 }));
    const ac = new AbortController();
    const s = collect(r.status(ac.signal));
    await vi.advanceTimersByTimeAsync(50);
    ac.abort();
    await s.done;
    expect(s.values).toEqual(["disconnected"]);
  });
});

describe("Reconnect: close and abort", () => {
  it("close() mid-backoff stops the loop: no more attempts, closed() resolves, no timers left", async () => {
    const d = new Dialer();
    const r = open(d.options({ initial: 1000, multiplier: 2, max: 10_000, timeout: 0, jitter: 0.2 }));
    const events = record(r);
    const s = collect(r.status());
    await vi.advanceTimersByTimeAsync(500);
    expect(d.attempts).toEqual([0]);
    await r.close();
    await expect(r.closed()).resolves.toBeUndefined();
    await s.done;
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(d.attempts).toEqual([0]);
    expect(events.filter((e) => e.type === "gave-up")).toEqual([]);
    expect(s.values).toEqual(["disconnected"]);
  });

  it("close() while connected disposes the live connection, ends status, resolves closed()", async () => {
    const d = new Dialer(["ok"]);
    const r = open(d.options({ initial: 100, multiplier: 2, max: 1000, timeout: 0, jitter: 0 }));
    const s = collect(r.status());
    await vi.advanceTimersByTimeAsync(10);
    expect(r.current).toBe(d.conns[0]);
    await r.close();
    expect(d.disposed).toEqual([d.conns[0]]);
    expect(r.current).toBeUndefined();
    await expect(r.closed()).resolves.toBeUndefined();
    await s.done;
    expect(s.values).toEqual(["disconnected", "connected", "disconnected"]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(d.attempts).toEqual([0]);
  });

  it("an external AbortSignal mid-backoff does the same as close()", async () => {
    const d = new Dialer();
    const ac = new AbortController();
    const r = open(d.options({ initial: 1000, multiplier: 2, max: 10_000, timeout: 0, jitter: 0 }, { signal: ac.signal }));
    await vi.advanceTimersByTimeAsync(1500);
    expect(d.attempts).toEqual([0, 1000]);
    ac.abort(new Error("shutting down"));
    await vi.advanceTimersByTimeAsync(0);
    await expect(r.closed()).resolves.toBeUndefined();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(d.attempts).toEqual([0, 1000]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("an external AbortSignal while connected disposes the live connection", async () => {
    const d = new Dialer(["ok"]);
    const ac = new AbortController();
    const r = open(d.options({ initial: 100, multiplier: 2, max: 1000, timeout: 0, jitter: 0 }, { signal: ac.signal }));
    await vi.advanceTimersByTimeAsync(10);
    expect(r.state).toBe("connected");
    ac.abort();
    await vi.advanceTimersByTimeAsync(0);
    await expect(r.closed()).resolves.toBeUndefined();
    expect(d.disposed).toEqual([d.conns[0]]);
    expect(r.state).toBe("disconnected");
  });

  it("an already-aborted signal means no attempt at all", async () => {
    const d = new Dialer(["ok"]);
    const r = open(d.options({}, { signal: AbortSignal.abort() }));
    await vi.advanceTimersByTimeAsync(10_000);
    await expect(r.closed()).resolves.toBeUndefined();
    expect(d.attempts).toEqual([]);
  });

  it("a connection that arrives after close() is disposed, not kept", async () => {
    let finish!: (c: Conn) => void;
    const late: Conn = { id: 9, lose: () => {}, lost: new Promise<unknown>(() => {}) };
    const disposed: Conn[] = [];
    const r = open({
      connect: () => new Promise<Conn>((resolve) => (finish = resolve)),
      lost: (c) => c.lost,
      dispose: (c) => {
        disposed.push(c);
      },
    });
    await vi.advanceTimersByTimeAsync(10);
    const closing = r.close();
    finish(late);
    await vi.advanceTimersByTimeAsync(0);
    await closing;
    expect(disposed).toEqual([late]);
    expect(r.current).toBeUndefined();
  });
});

describe("StatusStream: current-state semantics", () => {
  async function settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }

  it("a flap a→b→a before the reader looks is reported once, with the value as it is then", async () => {
    const s = new StatusStream<string>("a");
    const it = s.watch();
    expect(await it.next()).toEqual({ value: "a", done: false });
    s.set("b");
    s.set("a");
    expect(await it.next()).toEqual({ value: "a", done: false });
    // Nothing more is pending: the next read waits for a real change.
    let next: IteratorResult<string, void> | undefined;
    void it.next().then((r) => (next = r));
    await settle();
    expect(next).toBeUndefined();
    s.set("b");
    await settle();
    expect(next).toEqual({ value: "b", done: false });
  });

  it("many changes while a reader is away yield only the latest value", async () => {
    const s = new StatusStream<number>(0);
    const it = s.watch();
    await it.next();
    for (let i = 1; i <= 1000; i++) s.set(i);
    expect(await it.next()).toEqual({ value: 1000, done: false });
    let next: IteratorResult<number, void> | undefined;
    void it.next().then((r) => (next = r));
    await settle();
    expect(next).toBeUndefined();
    s.end();
    await settle();
    expect(next).toEqual({ value: undefined, done: true });
  });

  it("a reader already waiting wakes once for a flap and sees the value as it is then", async () => {
    const s = new StatusStream<string>("a");
    const it = s.watch();
    await it.next();
    const pending = it.next();
    s.set("b");
    s.set("a");
    expect(await pending).toEqual({ value: "a", done: false });
  });

  it("setting the current value again wakes no one", async () => {
    const s = new StatusStream<string>("a");
    const it = s.watch();
    await it.next();
    let next: IteratorResult<string, void> | undefined;
    void it.next().then((r) => (next = r));
    s.set("a");
    await settle();
    expect(next).toBeUndefined();
    s.set("c");
    await settle();
    expect(next).toEqual({ value: "c", done: false });
  });

  it("end(final) lets every reader see the final value, then ends; later sets are ignored", async () => {
    const s = new StatusStream<string>("up");
    const readers = [s.watch(), s.watch(), s.watch()];
    for (const r of readers) await r.next();
    s.end("down");
    s.set("up");
    expect(s.current).toBe("down");
    expect(s.ended).toBe(true);
    for (const r of readers) {
      expect(await r.next()).toEqual({ value: "down", done: false });
      expect(await r.next()).toEqual({ value: undefined, done: true });
    }
    // A reader that starts after the end sees the final value and stops.
    const late: string[] = [];
    for await (const v of s) late.push(v);
    expect(late).toEqual(["down"]);
  });

  it("a reader with an aborted signal stops", async () => {
    const s = new StatusStream<string>("a");
    const ac = new AbortController();
    const it = s.watch(ac.signal);
    await it.next();
    const pending = it.next();
    ac.abort();
    expect(await pending).toEqual({ value: undefined, done: true });
  });
});

describe("backoff options", () => {
  function configError(fn: () => unknown): ConfigError {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error("expected a ConfigError, nothing was thrown");
  }

  it.each([
    [{ multiplier: 0.5 }, "backoff.multiplier"],
    [{ multiplier: Number.NaN }, "backoff.multiplier"],
    [{ initial: 1000, max: 999 }, "backoff.max"],
    [{ initial: -1 }, "backoff.initial"],
    [{ max: -1 }, "backoff.max"],
    [{ timeout: -1 }, "backoff.timeout"],
    [{ jitter: 1.01 }, "backoff.jitter"],
    [{ jitter: -0.5 }, "backoff.jitter"],
  ] as Array<[Partial<BackoffOptions>, string]>)("resolveBackoff rejects %o naming %s", (input, option) => {
    const err = configError(() => resolveBackoff(input, RECONNECT_BACKOFF));
    expect(err.option).toBe(option);
    expect(err.message).toContain(option);
  });

  it("the Reconnect constructor validates its backoff synchronously", () => {
    const d = new Dialer();
    const err = configError(() => new Reconnect(d.options({ multiplier: 0.9 })));
    expect(err.option).toBe("backoff.multiplier");
    expect(d.attempts).toEqual([]);
  });

  it("fills defaults and ignores undefined fields", () => {
    expect(resolveBackoff(undefined, SLOT_BACKOFF)).toEqual(SLOT_BACKOFF);
    expect(resolveBackoff({ initial: 50, max: undefined }, RECONNECT_BACKOFF)).toEqual({ ...RECONNECT_BACKOFF, initial: 50 });
    expect(resolveBackoff({ initial: 10, max: 10, multiplier: 1, jitter: 1, timeout: 0 }, RECONNECT_BACKOFF)).toEqual({
      initial: 10,
      max: 10,
      multiplier: 1,
      jitter: 1,
      timeout: 0,
    });
  });

  it("baseDelay grows by the multiplier and is capped at max", () => {
    const b: BackoffOptions = { initial: 100, multiplier: 3, max: 2000, timeout: 0, jitter: 0 };
    expect([1, 2, 3, 4, 5, 50].map((n) => baseDelay(b, n))).toEqual([100, 300, 900, 2000, 2000, 2000]);
  });

  it("jitterExtra is a fraction in [0, jitter] of the base, and 0 without jitter", () => {
    const b: BackoffOptions = { initial: 100, multiplier: 2, max: 1000, timeout: 0, jitter: 0.2 };
    expect(jitterExtra(b, 1000, () => 0)).toBe(0);
    expect(jitterExtra(b, 1000, () => 0.5)).toBe(100);
    expect(jitterExtra(b, 1000, () => 0.999999)).toBe(200);
    const random = vi.fn(() => 0.5);
    expect(jitterExtra({ ...b, jitter: 0 }, 1000, random)).toBe(0);
    expect(random).not.toHaveBeenCalled();
  });
});

import { afterEach, describe, expect, it } from "vitest";
import { addressKey, type Address } from "../../src/core/address.js";
import type { Clock, Timer } from "../../src/core/clock.js";
import { ConnectError } from "../../src/core/errors.js";
import type { ChannelEvent } from "../../src/core/events.js";
import { resolveHealth } from "../../src/health/options.js";
import { StaticResolver } from "../../src/resolve/static-resolver.js";
import type { ConnectionEvent, Connector, MemberConnection } from "../../src/supervisor/connection.js";
import { SUPERVISOR_DEFAULTS, fixedMembers } from "../../src/supervisor/members-plan.js";
import { Supervisor } from "../../src/supervisor/supervisor.js";

const SUPERVISOR_FIXED = {
  flapWindow: SUPERVISOR_DEFAULTS.flapWindow,
  minHold: SUPERVISOR_DEFAULTS.minHold,
  maxOutstanding: SUPERVISOR_DEFAULTS.maxOutstanding,
};

/** Time that moves only when the test says so. */
class FakeClock implements Clock {
  #now = 1000;
  #timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  now(): number {
    return this.#now;
  }
  wall(): number {
    return 1_700_000_000_000 + this.#now;
  }
  setTimeout(fn: () => void, ms: number): Timer {
    const t = { at: this.#now + Math.max(1, ms), fn, live: true };
    this.#timers.push(t);
    return { cancel: () => void (t.live = false) };
  }
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.#now = due.at;
      due.fn();
      await settle();
    }
    this.#now = until;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

class FakeConnection implements MemberConnection {
  readonly maxConcurrent = Number.POSITIVE_INFINITY;
  #listener: ((e: ConnectionEvent) => void) | undefined;
  closed = false;
  /** A frozen peer: PINGs fail (at once, so the test waits on intervals only). */
  failPings = false;
  ping(): Promise<number> {
    if (this.failPings) return Promise.reject(new Error("PING lost"));
    return this.closed ? Promise.reject(new Error("closed")) : Promise.resolve(1);
  }
  onEvent(listener: (e: ConnectionEvent) => void): void {
    this.#listener = listener;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    queueMicrotask(() => this.#listener?.({ type: "closed", error: undefined }));
  }
  /** The peer drops the connection. */
  drop(): void {
    this.closed = true;
    this.#listener?.({ type: "closed", error: new Error("ECONNRESET") });
  }
}

/** Dials succeed except to `refused`; every dial is counted per address. */
class FakeConnector implements Connector<FakeConnection> {
  readonly dials = new Map<string, number>();
  readonly dialTimes: number[] = [];
  readonly conns: Array<{ key: string; conn: FakeConnection }> = [];
  constructor(
    readonly refused: Set<string>,
    readonly clock?: Clock,
  ) {}
  connect(address: Address): Promise<FakeConnection> {
    const key = addressKey(address);
    if (this.clock) this.dialTimes.push(this.clock.now());
    this.dials.set(key, (this.dials.get(key) ?? 0) + 1);
    if (this.refused.has(key)) return Promise.reject(new ConnectError("svc.test", key, "ECONNREFUSED"));
    const conn = new FakeConnection();
    this.conns.push({ key, conn });
    return Promise.resolve(conn);
  }
}

const A: Address = { host: "10.0.0.1", port: 80, family: 4 };
const B: Address = { host: "10.0.0.2", port: 80, family: 4 };

const open: Array<Supervisor<FakeConnection>> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

function make(
  connector: FakeConnector,
  clock: FakeClock,
  members = 2,
  addresses: Address[] = [A, B],
): { sup: Supervisor<FakeConnection>; events: ChannelEvent[] } {
  const sup = new Supervisor<FakeConnection>({
    target: "svc.test",
    resolver: new StaticResolver("static:///", addresses),
    connector,
    members: fixedMembers(members),
    // Long intervals: the health loop (on the same fake clock) stays out of the way.
    health: resolveHealth({ interval: 60_000, timeout: 30_000, jitter: 0 }),
    backoff: { initial: 100, multiplier: 2, max: 10_000, timeout: 0, jitter: 0 },
    criticalMin: 1,
    balancer: "in-flight",
    acquireTimeout: 1000,
    maxQueue: 10,
    closeGrace: 0,
    drainTimeout: 1000,
    readyTimeout: 5000,
    random: () => 0.5,
    clock,
    ...SUPERVISOR_FIXED,
  });
  open.push(sup);
  const events: ChannelEvent[] = [];
  sup.events.add((e) => events.push(e));
  return { sup, events };
}

describe("supervisor on a fake clock (no sockets)", () => {
  it("a refused address backs off on the supervisor's clock while its slot stacks on the live one at once", async () => {
    const clock = new FakeClock();
    const connector = new FakeConnector(new Set([addressKey(B)]));
    const { sup } = make(connector, clock);
    await settle();
    expect(sup.stats().ready).toBe(2);
    expect(connector.dials.get(addressKey(B))).toBe(1);
    // Spread repair probes B when its backoff ends: 100 ms, then 200 ms, then 400 ms of fake time.
    const probes: number[] = [];
    for (const ms of [99, 1, 199, 1, 399, 1]) {
      await clock.advance(ms);
      probes.push(connector.dials.get(addressKey(B)) ?? 0);
    }
    expect(probes).toEqual([1, 2, 2, 3, 3, 4]);
    expect(sup.stats().ready).toBe(2);
  });

  it("a member that dies within the flap window makes its address back off longer each time, in the supervisor's time", async () => {
    const clock = new FakeClock();
    const connector = new FakeConnector(new Set(), clock);
    make(connector, clock, 1, [A]);
    await settle();
    for (let i = 0; i < 3; i++) {
      await clock.advance(50);
      connector.conns.at(-1)!.conn.drop();
      const before = connector.dialTimes.length;
      for (let n = 0; n < 100 && connector.dialTimes.length === before; n++) await clock.advance(10);
    }
    // Alive 50 ms each time, then 100, 200, 400 ms of backoff: the first PONG never reset it.
    expect(connector.dialTimes).toEqual([1000, 1150, 1400, 1850]);
  });

  it("stats() and events read one record: member state and degraded mode as the regulator decided them", async () => {
    const clock = new FakeClock();
    const connector = new FakeConnector(new Set());
    const { sup, events } = make(connector, clock, 1, [A]);
    await settle();
    const id = connector.conns.length === 1 ? sup.stats().members[0]!.id : -1;
    const lastState = (): string | undefined => events.flatMap((e) => (e.type === "state" && e.member.id === id ? [e.to] : [])).at(-1);
    const lastDegraded = (): boolean | undefined => events.flatMap((e) => (e.type === "degraded" ? [e.degraded] : [])).at(-1);
    expect(lastState()).toBe("ready");
    expect(sup.stats()).toMatchObject({ ready: 1, usable: 1, degraded: false, status: "connected" });
    expect(sup.stats().members[0]).toMatchObject({ id, state: "ready", lastError: undefined, connectedSince: new Date(clock.wall()).toISOString() });
    // The only member stops answering PINGs: two failed intervals make it unhealthy, and degraded mode keeps it.
    connector.conns[0]!.conn.failPings = true;
    await clock.advance(120_000);
    expect(lastState()).toBe("unhealthy");
    expect(lastDegraded()).toBe(true);
    expect(sup.stats()).toMatchObject({ ready: 0, usable: 1, degraded: true, status: "connected" });
    expect(sup.stats().members[0]).toMatchObject({ id, state: "unhealthy", lastError: "PING lost" });
    expect([...sup.members()].map((m) => m.state)).toEqual(["unhealthy"]);
    // It still takes picks (better a doubtful member than none).
    const lease = sup.leases.tryAcquire();
    expect(lease?.member.id).toBe(id);
    lease!.release();
    // Answering again: ready, and degraded mode ends; stats say so at the same moment as the events.
    connector.conns[0]!.conn.failPings = false;
    await clock.advance(120_000);
    expect(lastState()).toBe("ready");
    expect(lastDegraded()).toBe(false);
    expect(sup.stats()).toMatchObject({ ready: 1, usable: 1, degraded: false, status: "connected" });
    expect(sup.stats().members[0]).toMatchObject({ id, state: "ready" });
    // No status flap on the way: the channel stayed connected throughout.
    expect(events.filter((e) => e.type === "status").map((e) => (e.type === "status" ? e.status : ""))).toEqual(["connected"]);
  });

  it("close() blames nobody: no evicted, draining or degraded events, no failed address", async () => {
    const clock = new FakeClock();
    const connector = new FakeConnector(new Set());
    const { sup, events } = make(connector, clock);
    await settle();
    expect(sup.stats().ready).toBe(2);
    events.length = 0;
    await sup.close();
    expect(events.filter((e) => e.type === "evicted" || e.type === "draining" || e.type === "degraded" || e.type === "connect-failed")).toEqual([]);
    expect(events.filter((e) => e.type === "member-removed").map((e) => (e.type === "member-removed" ? e.reason : ""))).toEqual([
      "channel closed",
      "channel closed",
    ]);
    expect(sup.stats().addresses.map((a) => a.failures)).toEqual([0, 0]);
    // Nothing is left in the one record, nor in the pool's index.
    expect(sup.stats()).toMatchObject({ ready: 0, usable: 0, members: [] });
    expect([...sup.members()]).toEqual([]);
  });
});

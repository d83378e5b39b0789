import { describe, expect, it } from "vitest";
import { ClosedError } from "../../src/core/errors.js";
import type { ChannelEvent } from "../../src/core/events.js";
import { Listeners } from "../../src/core/listeners.js";
import { Pool, type PoolMemberRef } from "../../src/pool/pool.js";
import { ChangeSignal } from "../../src/supervisor/change-signal.js";
import { LeaseSource, type LeaseSourceOptions } from "../../src/supervisor/lease-source.js";
import { mulberry32 } from "../helpers/random.js";
import { SimClock } from "../helpers/sim-clock.js";

const OPTIONS: LeaseSourceOptions = { target: "svc.test", acquireTimeout: 1000, maxQueue: 2, maxOutstanding: 3, readyTimeout: 500, minMembers: 1 };

/** A lease source over a real pool on scripted time; the "supervisor" is the test: it admits members and says when they serve. */
function setup(over: Partial<LeaseSourceOptions> = {}) {
  const clock = new SimClock();
  const pool = new Pool<string>({ balancer: "in-flight", random: mulberry32(3), now: () => clock.now() });
  const changes = new ChangeSignal();
  const warm = { readyCount: 0, why: undefined as string | undefined };
  const leases = new LeaseSource<string>({ ...OPTIONS, ...over }, pool, clock, new Listeners<ChannelEvent>(), changes, {
    get readyCount() {
      return warm.readyCount;
    },
    noAddressReason: () => warm.why,
  });
  let id = 1;
  const add = (): PoolMemberRef<string> => {
    const m = pool.admit(id, `10.0.0.${id}:443`, `conn-${id}`);
    id++;
    pool.setPickable(m, true);
    return m;
  };
  return { clock, pool, changes, warm, leases, add };
}

describe("LeaseSource: the channel's request side", () => {
  it("hands out a lease at once when a member is usable; release() gives back its outstanding slot exactly once", async () => {
    const { leases, add } = setup();
    const m = add();
    const lease = leases.tryAcquire();
    expect(lease?.member).toBe(m);
    expect(lease?.connection).toBe("conn-1");
    expect(m.inFlight).toBe(1);
    const [a, b] = await Promise.all([leases.acquire(), leases.acquire()]);
    // Three outstanding: the cap. tryAcquire says no; acquire fails at once, naming the last error.
    leases.noteError(new Error("ECONNRESET from 10.0.0.9"));
    expect(leases.tryAcquire()).toBeUndefined();
    await expect(leases.acquire()).rejects.toMatchObject({ code: "ERR_DIALTONE_OVERLOADED", message: expect.stringContaining("ECONNRESET from 10.0.0.9") });
    lease!.release(5);
    lease!.release(5);
    expect(m.inFlight).toBe(2);
    const c = leases.tryAcquire();
    expect(c).toBeDefined();
    expect(leases.tryAcquire()).toBeUndefined();
    for (const l of [a, b, c!]) l.release();
    expect(m.inFlight).toBe(0);
  });

  it("with no usable member, callers wait in a bounded FIFO, and serve() hands them leases in order", async () => {
    const { leases, add } = setup({ maxOutstanding: 100 });
    leases.noteError(new Error("connect ECONNREFUSED 10.0.0.1:443"));
    const order: number[] = [];
    const first = leases.acquire().then((l) => (order.push(1), l));
    const second = leases.acquire().then((l) => (order.push(2), l));
    await expect(leases.acquire()).rejects.toMatchObject({ code: "ERR_DIALTONE_QUEUE_FULL" });
    expect(leases.queued).toBe(2);
    add();
    leases.serve();
    const got = await Promise.all([first, second]);
    expect(order).toEqual([1, 2]);
    expect(leases.queued).toBe(0);
    for (const l of got) l.release();
  });

  it("a waiter nobody serves fails after acquireTimeout on the source's clock, naming the last error", async () => {
    const { clock, leases } = setup();
    leases.noteError(new Error("connect ECONNREFUSED 10.0.0.1:443"));
    const waiting = leases.acquire().then(
      () => undefined,
      (e: unknown) => e,
    );
    await clock.runUntil(999);
    expect(leases.queued).toBe(1);
    await clock.runUntil(1000);
    expect(await waiting).toMatchObject({ code: "ERR_DIALTONE_NO_MEMBER", message: expect.stringContaining("ECONNREFUSED") });
    expect(leases.queued).toBe(0);
  });

  it("the last error: a lookup failure is kept only when nothing else is known", () => {
    const { leases } = setup();
    leases.noteError(new Error("lookup failed"), true);
    expect(leases.lastError?.message).toBe("lookup failed");
    leases.noteError(new Error("connect refused"));
    leases.noteError(new Error("lookup failed again"), true);
    expect(leases.lastError?.message).toBe("connect refused");
    leases.noteError(new Error("request reset"));
    expect(leases.lastError?.message).toBe("request reset");
  });

  it("ready() resolves once enough members are ready, and otherwise says how far it got and why", async () => {
    const { clock, changes, warm, leases } = setup({ minMembers: 2 });
    const ok = leases.ready();
    warm.readyCount = 1;
    changes.fire();
    warm.readyCount = 2;
    changes.fire();
    await expect(ok).resolves.toBeUndefined();
    warm.readyCount = 0;
    warm.why = "127.0.0.1:53 answered NXDOMAIN for svc.test A";
    const late = leases.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    await clock.runUntil(500);
    expect(await late).toMatchObject({ code: "ERR_DIALTONE_NOT_READY", message: expect.stringContaining("NXDOMAIN") });
  });

  it("close() fails queued callers and every later acquire with the channel's ClosedError; cut members are closedByChannel", async () => {
    const { leases } = setup();
    const queued = leases.acquire();
    const closed = new ClosedError("channel svc.test");
    leases.close(closed);
    await expect(queued).rejects.toBe(closed);
    await expect(leases.acquire()).rejects.toBeInstanceOf(ClosedError);
    expect(leases.tryAcquire()).toBeUndefined();
    // A lease taken before closing, on a member close() then destroyed at closeGrace.
    const { leases: open, add: addOpen } = setup();
    const m = addOpen();
    const lease = open.tryAcquire()!;
    expect(lease.closedByChannel).toBe(false);
    open.cut(m);
    expect(lease.closedByChannel).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import type { Address } from "../../src/core/address.js";
import type { Resolver, ResolverListener } from "../../src/resolve/resolver.js";
import { startBackends, type Backend } from "../helpers/backends.js";
import { recordEvents } from "../helpers/channel.js";
import { mulberry32 } from "../helpers/random.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();

/**
 * DNS round robin as some servers do it: every answer (TTL 1 s) is a random
 * 3 of the 6 backends. Consecutive answers always share at least one
 * address: the set rotates within a stable superset rather than migrating.
 */
function rotatingResolver(backends: Backend[], random: () => number): Resolver & { answers: number } {
  const all: Address[] = backends.map((b) => ({ host: b.host, port: b.port, family: 4 }));
  let timer: NodeJS.Timeout | undefined;
  let previous: Set<string> | undefined;
  const pick = (): Address[] => {
    for (;;) {
      const shuffled = [...all].sort(() => random() - 0.5).slice(0, 3);
      const keys = new Set(shuffled.map((a) => a.host));
      if (!previous || [...keys].some((k) => previous!.has(k))) {
        previous = keys;
        return shuffled;
      }
    }
  };
  const r = {
    target: "rotating:///svc.test",
    answers: 0,
    start(listener: ResolverListener): void {
      const answer = (): void => {
        r.answers++;
        listener.onAddresses({ addresses: pick(), ttl: 1000 });
      };
      setImmediate(answer);
      timer = setInterval(answer, 1000);
    },
    close(): void {
      clearInterval(timer);
    },
  };
  return r;
}

describe("answers that rotate within a stable superset", () => {
  it("a random 3 of 6 backends every second moves no healthy member: no drains, no dials, never disconnected", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"]);
    const resolver = rotatingResolver(backends, mulberry32(9));
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: resolver, members: 3 });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(5000));
    const readyAt = performance.now();
    const before = ch.stats().members.map((m) => m.id);
    const answersBefore = resolver.answers;
    await new Promise((r) => setTimeout(r, 6000));
    // The answers did rotate meanwhile.
    expect(resolver.answers - answersBefore).toBeGreaterThanOrEqual(5);
    const rotated = rec.events.filter((e) => e.type === "resolve" && e.at > readyAt).map((e) => (e.type === "resolve" ? e.addresses.join() : ""));
    expect(new Set(rotated).size).toBeGreaterThan(1);
    const after = rec.events.filter((e) => e.at > readyAt);
    expect(after.filter((e) => e.type === "draining")).toEqual([]);
    expect(after.filter((e) => e.type === "connect-attempt")).toEqual([]);
    expect(rec.events.filter((e) => e.type === "status" && e.status === "disconnected")).toEqual([]);
    expect(ch.stats().members.map((m) => m.id)).toEqual(before);
    expect(ch.stats().ready).toBe(3);
  });
});

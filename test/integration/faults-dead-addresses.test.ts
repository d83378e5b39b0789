import { afterEach, describe, expect, it } from "vitest";
import { blackHole, closeBadPeers, goawayPeer, silentH2 } from "../helpers/bad-peers.js";
import { startBackends } from "../helpers/backends.js";
import { recordEvents } from "../helpers/channel.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();
afterEach(closeBadPeers);

function perAddress(members: Array<{ address: string }>): Map<string, number> {
  const per = new Map<string, number>();
  for (const m of members) per.set(m.address, (per.get(m.address) ?? 0) + 1);
  return per;
}

describe("dead addresses never starve the pool: slots stack on live addresses at once", () => {
  it("4 addresses, 2 refusing TCP: 3 members ready within 3 s, all on the live ones", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const port = backends[0]!.port;
    // Nobody listens on these two.
    const refused = [`127.0.0.4:${port}`, `127.0.0.5:${port}`];
    const ch = open({ target: `http://svc.test:${port}`, discovery: `static:///${[...backends.map((b) => b.key), ...refused].join(",")}`, members: 3 });
    await ch.ready(AbortSignal.timeout(3000));
    const per = perAddress(ch.stats().members);
    expect([...per.keys()].sort()).toEqual(backends.map((b) => b.key).sort());
    expect([...per.values()].sort()).toEqual([1, 2]);
    for (let i = 0; i < 10; i++) expect((await ch.request({ path: "/" })).status).toBe(200);
  });

  it("1 good address and 3 bad peers (black hole, no PONG, GOAWAY at once): 3 members ready within 3 s on the good one", async () => {
    const [good] = await startBackends(["127.0.0.2"]);
    const bad = [await blackHole("127.0.0.3"), await silentH2("127.0.0.4"), await goawayPeer("127.0.0.5", 0)];
    const ch = open({
      target: `http://svc.test:${good!.port}`,
      discovery: `static:///${[good!.key, ...bad.map((b) => b.key)].join(",")}`,
      members: 3,
    });
    await ch.ready(AbortSignal.timeout(3000));
    expect([...perAddress(ch.stats().members)]).toEqual([[good!.key, 3]]);
  });

  it("300 addresses of which 3 live: 3 members ready within 3 s", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3", "127.0.0.4"]);
    const port = backends[0]!.port;
    const dead: string[] = [];
    for (let i = 0; dead.length < 297; i++) dead.push(`127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}:${port}`);
    const ch = open({ target: `http://svc.test:${port}`, discovery: `static:///${[...dead, ...backends.map((b) => b.key)].join(",")}`, members: 3 });
    await ch.ready(AbortSignal.timeout(3000));
    expect(ch.stats().members.every((m) => m.state === "ready")).toBe(true);
  });
});

describe("flapping peers are not hammered", () => {
  it("a peer that sends GOAWAY 100 ms after every handshake gets at most 10 dials in 10 s, and the channel stays connected", async () => {
    const [good] = await startBackends(["127.0.0.2"]);
    const flapper = await goawayPeer("127.0.0.3", 100);
    const ch = open({ target: `http://svc.test:${good!.port}`, discovery: `static:///${good!.key},${flapper.key}`, members: 2 });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(3000));
    const started = performance.now();
    const notFull: number[] = [];
    while (performance.now() - started < 10_000) {
      await new Promise((r) => setTimeout(r, 100));
      if (!ch.connected) notFull.push(performance.now());
    }
    // Each connection lives ~100 ms past its first PONG: a failure of its address, so the gaps grow.
    const dials = rec.events.filter((e) => e.type === "connect-attempt" && e.address === flapper.key);
    expect(flapper.accepted).toBeLessThanOrEqual(10);
    expect(dials.length).toBeLessThanOrEqual(10);
    expect(notFull).toEqual([]);
    expect((await ch.request({ path: "/" })).status).toBe(200);
  });
});

import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ConfigError, createHttp2Channel, type Http2Channel } from "../../src/index.js";
import { MAX_TIMER_MS } from "../../src/core/duration.js";
import { startBackends, stopAllBackends } from "../helpers/backends.js";

const channels: Http2Channel[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await stopAllBackends();
});
afterAll(stopAllBackends);

/**
 * Node fires a timer whose delay is past 2^31−1 ms at once. On main before
 * issue 10, `health.interval: 3e9` therefore PINGed every member in a tight
 * loop (738 PINGs in a second). The backend counts the PING frames it gets.
 */
describe("health.interval at setTimeout's limit, against a real HTTP/2 backend", () => {
  it("3e9 ms is refused at construction: nothing dials, nothing PINGs", async () => {
    const [b] = await startBackends(["127.0.0.2"]);
    let err: unknown;
    try {
      channels.push(createHttp2Channel({ target: `http://127.0.0.2:${b!.port}`, members: 2, health: { interval: 3e9 } }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).option).toBe("health.interval");
    // Given the event loop a moment: a channel that had been built anyway would have dialed by now.
    await new Promise((r) => setTimeout(r, 200));
    expect(await b!.stats()).toMatchObject({ sessions: 0, pings: 0 });
  });

  it("exactly 2^31−1 ms is accepted and sends no PING burst: one PING per member, then quiet", async () => {
    const [b] = await startBackends(["127.0.0.2"]);
    // suspectAfter 0: a slow response on a loaded machine must not earn a (legitimate) suspect PING here.
    const ch = createHttp2Channel({ target: `http://127.0.0.2:${b!.port}`, members: 2, health: { interval: MAX_TIMER_MS, suspectAfter: 0 } });
    channels.push(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    // The first PING of each member proves it (and proves the backend counts PINGs).
    const atReady = (await b!.stats()).pings;
    expect(atReady).toBeGreaterThanOrEqual(2);
    // A second of traffic: the channel is usable, and no timer fired early.
    for (let i = 0; i < 5; i++) expect((await ch.request({ path: "/" })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    const after = await b!.stats();
    expect(after.sessions).toBe(2);
    expect(after.pings).toBe(atReady);
    expect(ch.stats().members.every((m) => m.state === "ready")).toBe(true);
  });
});

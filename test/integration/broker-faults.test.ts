import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { startBroker, stopAllBrokers } from "../helpers/broker.js";
import { makeDocroot, startNghttpd, stopRealServers } from "../helpers/real-servers.js";
import { channelFixture } from "../helpers/setup.js";

/**
 * A backend SIGKILLed, then another SIGSTOPped, under load through the
 * broker — while library callers run on their own channel over the same
 * nghttpd backends in the same test. Broker clients must lose no more than
 * library callers do: only calls in flight on a member at its fault.
 */

const { open } = channelFixture();
afterEach(async () => {
  await stopAllBrokers();
  await stopRealServers();
});

describe("broker under faults, beside the library", () => {
  it("SIGKILL and SIGSTOP of two of three nghttpd backends cost broker clients no more failures than library callers", async () => {
    const docroot = makeDocroot();
    const servers = [await startNghttpd("127.0.0.2", docroot), await startNghttpd("127.0.0.3", docroot), await startNghttpd("127.0.0.4", docroot)];
    const discovery = `static:///${servers.map((s) => s.key).join(",")}`;
    // The same channel settings on both sides: the broker's upstream and the library's channel.
    const b = await startBroker(
      `listen: ["http://127.0.0.1:0"]\nadmin: off\nupstreams:\n  web: { target: "http://web.internal:${servers[0]!.port}", discovery: "${discovery}", members: 3, default: true, warm: true, requestTimeout: 3s }\n`,
    );
    const ch = open({ target: `http://web.internal:${servers[0]!.port}`, discovery, members: 3, requestTimeout: 3000 });
    await ch.ready(AbortSignal.timeout(10_000));
    const u = new URL(b.listen[0]!);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const viaBroker = (): Promise<boolean> =>
      new Promise((resolve) => {
        const req = http.request({ host: u.hostname, port: Number(u.port), path: "/index.html", agent, headers: { host: "web.internal" }, timeout: 5_000 }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve(res.statusCode === 200 && body === "hello from a real server\n"));
          res.on("error", () => resolve(false));
        });
        req.on("error", () => resolve(false));
        req.on("timeout", () => req.destroy());
        req.end();
      });
    const viaLibrary = async (): Promise<boolean> => {
      const r = await ch.request({ path: "/index.html", timeout: 3000 });
      return r.status === 200;
    };
    const counts = { broker: { ok: 0, failed: 0 }, library: { ok: 0, failed: 0 } };
    const until = Date.now() + 6_000;
    const worker = async (kind: "broker" | "library"): Promise<void> => {
      // Bounded by time (6 s) and by count (2000 calls per worker).
      for (let i = 0; i < 2_000 && Date.now() < until; i++) {
        const ok = await (kind === "broker" ? viaBroker() : viaLibrary()).catch(() => false);
        counts[kind][ok ? "ok" : "failed"]++;
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const faults = (async () => {
      await new Promise((r) => setTimeout(r, 1_000));
      await servers[0]!.kill();
      await new Promise((r) => setTimeout(r, 1_500));
      servers[1]!.freeze();
    })();
    try {
      await Promise.all([...Array.from({ length: 4 }, () => worker("broker")), ...Array.from({ length: 4 }, () => worker("library")), faults]);
    } finally {
      servers[1]!.thaw();
      agent.destroy();
    }
    console.log(`broker-faults: broker ${JSON.stringify(counts.broker)}, library ${JSON.stringify(counts.library)}`);
    expect(counts.broker.ok).toBeGreaterThan(100);
    expect(counts.library.ok).toBeGreaterThan(100);
    // Only calls in flight at a fault may fail: at most one per worker (4) per fault (2), on either side.
    expect(counts.library.failed).toBeLessThanOrEqual(8);
    expect(counts.broker.failed).toBeLessThanOrEqual(8);
    // And the broker loses about what the library loses (a few calls either way, by chance of timing).
    expect(counts.broker.failed).toBeLessThanOrEqual(counts.library.failed + 5);
  });
});

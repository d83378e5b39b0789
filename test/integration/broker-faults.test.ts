import http from "node:http";
import { afterEach, describe, it } from "vitest";
import { startBroker, stopAllBrokers } from "../helpers/broker.js";
import { expectLossesLikeRequest, killThenFreeze, loadThroughFaults } from "../helpers/fault-load.js";
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
        const req = http.request(
          { host: u.hostname, port: Number(u.port), path: "/index.html", agent, headers: { host: "web.internal" }, timeout: 5_000 },
          (res) => {
            let body = "";
            res.on("data", (c: Buffer) => (body += c.toString()));
            res.on("end", () => resolve(res.statusCode === 200 && body === "hello from a real server\n"));
            res.on("error", () => resolve(false));
          },
        );
        req.on("error", () => resolve(false));
        req.on("timeout", () => req.destroy());
        req.end();
      });
    let tallies;
    try {
      tallies = await loadThroughFaults(
        {
          broker: async () => {
            if (!(await viaBroker())) throw new Error("broker call failed");
          },
          request: () => ch.request({ path: "/index.html", timeout: 3000 }),
        },
        killThenFreeze(servers),
      );
    } finally {
      servers[1]!.thaw();
      agent.destroy();
    }
    console.log(`broker-faults: broker ${JSON.stringify(tallies.broker)}, library ${JSON.stringify(tallies.request)}`);
    expectLossesLikeRequest(tallies, "broker");
  });
});

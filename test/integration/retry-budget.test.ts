import { describe, expect, it } from "vitest";
import { Registry } from "prom-client";
import { RequestError } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { recordEvents } from "../helpers/channel.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();

describe("the retry budget against a real HTTP/2 backend that refuses every stream", () => {
  /**
   * One member, every stream refused (REFUSED_STREAM: provably unprocessed,
   * so retried up to maxRetries = 2). A tiny budget — no ratio, a reserve of
   * 2 retries per 10 s window — lets the first call spend both and every
   * later call go out once: 5 calls make 7 attempts, not 15.
   */
  it("a tiny budget: retries stop once it is spent, each refusal is an event and a metric", async () => {
    const [b] = await startBackends(["127.0.0.2"]);
    const ch = open({
      target: `http://svc.test:${b!.port}`,
      discovery: staticDiscovery([b!]),
      members: 1,
      retryBudget: { ratio: 0, minPerSecond: 0.2, window: 10_000 },
    });
    const registry = new Registry();
    ch.metrics(registry);
    await ch.ready(AbortSignal.timeout(10_000));
    const rec = recordEvents(ch);
    await b!.command({ cmd: "refuse-next", n: 1000 });
    const results: unknown[] = [];
    for (let i = 0; i < 5; i++)
      results.push(
        await ch.request({ path: "/", method: "POST", body: "x" }).then(
          () => "ok",
          (e: unknown) => e,
        ),
      );
    for (const r of results) {
      expect(r).toBeInstanceOf(RequestError);
      expect((r as RequestError).unprocessed).toBe(true);
    }
    expect((await b!.stats()).refused).toBe(7);
    const exhausted = rec.events.filter((e) => e.type === "retry-budget-exhausted");
    expect(exhausted).toHaveLength(4);
    expect(exhausted.every((e) => e.type === "retry-budget-exhausted" && e.kind === "retry" && e.address === b!.key)).toBe(true);
    const requests = rec.events.filter((e) => e.type === "request").map((e) => (e.type === "request" ? e.retries : -1));
    expect(requests).toEqual([2, 0, 0, 0, 0]);
    const text = await registry.metrics();
    expect(text).toMatch(/dialtone_retry_budget_exhausted_total\{channel="[^"]+",kind="retry"\} 4/);
  });

  it("retryBudget: false sends every retry maxRetries allows", async () => {
    const [b] = await startBackends(["127.0.0.2"]);
    const ch = open({ target: `http://svc.test:${b!.port}`, discovery: staticDiscovery([b!]), members: 1, retryBudget: false });
    await ch.ready(AbortSignal.timeout(10_000));
    await b!.command({ cmd: "refuse-next", n: 1000 });
    for (let i = 0; i < 5; i++) await ch.request({ path: "/", method: "POST", body: "x" }).catch(() => undefined);
    expect((await b!.stats()).refused).toBe(15);
  });
});

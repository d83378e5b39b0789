import { describe, expect, it } from "vitest";
import { DialtoneError } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { channelFixture } from "../helpers/setup.js";
import { http2Supervisor } from "../helpers/supervisor.js";

// Reaps the backends after each test.
channelFixture();

describe("maxOutstanding bounds what a channel holds in flight", () => {
  it("past maxOutstanding leases, acquire() fails at once with ERR_DIALTONE_OVERLOADED; a release makes room", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const target = `http://svc.test:${backends[0]!.port}`;
    const sup = http2Supervisor(backends, { maxOutstanding: 4 });
    try {
      await sup.leases.ready(AbortSignal.timeout(5000));
      const leases = await Promise.all([1, 2, 3, 4].map(() => sup.leases.acquire()));
      const err = await sup.leases.acquire().then(
        () => undefined,
        (e: unknown) => e,
      );
      // OVERLOADED, not the acquire timeout's error: it did not wait in the queue.
      expect(err).toBeInstanceOf(DialtoneError);
      expect((err as DialtoneError).code).toBe("ERR_DIALTONE_OVERLOADED");
      expect((err as DialtoneError).message).toContain(target);
      leases[0]!.release();
      // Released twice counts once.
      leases[0]!.release();
      const again = await sup.leases.acquire();
      expect([...sup.members()].find((m) => m.id === again.member.id)?.state).toBe("ready");
      await expect(sup.leases.acquire()).rejects.toMatchObject({ code: "ERR_DIALTONE_OVERLOADED" });
      for (const l of [...leases.slice(1), again]) l.release();
    } finally {
      await sup.close();
    }
  });
});

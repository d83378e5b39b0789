import { connect, type ClientHttp2Session } from "node:http2";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { GaveUpError, Reconnect, type ReconnectEvent } from "../../src/index.js";
import { startBackend, stopAllBackends } from "../helpers/backends.js";

afterEach(stopAllBackends);

/** A single h2c session to one address: what a user supervising one connection would write. */
function dial(port: number) {
  return async ({ signal }: { signal: AbortSignal }): Promise<ClientHttp2Session> => {
    const s = connect(`http://127.0.0.2:${port}`);
    s.on("error", () => {});
    const onAbort = (): void => void s.destroy();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await Promise.race([
        once(s, "connect"),
        once(s, "close").then(() => {
          throw new Error("connection closed while connecting");
        }),
      ]);
      return s;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  };
}

describe("Reconnect handle against a real HTTP/2 backend", () => {
  it("reports connected/disconnected as the backend dies and comes back, and backs off in between", async () => {
    let backend = await startBackend({ host: "127.0.0.2" });
    const port = backend.port;
    const events: Array<ReconnectEvent & { at: number }> = [];
    const rc = new Reconnect<ClientHttp2Session>({
      connect: dial(port),
      lost: (s) => once(s, "close"),
      dispose: (s) => void s.close(),
      backoff: { initial: 100, multiplier: 2, max: 400, timeout: 0, jitter: 0 },
    });
    rc.on((e) => events.push({ ...e, at: performance.now() }));
    const seen: string[] = [];
    const reader = (async () => {
      for await (const s of rc.status()) {
        seen.push(s);
        if (seen.length === 3) break;
      }
    })();
    const waitFor = async (state: string): Promise<void> => {
      for (let i = 0; i < 200 && rc.state !== state; i++) await new Promise((r) => setTimeout(r, 25));
      expect(rc.state).toBe(state);
    };
    await waitFor("connected");
    await backend.kill();
    await waitFor("disconnected");
    // Let it fail at least three times: delays 100, 200, 400.
    await new Promise((r) => setTimeout(r, 900));
    const restartedAt = performance.now();
    backend = await startBackend({ host: "127.0.0.2", port });
    await waitFor("connected");
    await reader;
    expect(seen).toEqual(["disconnected", "connected", "disconnected"]);
    // Right after SIGKILL a dial can land in the dying listener's backlog, "connect", and be
    // reset at once (a success resets the backoff). Measure from the last loss before the restart.
    const lastLoss = events.filter((e) => e.type === "disconnected" && e.at < restartedAt).at(-1)!;
    const after = events.filter((e) => e.at >= lastLoss.at && e.at < restartedAt);
    const failures = after.filter((e) => e.type === "failure");
    expect(failures.length).toBeGreaterThanOrEqual(3);
    expect(failures.slice(0, 3).map((e) => (e.type === "failure" ? e.delay : 0))).toEqual([100, 200, 400]);
    // The measured gaps between attempts follow those delays (timers never fire early).
    const attempts = after.filter((e) => e.type === "attempt");
    for (let i = 1; i < 3; i++) {
      expect(attempts[i]!.at - attempts[i - 1]!.at).toBeGreaterThanOrEqual([0, 100, 200][i]! - 2);
    }
    await rc.close();
    await expect(rc.closed()).resolves.toBeUndefined();
  });

  it("gives up after backoff.timeout with GaveUpError, and the status stream ends", async () => {
    const backend = await startBackend({ host: "127.0.0.2" });
    const port = backend.port;
    await backend.kill();
    const rc = new Reconnect<ClientHttp2Session>({
      connect: dial(port),
      lost: (s) => once(s, "close"),
      backoff: { initial: 50, multiplier: 2, max: 100, timeout: 500, jitter: 0 },
      name: "single backend",
    });
    const statuses: string[] = [];
    for await (const s of rc.status()) statuses.push(s);
    const err = await rc.closed().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(GaveUpError);
    expect((err as GaveUpError).message).toContain("single backend");
    expect((err as GaveUpError).message).toContain("ECONNREFUSED");
    expect(statuses).toEqual(["disconnected"]);
  });

  it("abort stops the loop: no attempts after the signal", async () => {
    const backend = await startBackend({ host: "127.0.0.2" });
    const port = backend.port;
    await backend.kill();
    const ac = new AbortController();
    let attempts = 0;
    const rc = new Reconnect<ClientHttp2Session>({
      connect: (ctx) => {
        attempts++;
        return dial(port)(ctx);
      },
      lost: (s) => once(s, "close"),
      backoff: { initial: 50, multiplier: 1, max: 50, timeout: 0, jitter: 0 },
      signal: ac.signal,
    });
    await new Promise((r) => setTimeout(r, 300));
    ac.abort();
    await rc.closed();
    const after = attempts;
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts).toBe(after);
    expect(rc.state).toBe("disconnected");
  });
});

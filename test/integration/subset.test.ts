import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createHttp2Channel, type Http2Channel } from "../../src/index.js";

const SERVER = fileURLToPath(new URL("../fixtures/session-counter.ts", import.meta.url));
const BACKENDS = 100;
const CLIENTS = 100;
const MEMBERS = 3;
const hosts = Array.from({ length: BACKENDS }, (_, i) => `127.0.1.${i + 1}`);

let server: ChildProcess | undefined;
const channels: Http2Channel[] = [];
afterAll(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  if (server && server.exitCode === null) {
    server.kill("SIGKILL");
    await once(server, "exit");
  }
});

/** The next IPC message from the server that has `field`, within 10 s. */
async function reply<T>(child: ChildProcess, field: string): Promise<T> {
  const signal = AbortSignal.timeout(10_000);
  for (;;) {
    const [m] = (await once(child, "message", { signal })) as [Record<string, unknown>];
    if (field in m) return m[field] as T;
  }
}

describe("deterministic subsetting over real sockets", () => {
  it(`${CLIENTS} channels (clientId 0–${CLIENTS - 1}) × ${MEMBERS} members over ${BACKENDS} loopback addresses: every backend gets ${MEMBERS}`, async () => {
    server = fork(SERVER, [JSON.stringify(hosts)], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const port = await reply<number>(server, "port");
    const discovery = `static:///${hosts.map((h) => `${h}:${port}`).join(",")}`;
    for (let clientId = 0; clientId < CLIENTS; clientId++) {
      channels.push(createHttp2Channel({ target: `http://fleet.test:${port}`, discovery, members: MEMBERS, subset: { clientId } }));
    }
    await Promise.all(channels.map((c) => c.ready(AbortSignal.timeout(30_000))));
    server.send("counts");
    const counts = await reply<Record<string, number>>(server, "counts");
    const perBackend = hosts.map((h) => counts[h] ?? 0);
    expect(perBackend.reduce((a, b) => a + b, 0)).toBe(CLIENTS * MEMBERS);
    expect(new Set(perBackend)).toEqual(new Set([MEMBERS]));
    // Each channel's members sit on distinct addresses.
    for (const c of channels) expect(new Set(c.stats().members.map((m) => m.address)).size).toBe(MEMBERS);
  }, 60_000);
});

/**
 * The HTTP/2 soak target: 3 members over 4 backends named by dnsmasq
 * (soak.test), a fifth backend waiting as the spare a DNS change swaps in.
 * Faults, in turn, each on a backend that holds a member: SIGKILL then a
 * restart 2 s later, SIGSTOP for 3 s, GOAWAY (the server stops listening and
 * is restarted 2 s later), and a DNS change (one named address replaced by
 * the spare; minHold keeps its member 30 s, then it moves).
 */
import { createHttp2Channel, type Http2Channel } from "../../dist/index.js";
import { startBackend, startBackends, type Backend } from "./backends.js";
import { startDnsmasq, type Dnsmasq } from "./dnsmasq.js";
import type { SoakTarget } from "./soak-loop.js";

const NAME = "soak.test";
const HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"];
const NAMED = 4;
const FREEZE_MS = 3000;
const RESTART_AFTER_MS = 2000;

export interface Http2Soak {
  target: SoakTarget;
  config: Record<string, unknown>;
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function openHttp2Soak(timeoutMs: number): Promise<Http2Soak> {
  const backends = new Map<string, Backend>();
  for (const b of await startBackends(HOSTS)) backends.set(b.host, b);
  const port = (backends.get(HOSTS[0] as string) as Backend).port;
  let named = HOSTS.slice(0, NAMED);
  let dns: Dnsmasq | undefined;
  let channel: Http2Channel | undefined;
  try {
    dns = await startDnsmasq(
      named.map((h) => `${h} ${NAME}`),
      1,
    );
    const ch = createHttp2Channel({
      target: `http://${NAME}:${port}`,
      discovery: `dns:///${NAME}:${port}`,
      dns: { nameservers: [dns.server], hostsFile: false, family: 4 },
      members: 3,
    });
    channel = ch;
    await ch.ready(AbortSignal.timeout(10_000));
    const d = dns;
    let turn = 0;
    // A fault still restarting or thawing when the soak ends must not start a backend after close().
    let closed = false;
    const running = new Set<Promise<void>>();
    const track = (p: Promise<void>): Promise<void> => {
      running.add(p);
      return p.finally(() => running.delete(p));
    };
    /** A backend that holds a member now, taken in turn so every backend gets its share of faults. */
    const victim = (): Backend => {
      const busy = [
        ...new Set(
          ch
            .stats()
            .members.filter((m) => m.state === "ready")
            .map((m) => m.address.split(":")[0] as string),
        ),
      ];
      const pool = busy.length > 0 ? busy : named;
      return backends.get(pool[turn++ % pool.length] as string) as Backend;
    };
    const target: SoakTarget = {
      call: async () => {
        const r = await ch.request({ method: "POST", path: "/echo", body: "soak", timeout: timeoutMs });
        if (r.status !== 200) throw Object.assign(new Error(`status ${r.status}`), { code: `HTTP_${r.status}` });
      },
      faults: [
        {
          kind: "kill",
          cuts: true,
          windowMs: 100,
          run: () =>
            track(
              (async () => {
                const b = victim();
                await b.kill();
                await sleep(RESTART_AFTER_MS);
                if (!closed) backends.set(b.host, await startBackend(b.host, port));
              })(),
            ),
        },
        {
          kind: "freeze",
          cuts: true,
          windowMs: FREEZE_MS,
          run: () =>
            track(
              (async () => {
                const b = victim();
                b.freeze();
                await sleep(FREEZE_MS);
                b.thaw();
              })(),
            ),
        },
        {
          kind: "goaway",
          cuts: false,
          windowMs: 0,
          // The demo backend's GOAWAY also stops its listener (a server shutting down): it comes back
          // 2 s later, as in a rolling restart, or the soak would run out of backends.
          run: () =>
            track(
              (async () => {
                const b = victim();
                await b.command({ cmd: "goaway" });
                await sleep(RESTART_AFTER_MS);
                await b.stop();
                if (!closed) backends.set(b.host, await startBackend(b.host, port));
              })(),
            ),
        },
        {
          kind: "dns",
          cuts: false,
          windowMs: 0,
          run: async () => {
            // Swap one named address for the one left out: the set keeps 4 and overlaps the old one.
            const out = named[turn++ % named.length] as string;
            const spare = HOSTS.find((h) => !named.includes(h)) as string;
            named = [...named.filter((h) => h !== out), spare];
            await d.setHosts(named.map((h) => `${h} ${NAME}`));
          },
        },
      ],
    };
    return {
      target,
      config: {
        backends: HOSTS.length,
        named: NAMED,
        members: 3,
        discovery: "dns:/// via dnsmasq, TTL 1 s",
        freezeMs: FREEZE_MS,
        restartAfterMs: RESTART_AFTER_MS,
      },
      close: async () => {
        closed = true;
        await Promise.allSettled([...running]);
        await ch.close();
        await d.stop();
        await Promise.all([...backends.values()].map((b) => b.stop()));
      },
    };
  } catch (err) {
    await channel?.close();
    await dns?.stop();
    await Promise.all([...backends.values()].map((b) => b.stop()));
    throw err;
  }
}

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { frozenOf } from "./frozen.js";

export interface NatsNode {
  /** "node0": the server_name its INFO announces. */
  name: string;
  host: string;
  port: number;
  /** "127.0.0.2:4222" */
  key: string;
  pid: number;
  kill(): Promise<void>;
  /** SIGSTOP; resolves once every thread of the server is stopped (a signal is not a stop: see frozenOf). */
  freeze(): Promise<void>;
  thaw(): void;
  /** Lame duck mode, as `nats-server --signal ldm=<pid>` does (SIGUSR2). */
  lameDuck(): void;
  /** Starts the node again after it was killed or left lame duck mode (no-op while it runs); resolves once it accepts clients. */
  restart(): Promise<void>;
}

export interface NatsCluster {
  nodes: NatsNode[];
  port: number;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

process.on("exit", () => {
  for (const c of live) {
    c.kill("SIGCONT");
    c.kill("SIGKILL");
  }
});

function natsServerPath(): string {
  const r = spawnSync("sh", ["-c", 'PATH="$PATH:/usr/sbin:/sbin" command -v nats-server'], { encoding: "utf8" });
  const p = r.stdout.trim();
  if (!p) throw new Error("nats-server not found: install Debian's nats-server (npm test does this when root)");
  return p;
}

/**
 * A real 3-node nats-server cluster on 127.0.0.2–4: one client port and one
 * route port shared by all nodes, full-mesh routes, reaped on stop().
 */
export async function startNatsCluster(opts: { user?: string; pass?: string; hosts?: string[] } = {}): Promise<NatsCluster> {
  const hosts = opts.hosts ?? ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
  const bin = natsServerPath();
  for (let attempt = 0; attempt < 8; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const routePort = port + 1;
    const dir = mkdtempSync(join(tmpdir(), "dialtone-nats-"));
    const conf = join(dir, "nats.conf");
    const auth = opts.user ? `authorization { user: "${opts.user}", password: "${opts.pass ?? ""}" }\n` : "";
    writeFileSync(conf, `lame_duck_duration: "30s"\nlame_duck_grace_period: "1s"\nmax_payload: 1048576\n${auth}`);
    const routes = hosts.map((h) => `nats://${h}:${routePort}`).join(",");
    const spawnNode = (h: string, i: number): ChildProcess => {
      const c = spawn(
        bin,
        ["-c", conf, "-a", h, "-p", String(port), "-n", `node${i}`, "--cluster_name", "dialtone", "--cluster", `nats://${h}:${routePort}`, "--routes", routes],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      live.add(c);
      return c;
    };
    const children = hosts.map(spawnNode);
    let stderr = "";
    for (const c of children) c.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const stopAll = async (): Promise<void> => {
      await Promise.all(
        children.map(async (c) => {
          if (c.exitCode === null && c.signalCode === null) {
            c.kill("SIGCONT");
            c.kill("SIGKILL");
            await new Promise((r) => c.once("exit", r));
          }
          live.delete(c);
        }),
      );
      rmSync(dir, { recursive: true, force: true });
    };
    const ok = await waitMeshed(hosts, port, opts, children).catch(() => false);
    if (!ok) {
      await stopAll();
      if (/address already in use/i.test(stderr)) continue;
      throw new Error(`nats cluster did not form: ${stderr.slice(0, 2000)}`);
    }
    const nodes: NatsNode[] = hosts.map((h, i) => {
      let c = children[i] as ChildProcess;
      return {
        name: `node${i}`,
        host: h,
        port,
        key: `${h}:${port}`,
        get pid() {
          return c.pid as number;
        },
        restart: async () => {
          if (c.exitCode === null && c.signalCode === null) return;
          live.delete(c);
          c = spawnNode(h, i);
          // stop() reaps whatever runs now.
          children[i] = c;
          await waitAccepting(h, port, c, opts);
        },
        kill: async () => {
          if (c.exitCode !== null || c.signalCode !== null) return;
          c.kill("SIGCONT");
          c.kill("SIGKILL");
          await new Promise((r) => c.once("exit", r));
        },
        freeze: async () => {
          c.kill("SIGSTOP");
          await frozenOf(c.pid as number, "nats-server");
        },
        thaw: () => void c.kill("SIGCONT"),
        lameDuck: () => void spawnSync(bin, ["--signal", `ldm=${c.pid}`]),
      };
    });
    return { nodes, port, stop: stopAll };
  }
  throw new Error("could not find free ports for a nats cluster");
}

/** Bounded (10 s) wait until a restarted node accepts a client connection. */
async function waitAccepting(host: string, port: number, child: ChildProcess, auth: { user?: string; pass?: string }): Promise<void> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nats-server on ${host}:${port} exited while restarting`);
    try {
      const nc = await connect({ servers: `${host}:${port}`, reconnect: false, user: auth.user, pass: auth.pass, timeout: 500 });
      await nc.close();
      return;
    } catch {
      if (performance.now() > deadline) throw new Error(`nats-server on ${host}:${port} not accepting after restart`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Bounded wait until a message published on each node reaches a subscriber on the first. */
async function waitMeshed(hosts: string[], port: number, opts: { user?: string; pass?: string }, children: ChildProcess[]): Promise<boolean> {
  const deadline = performance.now() + 15_000;
  const conns: NatsConnection[] = [];
  try {
    for (const h of hosts) {
      while (true) {
        if (children.some((c) => c.exitCode !== null)) return false;
        try {
          conns.push(await connect({ servers: `${h}:${port}`, reconnect: false, user: opts.user, pass: opts.pass, timeout: 500 }));
          break;
        } catch {
          if (performance.now() > deadline) return false;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    const [first, ...others] = conns as [NatsConnection, ...NatsConnection[]];
    const sub = first.subscribe("_dialtone.probe");
    await first.flush();
    const seen = new Set<string>();
    const reader = (async () => {
      for await (const m of sub) {
        seen.add(m.string());
        if (seen.size === others.length) return;
      }
    })();
    while (seen.size < others.length) {
      if (performance.now() > deadline) return false;
      others.forEach((c, i) => c.publish("_dialtone.probe", String(i)));
      await Promise.race([reader, new Promise((r) => setTimeout(r, 100))]);
    }
    return true;
  } finally {
    await Promise.all(conns.map((c) => c.close().catch(() => {})));
  }
}

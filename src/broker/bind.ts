import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import net from "node:net";
import { ConfigError } from "../core/errors.js";
import type { ListenAddress } from "./listen-address.js";

/** How long a connect to an existing socket file may take to tell a live listener from a stale file. */
const PROBE_TIMEOUT_MS = 1_000;

/**
 * Binds a server (the ingress's or the admin's) to a listen address; the
 * one place both get the same care. A unix path is taken over only when it
 * is a stale socket (a crashed broker's: nothing answers a connect): a
 * path that is not a socket is refused and left alone, and so is a socket
 * that answers (a running broker would otherwise keep running,
 * unreachable). The socket is made owner-and-group only (0660) whatever the
 * umask: it is a way into every upstream. A bind that fails is a
 * ConfigError naming the setting (`listen[0]`, `admin`), so a supervisor's
 * log says which listener and why instead of a bare EADDRINUSE.
 * Returns the address as it is shown (`http://127.0.0.1:7000`, `unix:///path`).
 */
export async function bind(server: net.Server, addr: ListenAddress, option: string): Promise<string> {
  if (addr.kind === "unix") await clearStaleSocket(addr.path, option);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void =>
      reject(
        new ConfigError(
          option,
          `cannot listen on ${addr.text}: ${err.code ?? err.message}${err.code === "EADDRINUSE" ? " (another process is listening there)" : ""}`,
        ),
      );
    server.once("error", onError);
    const listening = (): void => {
      server.removeListener("error", onError);
      resolve();
    };
    if (addr.kind === "tcp") {
      server.listen(addr.port, addr.host, listening);
      return;
    }
    // bind(2) creates the socket file with the process umask: tighten it for that call, so the file is never
    // wider than 0660, not even until the chmod below.
    const umask = setUmask(0o117);
    try {
      server.listen(addr.path, listening);
    } finally {
      if (umask !== undefined) setUmask(umask);
    }
  });
  if (addr.kind === "unix") {
    chmodSync(addr.path, 0o660);
    return `unix://${addr.path}`;
  }
  const a = server.address() as net.AddressInfo;
  return a.family === "IPv6" ? `http://[${a.address}]:${a.port}` : `http://${a.address}:${a.port}`;
}

/** Removes the socket file a listener leaves (at shutdown); anything else at that path is not the broker's. */
export function removeSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    /* already gone */
  }
}

async function clearStaleSocket(path: string, option: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there (or a parent directory missing: listen names it)
  }
  if (!isSocket) throw new ConfigError(option, `${path} exists and is not a socket; refusing to replace it (remove it, or choose another path)`);
  if (await answers(path))
    throw new ConfigError(
      option,
      `${path} is a live socket: another process (a running broker?) accepts connections on it; stop it first, or choose another path`,
    );
  try {
    unlinkSync(path);
  } catch {
    /* gone meanwhile */
  }
}

/** Whether something accepts a connection on the unix socket at `path` (ECONNREFUSED: a stale file). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    const done = (live: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(live);
    };
    // A listener too busy to accept within the probe's time is still a listener.
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    s.once("connect", () => done(true));
    s.once("error", (err: NodeJS.ErrnoException) => done(err.code !== "ECONNREFUSED" && err.code !== "ENOENT"));
  });
}

/** process.umask(mask), returning the old one; undefined where it cannot be set (a worker thread). */
function setUmask(mask: number): number | undefined {
  try {
    return process.umask(mask);
  } catch {
    return undefined;
  }
}

/**
 * The benchmarks' backends: the same process controller the tests use
 * (test/helpers/backends.ts, forking test/fixtures/backend.ts built into
 * .build/), one per loopback address on one shared port, reaped at exit.
 * This file only adds what the scenarios call it by.
 */
import { startBackend as startOne, startBackends as startMany, type Backend } from "../../test/helpers/backends.js";

export type { Backend, BackendCommand, BackendStats } from "../../test/helpers/backends.js";

/** One backend on `host`:`port` (0: ephemeral). */
export function startBackend(host: string, port: number): Promise<Backend> {
  return startOne({ host, port });
}

/** One backend per host on one shared port (ephemeral, then random ports on EADDRINUSE). */
export function startBackends(hosts: string[]): Promise<Backend[]> {
  return startMany(hosts);
}

export async function stopAll(backends: Backend[]): Promise<void> {
  await Promise.all(backends.map((b) => b.stop()));
}

/** 127.0.0.2, 127.0.0.3, … */
export function loopbackHosts(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.0.${i + 2}`);
}

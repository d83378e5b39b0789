/** What every client under test looks like to a scenario. */

/** Where the backends are: one port, several loopback addresses. */
export interface Target {
  hosts: string[];
  port: number;
  /** Per-request deadline every client is given, ms. */
  timeoutMs: number;
}

export interface BenchClient {
  /** One unary echo of `body`; resolves with the x-backend header, rejects on any failure or the deadline. */
  call(body: Uint8Array): Promise<string | undefined>;
  close(): Promise<void>;
}

export interface Peer {
  /** Stable key in results files. */
  id: string;
  /** Human label for tables and charts. */
  label: string;
  /** "http2" peers POST /echo; "grpc" peers call /dialtone.bench.Echo/Echo on the same backends. */
  protocol: "http2" | "grpc";
  /** Connects and warms up (a few calls), so measurements start on live connections. */
  open(target: Target): Promise<BenchClient>;
}

/** The :authority every client sends (all backends accept any). */
export const HOSTNAME = "backend.test";
export const ECHO_PATH = "/echo";
export const GRPC_PATH = "/dialtone.bench.Echo/Echo";

/** A few calls, `width` at a time, so lazy clients have opened their connections. */
export async function warmUp(client: BenchClient, calls = 30, width = 3): Promise<void> {
  const body = new Uint8Array(8);
  for (let i = 0; i < calls; i += width) {
    await Promise.all(Array.from({ length: width }, () => client.call(body)));
  }
}

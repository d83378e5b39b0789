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

/**
 * A failed call. `backend` ("127.0.0.3:PORT") is set when the client can say
 * which backend the failed attempt went to (dialtone's errors carry the
 * member address, grpc-js calls have getPeer(), the raw session knows its
 * one address); undefined for clients that cannot tell.
 */
export class CallError extends Error {
  constructor(
    message: string,
    readonly backend: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "CallError";
  }
}

export interface Peer {
  /** Stable key in results files. */
  id: string;
  /** Human label for tables and charts. */
  label: string;
  /** "http2" peers POST /echo; "grpc" peers call /dialtone.bench.Echo/Echo on the same backends. */
  protocol: "http2" | "grpc";
  /** The client names the backend of a failed call (CallError.backend); otherwise only successes say where they went. */
  namesFailedBackend: boolean;
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

/**
 * grpc-js as its users have it: stubs from grpc-testing.proto loaded at run
 * time by @grpc/proto-loader, for whichever copy of grpc-js a test passes
 * (the newest, or the oldest 1.x, installed as "grpc-js-oldest"), and small
 * promise wrappers around its callback and stream calls.
 */
import { fileURLToPath } from "node:url";
import protoLoader from "@grpc/proto-loader";
import type * as Grpc from "@grpc/grpc-js";

export type GrpcModule = Pick<typeof Grpc, "loadPackageDefinition" | "Metadata" | "credentials" | "status">;
/** A dynamic client: every method of the service, as grpc-js makes them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyClient = Grpc.Client & Record<string, any>;
export type ClientCtor = new (address: string, credentials: Grpc.ChannelCredentials, options?: Grpc.ClientOptions) => AnyClient;

const PROTO = fileURLToPath(new URL("../fixtures/grpc-testing.proto", import.meta.url));

export function loadTesting(grpc: GrpcModule): { TestService: ClientCtor & { service: Grpc.ServiceDefinition }; UnimplementedService: ClientCtor } {
  const def = protoLoader.loadSync(PROTO, { defaults: true, longs: Number, enums: String });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { testing: Record<string, ClientCtor & { service: Grpc.ServiceDefinition }> } };
  return { TestService: pkg.grpc.testing.TestService!, UnimplementedService: pkg.grpc.testing.UnimplementedService! };
}

export interface Ended<T> {
  messages: T[];
  status: Grpc.StatusObject;
  headers: Grpc.Metadata | undefined;
}

/** Runs a unary or client-streaming call (given as a function of its callback) to its status. */
export function unary<T>(
  start: (cb: (err: Grpc.ServiceError | null, res?: T) => void) => Grpc.ClientUnaryCall | Grpc.ClientWritableStream<unknown>,
): Promise<Ended<T>> {
  return new Promise((resolve) => {
    let res: T | undefined;
    let headers: Grpc.Metadata | undefined;
    let cbDone = false;
    let status: Grpc.StatusObject | undefined;
    const settle = (): void => {
      if (cbDone && status) resolve({ messages: res === undefined ? [] : [res], status, headers });
    };
    const call = start((_err, r) => {
      res = r;
      cbDone = true;
      settle();
    });
    call.on("metadata", (md: Grpc.Metadata) => (headers = md));
    call.on("status", (s: Grpc.StatusObject) => {
      status = s;
      settle();
    });
  });
}

/** Reads a server-streaming or bidi call to its status (and the end of its messages). */
export function drain<T>(call: Grpc.ClientReadableStream<T> | Grpc.ClientDuplexStream<unknown, T>): Promise<Ended<T>> {
  return new Promise((resolve) => {
    const messages: T[] = [];
    let headers: Grpc.Metadata | undefined;
    let status: Grpc.StatusObject | undefined;
    let done = false;
    const settle = (): void => {
      if (done && status) resolve({ messages, status, headers });
    };
    call.on("metadata", (md: Grpc.Metadata) => (headers = md));
    call.on("data", (m: T) => messages.push(m));
    call.on("status", (s: Grpc.StatusObject) => {
      status = s;
      settle();
    });
    const end = (): void => {
      done = true;
      settle();
    };
    call.on("end", end);
    call.on("error", end);
  });
}

/** Reads a stream's messages one at a time: `next()` is the next message, or the error or end (undefined) that comes instead. */
export function reader<T>(call: Grpc.ClientReadableStream<T> | Grpc.ClientDuplexStream<unknown, T>): { next(): Promise<T | Error | undefined> } {
  const queue: Array<T | Error | undefined> = [];
  let wake: (() => void) | undefined;
  const push = (x: T | Error | undefined): void => {
    queue.push(x);
    wake?.();
  };
  call.on("data", (m: T) => push(m));
  call.on("error", (e: Error) => push(e));
  call.on("end", () => push(undefined));
  return {
    async next() {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      return queue.shift();
    },
  };
}

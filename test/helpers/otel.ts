import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { SpanKind, trace, type Tracer } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeEach } from "vitest";
import { DialtoneInstrumentation } from "../../src/adapters/otel.js";
import type { SpanRecord } from "../fixtures/otel-to-parent.js";
import { eventually } from "./channel.js";

export type { SpanRecord };

/** The preload that traces a backend process's HTTP/2 streams (and NATS messages) and sends its spans over IPC. */
export const SERVER_TRACING = fileURLToPath(new URL("../fixtures/otel-server-tracing.ts", import.meta.url));
/** Node flags for a traced backend process. */
export const TRACED_EXEC_ARGV = ["--import", "tsx", "--import", SERVER_TRACING];

let exporter: InMemorySpanExporter | undefined;

/** The real SDK in this process (once per test file): AsyncLocalStorage context, W3C propagator, spans kept in memory. */
export function clientTracing(): InMemorySpanExporter {
  if (exporter) return exporter;
  exporter = new InMemorySpanExporter();
  new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).register();
  return exporter;
}

/**
 * A test file's client side traced by dialtone/otel: the SDK (clientTracing),
 * DialtoneInstrumentation enabled for the file and disabled after it, the
 * exported spans cleared before each test, and a tracer for the tests' root spans.
 */
export function dialtoneTracing(): { exporter: InMemorySpanExporter; tracer: Tracer } {
  const spans = clientTracing();
  const instrumentation = new DialtoneInstrumentation();
  afterAll(() => instrumentation.disable());
  beforeEach(() => spans.reset());
  return { exporter: spans, tracer: trace.getTracer("test") };
}

/** The spans a traced backend sent (its Backend.messages, or a forked fixture's). */
export function spansIn(messages: readonly unknown[]): SpanRecord[] {
  return messages.filter((m): m is { otelSpan: SpanRecord } => typeof m === "object" && m !== null && "otelSpan" in m).map((m) => m.otelSpan);
}

/** Waits (bounded) until `find` returns something. */
export async function waitFor<T>(find: () => T | undefined, what: string, ms = 10_000): Promise<T> {
  let found: T | undefined;
  await eventually(() => (found = find()) !== undefined, ms, what);
  return found as T;
}

export const byId = (spans: readonly ReadableSpan[], id: string | undefined): ReadableSpan | undefined => spans.find((s) => s.spanContext().spanId === id);
export const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
export const isClient = (s: ReadableSpan): boolean => s.kind === SpanKind.CLIENT;

/**
 * A dialtone call's trace in this process: its call span (no dialtone parent)
 * and its attempt spans (children of it), by the call's span id.
 */
export function callTrees(spans: readonly ReadableSpan[]): Array<{ call: ReadableSpan; attempts: ReadableSpan[] }> {
  const dialtone = spans.filter((s) => s.instrumentationScope.name === "dialtone");
  const ids = new Set(dialtone.map((s) => s.spanContext().spanId));
  return dialtone
    .filter((s) => !ids.has(parentOf(s) ?? ""))
    .map((call) => ({
      call,
      attempts: dialtone
        .filter((s) => parentOf(s) === call.spanContext().spanId)
        .sort((a, b) => Number(a.attributes["dialtone.attempt"] ?? 1) - Number(b.attributes["dialtone.attempt"] ?? 1)),
    }));
}

/**
 * A traced fixture process (a Connect server, a NATS responder), forked with IPC; waits (bounded) for `readyLine` on stdout.
 * `execArgv`: the SDK-traced preload by default; a fixture that sets up its own tracing gives just tsx.
 */
export async function forkTraced(
  script: string,
  args: string[],
  readyLine: string,
  execArgv: string[] = TRACED_EXEC_ARGV,
): Promise<{ child: ChildProcess; messages: unknown[]; stop(): Promise<void> }> {
  const child = fork(fileURLToPath(new URL(`../fixtures/${script}`, import.meta.url)), args, {
    execArgv,
    stdio: ["pipe", "pipe", "inherit", "ipc"],
  });
  const messages: unknown[] = [];
  child.on("message", (m) => messages.push(m));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  let out = "";
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 15_000);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes(readyLine)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.once("exit", () => resolve(false));
  });
  if (!ready) {
    await stop();
    throw new Error(`${script} did not print "${readyLine}" within 15 s: ${out}`);
  }
  return { child, messages, stop };
}

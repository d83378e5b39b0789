/**
 * An HTTP/2 (h2c) backend in a child process that records what each stream
 * saw, for tests of what reaches a backend through a proxy: whether the
 * request body ended with END_STREAM, and whether (and with which code) the
 * stream was reset. The path says how to answer:
 *   /now…   200 "ok" at once
 *   /head…  the response head and 10 bytes, then nothing (the stream stays open)
 *   /hold…  nothing at all
 * One JSON line per event on the child's stdout; the helper keeps them.
 */
import { spawn, type ChildProcess } from "node:child_process";

export interface StreamRecord {
  path: string;
  method: string;
  /** The request body's bytes seen. */
  bytes: number;
  /** The body ended with END_STREAM (not a reset). */
  endStream: boolean;
  /** RST_STREAM code the stream closed with (undefined: closed cleanly, or not yet). */
  rstCode: number | undefined;
  closed: boolean;
}

const SCRIPT = `
import http2 from "node:http2";
const srv = http2.createServer();
const out = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
srv.on("stream", (stream, headers) => {
  const path = headers[":path"];
  out({ ev: "request", path, method: headers[":method"] });
  let bytes = 0;
  stream.on("data", (c) => (bytes += c.length));
  // Node pushes an end onto a reset stream's readable side too (after 'aborted', with the reset's code):
  // only an end before any reset is END_STREAM. (rstCode reads 0 until a reset.)
  let aborted = false;
  stream.on("aborted", () => (aborted = true));
  stream.on("end", () => { if (!aborted && !stream.rstCode) out({ ev: "end", path, bytes }); });
  stream.on("close", () => out({ ev: "close", path, bytes, rstCode: stream.rstCode }));
  stream.on("error", () => {});
  if (path.startsWith("/now")) { stream.respond({ ":status": 200 }); stream.end("ok"); }
  else if (path.startsWith("/head")) { stream.respond({ ":status": 200 }); stream.write("x".repeat(10)); }
});
srv.listen(0, process.argv[1], () => out({ ev: "listening", port: srv.address().port }));
process.on("disconnect", () => process.exit(0));
`;

export interface RecordingBackend {
  host: string;
  port: number;
  /** The record of the (first) stream for `path`, once it has closed; waits at most `ms`. */
  closed(path: string, ms?: number): Promise<StreamRecord>;
  /** Whether any stream for `path` reached the backend. */
  saw(path: string): boolean;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export async function startRecordingBackend(host = "127.0.0.1"): Promise<RecordingBackend> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", SCRIPT, host], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  live.add(child);
  const records = new Map<string, StreamRecord>();
  const waiters = new Set<() => void>();
  let buf = "";
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("recording backend did not listen within 10 s")), 10_000);
    child.once("exit", (code) => reject(new Error(`recording backend exited (${code})`)));
    child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const e = JSON.parse(buf.slice(0, nl)) as { ev: string; path: string; method?: string; port?: number; bytes?: number; rstCode?: number };
        buf = buf.slice(nl + 1);
        if (e.ev === "listening") {
          clearTimeout(timer);
          resolve(e.port as number);
          continue;
        }
        if (e.ev === "request") {
          if (!records.has(e.path))
            records.set(e.path, { path: e.path, method: e.method as string, bytes: 0, endStream: false, rstCode: undefined, closed: false });
          continue;
        }
        const r = records.get(e.path);
        if (!r || r.closed) continue;
        r.bytes = e.bytes ?? r.bytes;
        if (e.ev === "end") r.endStream = true;
        if (e.ev === "close") {
          r.closed = true;
          r.rstCode = e.rstCode;
        }
        for (const w of waiters) w();
      }
    });
  });
  return {
    host,
    port,
    saw: (path) => records.has(path),
    async closed(path, ms = 10_000) {
      const deadline = performance.now() + ms;
      for (;;) {
        const r = records.get(path);
        if (r?.closed) return { ...r };
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`the backend saw no close of ${path} within ${ms} ms (${r ? "the request arrived" : "no request"})`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, left);
          function done(): void {
            clearTimeout(t);
            waiters.delete(done);
            resolve();
          }
          waiters.add(done);
        });
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGKILL");
      await exited;
      live.delete(child);
    },
  };
}

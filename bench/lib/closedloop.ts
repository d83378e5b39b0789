/**
 * Closed-loop load for throughput: `concurrency` workers each send the next
 * request as soon as the previous one ends. After `warmupMs`, completions
 * are counted for `measureMs`; the CPU the process used in exactly that
 * window is divided by the requests completed in it. Bounded by time: no
 * worker starts a request after the window, and each request has a deadline.
 */
export interface ClosedLoopResult {
  requests: number;
  errors: number;
  seconds: number;
  /** Per-request latency of completions in the window, ms, ascending. */
  latencies: Float64Array;
  /** User + system CPU µs of this process in the window. */
  cpuMicros: number;
}

export async function closedLoop(o: { concurrency: number; warmupMs: number; measureMs: number; call: () => Promise<unknown> }): Promise<ClosedLoopResult> {
  const start = performance.now();
  const windowStart = start + o.warmupMs;
  const windowEnd = windowStart + o.measureMs;
  let opened: { t: number; cpu: NodeJS.CpuUsage } | undefined;
  let closed: { t: number; cpu: NodeJS.CpuUsage } | undefined;
  const latencies: number[] = [];
  let errors = 0;

  const worker = async (): Promise<void> => {
    while (closed === undefined) {
      const t0 = performance.now();
      let ok = true;
      try {
        await o.call();
      } catch {
        ok = false;
      }
      const t1 = performance.now();
      if (t1 >= windowEnd) {
        closed ??= { t: t1, cpu: process.cpuUsage() };
        break;
      }
      if (t1 >= windowStart) {
        if (!opened) {
          opened = { t: t1, cpu: process.cpuUsage() };
          continue; // the completion that opens the window is not counted in it
        }
        if (ok) latencies.push(t1 - t0);
        else errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  if (!opened || !closed) throw new Error("closed loop: no completion inside the measurement window");
  // Completions after the closing one (other workers finishing) are not counted; CPU is read at the close.
  const cpuMicros = closed.cpu.user + closed.cpu.system - (opened.cpu.user + opened.cpu.system);
  return {
    requests: latencies.length,
    errors,
    seconds: (closed.t - opened.t) / 1000,
    latencies: Float64Array.from(latencies).sort(),
    cpuMicros,
  };
}

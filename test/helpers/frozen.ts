import { readdirSync, readFileSync } from "node:fs";

/**
 * Resolves once every thread of `pid` is stopped, as /proc says ("T"): kill(2)
 * only queues SIGSTOP, and a thread of a server busy on the other core may
 * still answer a request or two until it takes the signal (a hedging test saw
 * a request answered through a nats-server it had just frozen; a DNS test, an
 * answer from a BIND it had just frozen). Bounded: 5 s.
 */
export async function frozenOf(pid: number, name: string): Promise<void> {
  const started = performance.now();
  for (;;) {
    let states: string[];
    try {
      states = readdirSync(`/proc/${pid}/task`).map((t) => threadState(pid, t));
    } catch {
      return; // Gone: nothing left to answer.
    }
    if (states.every((x) => x === "T" || x === "t")) return;
    if (performance.now() - started > 5000) throw new Error(`${name} ${pid} not stopped 5 s after SIGSTOP (threads: ${states.join("")})`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A thread's state letter, the field after the parenthesised command name in /proc/PID/task/TID/stat. */
function threadState(pid: number, tid: string): string {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
}

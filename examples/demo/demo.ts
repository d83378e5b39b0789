/**
 * `npm start`: a 20-second tour of what dialtone does when backends fail.
 *
 * Three local HTTP/2 backends (test/fixtures/backend.ts, one process each), one
 * channel keeping three warm members across them, ~200 requests/s of load,
 * and a fault script: SIGKILL one backend at 25% of the run, SIGSTOP another
 * at 50% and SIGCONT it at 75%. A live table shows the members while it
 * happens; a summary at the end says what it cost and how fast the channel
 * noticed.
 *
 *   npm start -- [--seconds N] [--single-host]
 *
 * Exit codes: 0 ran to the end (errors during faults are expected), 1 setup
 * failed, 130 stopped early by Ctrl-C / SIGTERM / SIGHUP (summary still printed).
 */
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { createHttp2Channel, HEALTH_DEFAULTS, RequestError, type ChannelEvent, type Http2Channel } from "dialtone";
import * as view from "./table.js";
import {
  BACKEND_SCRIPT,
  BackendStartError,
  startBackend,
  startBackends as startSharedPort,
  type Backend as BackendProcess,
} from "../../test/fixtures/backend-process.js";

const DEFAULT_SECONDS = 20;
const MIN_SECONDS = 5;
const MAX_SECONDS = 120;
/** Three distinct loopback IPs on one port look like three hosts of one service. */
const SHARED_PORT_HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"] as const;
const FALLBACK_HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 10_000;
const CLOSE_BOUND_MS = 7_000;
/** 2 requests every 10 ms ≈ 200/s, whether or not earlier ones have answered. */
const LOAD_TICK_MS = 10;
const LOAD_PER_TICK = 2;
const REQUEST_TIMEOUT_MS = 2_000;
const TTY_REDRAW_MS = 250;
const LINE_STATUS_MS = 1_000;
const EVENTS_SHOWN = 5;
const DEFAULT_WIDTH = 100;
const EXIT_INTERRUPTED = 130;
/**
 * Worst case for the default health check to call a frozen peer unhealthy:
 * the next PING is due up to one interval away, then `unhealthyAfter`
 * PINGs each time out (see src/health/options.ts).
 */
const FREEZE_DETECT_WITHIN_MS = HEALTH_DEFAULTS.interval + HEALTH_DEFAULTS.timeout * HEALTH_DEFAULTS.unhealthyAfter;

// ── options ────────────────────────────────────────────────────────────

interface DemoOptions {
  seconds: number;
  /** Skip 127.0.0.2–4 and use three ports on 127.0.0.1 (what macOS gets anyway). */
  singleHost: boolean;
}

class SetupError extends Error {}

const USAGE = `usage: npm start -- [--seconds N] [--single-host]
  --seconds N     run length, clamped to ${MIN_SECONDS}..${MAX_SECONDS} (default ${DEFAULT_SECONDS})
  --single-host   put the three backends on 127.0.0.1 (three ports) instead of 127.0.0.2-4`;

function parseOptions(argv: string[]): DemoOptions | "help" {
  let values: { seconds?: string; "single-host"?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { seconds: { type: "string" }, "single-host": { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new SetupError(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) return "help";
  const seconds = values.seconds === undefined ? DEFAULT_SECONDS : Number(values.seconds);
  // Number("") is 0, which would quietly clamp to the minimum.
  if (!Number.isFinite(seconds) || values.seconds?.trim() === "") {
    throw new SetupError(`--seconds expects a number, got ${JSON.stringify(values.seconds)}\n${USAGE}`);
  }
  return { seconds: Math.min(MAX_SECONDS, Math.max(MIN_SECONDS, seconds)), singleHost: values["single-host"] === true };
}

// ── backend processes ──────────────────────────────────────────────────

/**
 * One backend process (the tests' and benchmarks' controller starts and
 * reaps it), and what the demo has done to it.
 */
class Backend {
  state: view.BackendProcessState = "running";
  /** "#1 127.0.0.2", set once the whole set is up. */
  label = "";
  /** How the narration names it: the IP when all share a port, else IP:port. */
  name = "";

  constructor(readonly proc: BackendProcess) {}

  get key(): string {
    return this.proc.key;
  }
  get host(): string {
    return this.proc.host;
  }
  get port(): number {
    return this.proc.port;
  }
  get pid(): number {
    return this.proc.pid;
  }

  kill(): void {
    void this.proc.kill();
    this.state = "killed";
  }

  freeze(): void {
    this.proc.freeze();
    this.state = "frozen";
  }

  thaw(): void {
    this.proc.thaw();
    if (this.state === "frozen") this.state = "running";
  }

  async stop(): Promise<void> {
    await this.proc.stop();
    if (this.state !== "killed") this.state = "stopped";
  }
}

/** Starts the backends; an interruption meanwhile stops whatever did start. */
async function startChecked(start: Promise<BackendProcess[]>, signal: AbortSignal): Promise<Backend[]> {
  const procs = await start;
  if (signal.aborted) {
    await Promise.all(procs.map((p) => p.stop()));
    throw new SetupError("interrupted while starting backends");
  }
  return procs.map((p) => new Backend(p));
}

async function startBackends(options: DemoOptions, signal: AbortSignal): Promise<{ backends: Backend[]; note: string | undefined }> {
  let note: string;
  if (options.singleHost) {
    note = `--single-host: backends on three ports of ${FALLBACK_HOST}`;
  } else {
    try {
      // One port shared by 127.0.0.2-4 (retried on another port when it is taken).
      const backends = await startChecked(startSharedPort([...SHARED_PORT_HOSTS]), signal);
      for (const b of backends) b.name = b.host;
      return { backends, note: undefined };
    } catch (err) {
      // macOS (and some containers) only have 127.0.0.1 unless aliases are added.
      if (!(err instanceof BackendStartError && err.code === "EADDRNOTAVAIL")) throw err;
      note = `${SHARED_PORT_HOSTS.join(", ")} cannot be bound here (EADDRNOTAVAIL), so the backends use three ports on ${FALLBACK_HOST}`;
    }
  }
  const backends = await startChecked(Promise.all(SHARED_PORT_HOSTS.map(() => startBackend({ host: FALLBACK_HOST, port: 0 }))), signal);
  for (const b of backends) b.name = b.key;
  return { backends, note };
}

// ── load ───────────────────────────────────────────────────────────────

interface RequestRecord {
  startMs: number;
  endMs: number;
  ok: boolean;
  /** Where it went: x-backend on success, the failing attempt's address otherwise (when known). */
  backend: string | undefined;
  /** error.code (or the error's name) for failures. */
  kind: string | undefined;
}

function errorKind(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return err instanceof Error ? err.name : typeof err;
}

/** Counts per second of the demo clock, so the live view and the summary agree. */
class PerSecond {
  readonly #counts: number[] = [];
  add(atMs: number): void {
    const i = Math.floor(atMs / 1000);
    this.#counts[i] = (this.#counts[i] ?? 0) + 1;
  }
  at(second: number): number {
    return this.#counts[second] ?? 0;
  }
}

/**
 * Open-loop-ish load: a timer fires a fixed number of requests per tick
 * whether or not earlier ones have answered, so a stalled backend shows up
 * as errors and latency rather than as a quietly lower request rate.
 */
class LoadGenerator {
  readonly records: RequestRecord[] = [];
  readonly ok = new PerSecond();
  readonly failed = new PerSecond();
  readonly served = new Map<string, number>();
  errors = 0;
  inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #idle: Array<() => void> = [];

  constructor(
    private readonly channel: Http2Channel,
    private readonly clock: () => number,
  ) {}

  start(): void {
    this.#timer = setInterval(() => {
      for (let i = 0; i < LOAD_PER_TICK; i++) void this.#one();
    }, LOAD_TICK_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Waits for in-flight requests (they all end within their own timeout), bounded anyway. */
  async settle(maxMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    const idle = new Promise<void>((resolve) => this.#idle.push(resolve));
    await Promise.race([idle, sleep(maxMs)]);
  }

  async #one(): Promise<void> {
    const startMs = this.clock();
    this.inFlight++;
    let record: RequestRecord;
    try {
      const res = await this.channel.request({ path: "/", timeout: REQUEST_TIMEOUT_MS });
      const header = res.headers["x-backend"];
      const backend = typeof header === "string" ? header : undefined;
      const ok = res.status === 200;
      record = { startMs, endMs: this.clock(), ok, backend, kind: ok ? undefined : `HTTP ${res.status}` };
    } catch (err) {
      const backend = err instanceof RequestError ? err.address : undefined;
      record = { startMs, endMs: this.clock(), ok: false, backend, kind: errorKind(err) };
    }
    this.#count(record);
    this.inFlight--;
    if (this.inFlight === 0) for (const wake of this.#idle.splice(0)) wake();
  }

  #count(r: RequestRecord): void {
    this.records.push(r);
    if (r.ok) {
      this.ok.add(r.endMs);
      if (r.backend !== undefined) this.served.set(r.backend, (this.served.get(r.backend) ?? 0) + 1);
    } else {
      this.failed.add(r.endMs);
      this.errors++;
    }
  }
}

// ── events ─────────────────────────────────────────────────────────────

interface TimedEvent {
  atMs: number;
  event: ChannelEvent;
}

/**
 * Keeps the channel's events with the time they arrived (they are emitted
 * synchronously, so that is when they happened): the summary's timings are
 * measured from them, and the notable ones are shown live.
 */
class EventLog {
  readonly events: TimedEvent[] = [];
  readonly notable: view.TimedLine[] = [];
  onNotable: (line: view.TimedLine) => void = () => {};

  constructor(channel: Http2Channel, clock: () => number) {
    channel.on((event) => {
      // PINGs arrive every second per member and measure nothing we report.
      if (event.type === "ping") return;
      const atMs = clock();
      this.events.push({ atMs, event });
      const text = view.describeEvent(event);
      if (text !== undefined) this.#note({ atMs, text });
    });
  }

  /**
   * A dead address is re-dialed on every backoff step; folding identical
   * consecutive lines keeps those from pushing everything else off screen.
   */
  #note(line: view.TimedLine): void {
    const last = this.notable.at(-1);
    if (last?.text === line.text) {
      last.repeats = { count: (last.repeats?.count ?? 1) + 1, firstAtMs: last.repeats?.firstAtMs ?? last.atMs };
      last.atMs = line.atMs;
    } else {
      this.notable.push(line);
    }
    this.onNotable(line);
  }

  /** The first event of `type` at or after `fromMs` that matches. */
  first<T extends ChannelEvent["type"]>(
    type: T,
    fromMs: number,
    match: (e: Extract<ChannelEvent, { type: T }>) => boolean,
  ): { atMs: number; event: Extract<ChannelEvent, { type: T }> } | undefined {
    for (const t of this.events) {
      if (t.atMs < fromMs || t.event.type !== type) continue;
      const event = t.event as Extract<ChannelEvent, { type: T }>;
      if (match(event)) return { atMs: t.atMs, event };
    }
    return undefined;
  }
}

// ── fault script ───────────────────────────────────────────────────────

interface FaultMark {
  atMs: number;
  backend: Backend;
  /** Members on that backend's address when the fault hit. */
  memberIds: Set<number>;
  slots: Set<number>;
}

interface FaultStep {
  /** Fraction of the run at which it fires. */
  at: number;
  /** For the live view's "next:" line. */
  preview: string;
  run(): string;
}

/**
 * Kill at 25%, freeze at 50%, thaw at 75% of the run: spaced so that each
 * effect (redial, PING timeout and eviction) finishes before the next fault
 * in a default-length run.
 */
class FaultScript {
  kill: FaultMark | undefined;
  freeze: FaultMark | undefined;
  thawAtMs: number | undefined;
  readonly narration: view.TimedLine[] = [];
  onNarration: (line: view.TimedLine) => void = () => {};
  readonly #steps: FaultStep[];
  readonly #timers: NodeJS.Timeout[] = [];
  #next = 0;
  #startMs = 0;
  #durationMs = 0;

  constructor(
    private readonly channel: Http2Channel,
    backends: Backend[],
    private readonly clock: () => number,
  ) {
    const [killed, frozen] = backends as [Backend, Backend, Backend];
    this.#steps = [
      {
        at: 0.25,
        preview: `kill ${killed.name} (SIGKILL)`,
        run: () => {
          this.kill = this.#mark(killed);
          killed.kill();
          return `killed ${killed.name}: its member is closed, the slot re-dials elsewhere`;
        },
      },
      {
        at: 0.5,
        preview: `freeze ${frozen.name} (SIGSTOP)`,
        run: () => {
          this.freeze = this.#mark(frozen);
          frozen.freeze();
          return `froze ${frozen.name}: TCP stays open, only PING can tell`;
        },
      },
      {
        at: 0.75,
        preview: `thaw ${frozen.name} (SIGCONT)`,
        run: () => {
          this.thawAtMs = this.clock();
          frozen.thaw();
          return `thawed ${frozen.name}: it answers again, so dials to it can succeed once more`;
        },
      },
    ];
  }

  start(startMs: number, durationMs: number): void {
    this.#startMs = startMs;
    this.#durationMs = durationMs;
    for (const step of this.#steps) {
      const due = startMs + step.at * durationMs;
      this.#timers.push(setTimeout(() => this.#fire(step), Math.max(0, due - this.clock())));
    }
  }

  cancel(): void {
    for (const t of this.#timers) clearTimeout(t);
  }

  /** "t+10.05s freeze 127.0.0.3 (SIGSTOP)", or undefined when every step has run. */
  get nextStep(): string | undefined {
    const step = this.#steps[this.#next];
    return step ? `${view.stamp(this.#startMs + step.at * this.#durationMs)} ${step.preview}` : undefined;
  }

  #fire(step: FaultStep): void {
    this.#next++;
    const line = { atMs: this.clock(), text: step.run() };
    this.narration.push(line);
    this.onNarration(line);
  }

  #mark(b: Backend): FaultMark {
    const on = this.channel.stats().members.filter((m) => m.address === b.key && m.state !== "closed");
    return { atMs: this.clock(), backend: b, memberIds: new Set(on.map((m) => m.id)), slots: new Set(on.map((m) => m.slot)) };
  }
}

// ── live view ──────────────────────────────────────────────────────────

interface Run {
  options: DemoOptions;
  channel: Http2Channel;
  target: string;
  discovery: string;
  note: string | undefined;
  backends: Backend[];
  clock: () => number;
  load: LoadGenerator;
  log: EventLog;
  script: FaultScript;
  /** Set when the load stops; the rates shown stay on the last second under load. */
  loadEndMs: number | undefined;
}

function frameOf(run: Run): view.Frame {
  const s = run.channel.stats();
  const now = run.clock();
  // The last complete second under load: a partial one would read as a dip every redraw.
  const second = Math.floor(Math.min(now, run.loadEndMs ?? now) / 1000) - 1;
  return {
    elapsedMs: now,
    durationMs: run.options.seconds * 1000,
    target: run.target,
    discovery: run.discovery,
    note: run.note,
    stopping: run.loadEndMs !== undefined,
    status: s.status,
    ready: s.ready,
    wanted: s.wanted,
    usable: s.usable,
    degraded: s.degraded,
    queued: s.queued,
    okPerSec: second < 0 ? undefined : run.load.ok.at(second),
    errPerSec: second < 0 ? undefined : run.load.failed.at(second),
    errorsTotal: run.load.errors,
    inFlight: run.load.inFlight,
    members: s.members.map((m) => ({ slot: m.slot, id: m.id, address: m.address, state: m.state, rttMs: m.rttMs, inFlight: m.inFlight })),
    backends: run.backends.map((b) => ({ label: b.label, state: b.state, served: run.load.served.get(b.key) ?? 0 })),
    narration: run.script.narration,
    nextStep: run.script.nextStep,
    events: run.log.notable.slice(-EVENTS_SHOWN),
  };
}

interface Display {
  start(): void;
  /** Draws the last frame and leaves the terminal ready for normal output. */
  stop(): void;
}

/** Set while the live view hides the cursor, so the 'exit' hook can restore it. */
let cursorHidden = false;

/** A TTY gets the full table redrawn in place. */
function ttyDisplay(run: Run): Display {
  let timer: NodeJS.Timeout | undefined;
  let first = true;
  const draw = (): void => {
    // A pseudo-TTY without a size (script(1), some CI runners) reports 0 columns.
    const width = process.stdout.columns > 0 ? process.stdout.columns : DEFAULT_WIDTH;
    const lines = view.renderFrame(frameOf(run), { color: !process.env.NO_COLOR, width });
    process.stdout.write(view.frameToScreen(lines, first));
    first = false;
  };
  return {
    start() {
      process.stdout.write(view.TERMINAL.hideCursor);
      cursorHidden = true;
      draw();
      timer = setInterval(draw, TTY_REDRAW_MS);
    },
    stop() {
      clearInterval(timer);
      draw();
      process.stdout.write(view.TERMINAL.showCursor);
      cursorHidden = false;
    },
  };
}

/** Pipes and CI get plain lines: narration and events as they happen, one status line a second. */
function lineDisplay(run: Run): Display {
  let timer: NodeJS.Timeout | undefined;
  const print = (s: string): boolean => process.stdout.write(`${s}\n`);
  return {
    start() {
      run.script.onNarration = (l) => print(view.renderLogLine("script", l));
      run.log.onNotable = (l) => print(view.renderLogLine("event", l));
      timer = setInterval(() => print(view.renderStatusLine(frameOf(run))), LINE_STATUS_MS);
    },
    stop() {
      clearInterval(timer);
      run.script.onNarration = () => {};
      run.log.onNotable = () => {};
      print(view.renderStatusLine(frameOf(run)));
    },
  };
}

// ── summary ────────────────────────────────────────────────────────────

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

function killReport(run: Run): view.KillReport | undefined {
  const k = run.script.kill;
  if (!k) return undefined;
  const closed = run.log.first("state", k.atMs, (e) => e.to === "closed" && k.memberIds.has(e.member.id));
  const ready = run.log.first("connect-ok", k.atMs, (e) => k.slots.has(e.member.slot));
  return {
    label: k.backend.name,
    atMs: k.atMs,
    membersOnIt: k.memberIds.size,
    closedAfterMs: closed && closed.atMs - k.atMs,
    replacement: ready && { afterMs: ready.atMs - k.atMs, address: ready.event.member.address, slot: ready.event.member.slot },
  };
}

function freezeReport(run: Run, endMs: number): view.FreezeReport | undefined {
  const f = run.script.freeze;
  if (!f) return undefined;
  const key = f.backend.key;
  const thawMs = run.script.thawAtMs;
  const unhealthy = run.log.first("state", f.atMs, (e) => e.to === "unhealthy" && e.member.address === key);
  const evicted = run.log.first("evicted", f.atMs, (e) => e.member.address === key);
  // Requests that reached it while it was stopped; after the thaw it may legitimately serve again.
  const sent = run.load.records.filter((r) => r.backend === key && r.startMs >= f.atMs && r.startMs < (thawMs ?? endMs));
  const lastStart = sent.reduce<number | undefined>((max, r) => Math.max(max ?? r.startMs, r.startMs), undefined);
  return {
    label: f.backend.name,
    atMs: f.atMs,
    thawedAfterMs: thawMs === undefined ? undefined : thawMs - f.atMs,
    unhealthyAfterMs: unhealthy && unhealthy.atMs - f.atMs,
    evictedAfterMs: evicted && evicted.atMs - f.atMs,
    lastSentAfterMs: lastStart === undefined ? undefined : lastStart - f.atMs,
    sentDuringFreeze: sent.length,
    failedDuringFreeze: sent.filter((r) => !r.ok).length,
    detectWithinMs: FREEZE_DETECT_WITHIN_MS,
    // The freeze lasts a quarter of the run; leave half a second of margin.
    secondsToDetect: Math.min(MAX_SECONDS, Math.ceil((4 * (FREEZE_DETECT_WITHIN_MS + 500)) / 1000)),
  };
}

/** The slowest second lying wholly inside the load (partial edge seconds would always look slow). */
function worstSecond(run: Run, startMs: number, endMs: number): view.Summary["worstSecond"] {
  let worst: view.Summary["worstSecond"];
  for (let s = Math.ceil(startMs / 1000); s + 1 <= endMs / 1000; s++) {
    const ok = run.load.ok.at(s);
    if (!worst || ok < worst.ok) worst = { second: s, ok };
  }
  return worst;
}

function summarize(run: Run, startMs: number, endMs: number, interrupted: boolean): view.Summary {
  const records = run.load.records;
  const latencies = records
    .filter((r) => r.ok)
    .map((r) => r.endMs - r.startMs)
    .sort((a, b) => a - b);
  const kinds = new Map<string, number>();
  for (const r of records) if (r.kind !== undefined) kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
  const known = new Set(run.backends.map((b) => b.key));
  const others = [...run.load.served.entries()].filter(([k]) => !known.has(k));
  return {
    ranMs: endMs - startMs,
    plannedMs: run.options.seconds * 1000,
    interrupted,
    sent: records.length,
    ok: latencies.length,
    errors: run.load.errors,
    errorKinds: [...kinds.entries()].sort((a, b) => b[1] - a[1]),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    perBackend: [...run.backends.map((b): [string, number] => [b.label, run.load.served.get(b.key) ?? 0]), ...others],
    worstSecond: worstSecond(run, startMs, endMs),
    kill: killReport(run),
    freeze: freezeReport(run, endMs),
  };
}

// ── setup, run, teardown ───────────────────────────────────────────────

const say = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

async function withBound<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  const bound = new AbortController();
  try {
    return await Promise.race([p, sleep(ms, undefined, { signal: bound.signal }).catch(() => undefined)]);
  } finally {
    bound.abort();
  }
}

/** Closes the channel, then stops every backend; never hangs and never throws. */
async function tearDown(channel: Http2Channel | undefined, backends: Backend[]): Promise<void> {
  // A peer still frozen would leave the channel's goodbye unanswered.
  for (const b of backends) if (b.state === "frozen") b.thaw();
  if (channel)
    await withBound(
      channel.close().catch(() => undefined),
      CLOSE_BOUND_MS,
    );
  await Promise.all(backends.map((b) => b.stop()));
}

/**
 * channel.ready(), bounded by READY_TIMEOUT_MS and by the stop signal. The
 * bound is a plain timer: AbortSignal.any([AbortSignal.timeout(ms)]) can let
 * the timeout signal be garbage-collected and never fire on Node 20
 * (nodejs/node#57736), which made this wait forever.
 */
async function awaitReady(channel: Http2Channel, stop: AbortSignal): Promise<void> {
  const bound = new AbortController();
  const timer = setTimeout(() => bound.abort(), READY_TIMEOUT_MS);
  const onStop = (): void => bound.abort();
  stop.addEventListener("abort", onStop, { once: true });
  try {
    await channel.ready(bound.signal);
  } catch (err) {
    if (stop.aborted) throw new SetupError("interrupted while waiting for the channel");
    const why = channel.stats().lastError ?? (err as Error).message;
    throw new SetupError(`channel not ready within ${READY_TIMEOUT_MS / 1000} s: ${why}`);
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", onStop);
  }
}

async function setUp(options: DemoOptions, stop: AbortSignal): Promise<Run> {
  if (!existsSync(BACKEND_SCRIPT)) throw new SetupError(`${BACKEND_SCRIPT} not found: run "npm run build" first`);
  say(`dialtone demo: 3 HTTP/2 backends, one channel keeping 3 warm members, ~${(1000 / LOAD_TICK_MS) * LOAD_PER_TICK} req/s for ${options.seconds} s`);
  const { backends, note } = await startBackends(options, stop);
  if (note) say(`note: ${note}`);
  backends.forEach((b, i) => {
    b.label = `#${i + 1} ${b.name}`;
  });
  say(`backends up: ${backends.map((b) => `${b.label} (pid ${b.pid})`).join(", ")}`);
  const target = `http://demo.backend:${backends[0]?.port}`;
  const discovery = `static:///${backends.map((b) => b.key).join(",")}`;
  let channel: Http2Channel | undefined;
  try {
    channel = createHttp2Channel({ target, discovery, members: 3 });
    const origin = performance.now();
    const clock = (): number => performance.now() - origin;
    const log = new EventLog(channel, clock);
    await awaitReady(channel, stop);
    say(`channel ready in ${clock().toFixed(0)} ms: ${target} via ${discovery}`);
    const load = new LoadGenerator(channel, clock);
    const script = new FaultScript(channel, backends, clock);
    return { options, channel, target, discovery, note, backends, clock, load, log, script, loadEndMs: undefined };
  } catch (err) {
    await tearDown(channel, backends);
    throw err;
  }
}

interface RunResult {
  startMs: number;
  endMs: number;
  /** Stopped by a signal before its time; one arriving later, during teardown, does not count. */
  interrupted: boolean;
}

/** Load plus fault script until the run's length has passed or a stop signal arrives. */
async function runScript(run: Run, stop: AbortSignal): Promise<RunResult> {
  const display = process.stdout.isTTY ? ttyDisplay(run) : lineDisplay(run);
  const startMs = run.clock();
  const durationMs = run.options.seconds * 1000;
  display.start();
  run.load.start();
  run.script.start(startMs, durationMs);
  await sleep(durationMs, undefined, { signal: stop }).catch(() => undefined);
  const endMs = run.clock();
  const interrupted = stop.aborted;
  run.loadEndMs = endMs;
  run.load.stop();
  run.script.cancel();
  await run.load.settle(REQUEST_TIMEOUT_MS + 500);
  display.stop();
  return { startMs, endMs, interrupted };
}

/**
 * Ctrl-C, SIGTERM or SIGHUP stop the run early but still tear down and
 * print the summary; a second one exits at once (the 'exit' hook reaps).
 */
function installStopSignals(stop: AbortController): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (stop.signal.aborted) process.exit(EXIT_INTERRUPTED);
      stop.abort();
    });
  }
  // A closed pipe (`| head`) makes every later write fail: stop the same way.
  process.stdout.on("error", () => stop.abort());
}

function installExitHook(): void {
  process.on("exit", () => {
    // The backend controller's own exit hook SIGKILLs any backend still alive.
    if (cursorHidden) process.stdout.write(view.TERMINAL.showCursor);
  });
}

async function main(argv: string[]): Promise<number> {
  let options: DemoOptions | "help";
  try {
    options = parseOptions(argv);
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n`);
    return 1;
  }
  if (options === "help") {
    say(USAGE);
    return 0;
  }
  installExitHook();
  const stop = new AbortController();
  installStopSignals(stop);

  let run: Run;
  try {
    run = await setUp(options, stop.signal);
  } catch (err) {
    process.stderr.write(`demo: setup failed: ${(err as Error).message}\n`);
    return stop.signal.aborted ? EXIT_INTERRUPTED : 1;
  }
  const { startMs, endMs, interrupted } = await runScript(run, stop.signal);
  await tearDown(run.channel, run.backends);
  say("");
  say(view.renderSummary(summarize(run, startMs, endMs, interrupted)));
  return interrupted ? EXIT_INTERRUPTED : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; should some handle linger, do not hang on it.
    setTimeout(() => process.exit(code), 3_000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`demo: crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

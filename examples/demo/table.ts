/**
 * Pure rendering for the demo (examples/demo/demo.ts): every function here turns
 * plain data into a string and touches no process state, so what the demo
 * shows is decided in one place and can be checked without a terminal.
 */
import type { ChannelEvent, ConnectionStatus, MemberState } from "dialtone";

// ── terminal codes ─────────────────────────────────────────────────────

const ESC = "\x1b[";

/** Cursor control for the live view; only ever written when stdout is a TTY. */
export const TERMINAL = {
  /** Cursor home and clear: the first frame starts on an empty screen. */
  clearScreen: `${ESC}H${ESC}2J`,
  /** Later frames overwrite in place (each line clears its own tail), which avoids flicker. */
  home: `${ESC}H`,
  clearLineTail: `${ESC}K`,
  clearBelow: `${ESC}J`,
  hideCursor: `${ESC}?25l`,
  showCursor: `${ESC}?25h`,
} as const;

type Paint = "green" | "yellow" | "cyan" | "grey" | "red" | "bold" | "dim";

const PAINT_CODES: Record<Paint, string> = {
  green: "32",
  yellow: "33",
  cyan: "36",
  grey: "90",
  red: "31",
  bold: "1",
  dim: "2",
};

function paint(text: string, how: Paint, color: boolean): string {
  return color ? `${ESC}${PAINT_CODES[how]}m${text}${ESC}0m` : text;
}

const STATE_PAINT: Record<MemberState, Paint> = {
  ready: "green",
  unhealthy: "yellow",
  connecting: "cyan",
  draining: "cyan",
  closed: "grey",
};

// ── data the demo hands in ─────────────────────────────────────────────

export interface MemberRow {
  slot: number;
  id: number;
  address: string;
  state: MemberState;
  rttMs: number | undefined;
  inFlight: number;
}

/** What the demo did to a backend process (not what the channel thinks of it). */
export type BackendProcessState = "running" | "killed" | "frozen" | "stopped";

export interface BackendRow {
  /** "#1 127.0.0.2" */
  label: string;
  state: BackendProcessState;
  /** Successful responses that named this backend in x-backend. */
  served: number;
}

/** A line with a time relative to the demo's start. */
export interface TimedLine {
  atMs: number;
  text: string;
  /** When the same line came several times in a row: how often, and when first. */
  repeats?: { count: number; firstAtMs: number };
}

export interface Frame {
  elapsedMs: number;
  durationMs: number;
  target: string;
  discovery: string;
  /** Said once at the top, e.g. why the backends share 127.0.0.1. */
  note: string | undefined;
  /** The load has stopped; in-flight requests are finishing before the summary. */
  stopping: boolean;
  status: ConnectionStatus;
  ready: number;
  wanted: number;
  usable: number;
  degraded: boolean;
  queued: number;
  /** Successful responses in the last complete second; undefined during the first second. */
  okPerSec: number | undefined;
  errPerSec: number | undefined;
  errorsTotal: number;
  inFlight: number;
  members: MemberRow[];
  backends: BackendRow[];
  /** Fault steps taken so far, with their narration. */
  narration: TimedLine[];
  /** The next fault step, e.g. "t+10.0s freeze 127.0.0.3"; undefined when none is left. */
  nextStep: string | undefined;
  /** The most recent notable channel events, oldest first. */
  events: TimedLine[];
}

export interface RenderOptions {
  color: boolean;
  /** Terminal width: long free-text lines are cut to fit so a redraw never wraps. */
  width: number;
}

// ── small formatters ───────────────────────────────────────────────────

/** "t+5.03s": every time on screen is relative to the demo's start. */
export function stamp(ms: number): string {
  return `t+${(ms / 1000).toFixed(2)}s`;
}

/** "850 ms" below two seconds, "2.41 s" above: the unit a reader expects for each. */
export function duration(ms: number): string {
  return ms < 2000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function rtt(ms: number | undefined): string {
  return ms === undefined ? "-" : ms.toFixed(2);
}

function orDash(n: number | undefined): string {
  return n === undefined ? "-" : String(n);
}

function fit(line: string, width: number): string {
  return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`;
}

// ── events ─────────────────────────────────────────────────────────────

/**
 * A one-line description of the events a newcomer should notice (state
 * changes, evictions, degraded mode, failed dials, draining, status), or
 * undefined for the routine ones (PINGs, dial attempts, resolves).
 */
export function describeEvent(e: ChannelEvent): string | undefined {
  switch (e.type) {
    case "state":
      return `member #${e.member.id} (slot ${e.member.slot}, ${e.member.address}) ${e.from} → ${e.to}: ${cause(e.reason)}`;
    case "evicted":
      return `member #${e.member.id} (slot ${e.member.slot}, ${e.member.address}) evicted: ${cause(e.reason)}`;
    case "draining":
      return `member #${e.member.id} (slot ${e.member.slot}, ${e.member.address}) draining: ${cause(e.reason)}`;
    case "degraded":
      return e.degraded ? `degraded mode ON: only ${e.healthy} healthy member(s), doubtful ones keep serving` : `degraded mode off (${e.healthy} healthy)`;
    case "connect-failed":
      return `slot ${e.slot} could not connect to ${e.address}: ${cause(e.error.message, e.address)}`;
    case "status":
      return `channel ${e.status}`;
    default:
      return undefined;
  }
}

/**
 * Dialtone's messages start with the target and address ("http://x:1
 * (127.0.0.2:1): connect ECONNREFUSED 127.0.0.2:1"), and Node's socket
 * errors end with the address again; the line already names it once, and a
 * terminal line has no room for three copies.
 */
function cause(message: string, address?: string): string {
  let text = /^\S+ \([^)]*\): (.*)$/s.exec(message)?.[1] ?? message;
  if (address !== undefined && text.endsWith(` ${address}`)) text = text.slice(0, -address.length - 1);
  return text;
}

// ── live view (TTY) ────────────────────────────────────────────────────

const MEMBER_HEADER = "slot  member  address                 state        rtt ms  in-flight";

function memberLine(m: MemberRow, color: boolean): string {
  const state = paint(m.state.padEnd(11), STATE_PAINT[m.state], color);
  return [
    String(m.slot).padStart(4),
    `#${m.id}`.padStart(7),
    `  ${m.address.padEnd(22)}`,
    ` ${state}`,
    rtt(m.rttMs).padStart(7),
    String(m.inFlight).padStart(11),
  ].join("");
}

const BACKEND_PAINT: Record<BackendProcessState, Paint> = {
  running: "green",
  killed: "red",
  frozen: "yellow",
  stopped: "grey",
};

const BACKEND_HEADER = "backend                   process    served ok";

function backendLine(b: BackendRow, color: boolean): string {
  return `${b.label.padEnd(26)}${paint(b.state.padEnd(8), BACKEND_PAINT[b.state], color)}${String(b.served).padStart(12)}`;
}

function headerLines(f: Frame, o: RenderOptions): string[] {
  const status = paint(f.status, f.status === "connected" ? "green" : "red", o.color);
  const degraded = f.degraded ? paint("YES", "yellow", o.color) : "no";
  const hint = f.stopping
    ? paint("stopping: letting in-flight requests finish…", "yellow", o.color)
    : paint("Ctrl-C stops early (summary still printed)", "dim", o.color);
  return [
    `${paint("dialtone demo", "bold", o.color)}  ${stamp(f.elapsedMs)} of ${(f.durationMs / 1000).toFixed(0)}s   ${hint}`,
    fit(`target ${f.target}   discovery ${f.discovery}`, o.width),
    ...(f.note === undefined ? [] : [paint(fit(`note: ${f.note}`, o.width), "yellow", o.color)]),
    "",
    `channel ${status}   ready ${f.ready}/${f.wanted}   usable ${f.usable}   degraded ${degraded}   queued ${f.queued}`,
    `load    ok/s ${orDash(f.okPerSec)}   errors/s ${orDash(f.errPerSec)}   errors total ${f.errorsTotal}   in flight ${f.inFlight}`,
  ];
}

function withRepeats(l: TimedLine): string {
  return l.repeats ? `${l.text} (×${l.repeats.count} since ${stamp(l.repeats.firstAtMs)})` : l.text;
}

function listSection(title: string, lines: TimedLine[], empty: string, o: RenderOptions): string[] {
  const out = [paint(title, "bold", o.color)];
  if (lines.length === 0) out.push(paint(`  ${empty}`, "dim", o.color));
  for (const l of lines) out.push(fit(`  ${stamp(l.atMs).padEnd(9)} ${withRepeats(l)}`, o.width));
  return out;
}

/** The whole live view as lines, without cursor codes. */
export function renderFrame(f: Frame, o: RenderOptions): string[] {
  const lines = headerLines(f, o);
  lines.push("", paint(MEMBER_HEADER, "bold", o.color));
  for (const m of f.members) lines.push(memberLine(m, o.color));
  if (f.members.length === 0) lines.push(paint("  (no members)", "dim", o.color));
  lines.push("", paint(BACKEND_HEADER, "bold", o.color));
  for (const b of f.backends) lines.push(backendLine(b, o.color));
  lines.push("", ...listSection("fault script", f.narration, "nothing yet", o));
  if (f.nextStep !== undefined) lines.push(paint(fit(`  next: ${f.nextStep}`, o.width), "dim", o.color));
  lines.push("", ...listSection("recent events", f.events, "none yet", o));
  return lines;
}

/**
 * One redraw: cursor home, every line clearing its own tail, then clear
 * whatever an earlier, taller frame left below.
 */
export function frameToScreen(lines: string[], first: boolean): string {
  const start = first ? TERMINAL.clearScreen : TERMINAL.home;
  return `${start}${lines.map((l) => `${l}${TERMINAL.clearLineTail}`).join("\n")}\n${TERMINAL.clearBelow}`;
}

// ── line mode (pipes, CI) ──────────────────────────────────────────────

/** The compact once-a-second status for non-TTY output: no colour, no cursor codes. */
export function renderStatusLine(f: Frame): string {
  const members = f.members.map((m) => `s${m.slot} ${m.address} ${m.state} ${rtt(m.rttMs)}ms ${m.inFlight}if`).join(", ");
  return (
    `${stamp(f.elapsedMs)} ${f.status} ready ${f.ready}/${f.wanted}${f.degraded ? " DEGRADED" : ""}` +
    ` | ok/s ${orDash(f.okPerSec)} err/s ${orDash(f.errPerSec)} errors ${f.errorsTotal}` +
    ` | ${members || "no members"}`
  );
}

/** A narration or event line as printed in line mode. */
export function renderLogLine(kind: "script" | "event", l: TimedLine): string {
  return `${stamp(l.atMs)} ${kind === "script" ? ">>" : "  "} ${l.text}`;
}

// ── summary ────────────────────────────────────────────────────────────

export interface KillReport {
  label: string;
  atMs: number;
  /** Members on its address when it was killed (normally 1). */
  membersOnIt: number;
  /** From SIGKILL to the channel closing the member that was on it. */
  closedAfterMs: number | undefined;
  /** From SIGKILL to the same slot's next member being ready. */
  replacement: { afterMs: number; address: string; slot: number } | undefined;
}

export interface FreezeReport {
  label: string;
  atMs: number;
  /** How long the freeze lasted (undefined: not thawed before the end). */
  thawedAfterMs: number | undefined;
  unhealthyAfterMs: number | undefined;
  evictedAfterMs: number | undefined;
  /** Start of the last request that went to the frozen backend, after the freeze. */
  lastSentAfterMs: number | undefined;
  /** Requests sent to it during the freeze, and how many of them failed. */
  sentDuringFreeze: number;
  failedDuringFreeze: number;
  /** Worst case for the health check to notice a freeze, with the channel's settings. */
  detectWithinMs: number;
  /** A run length whose freeze outlasts that worst case (suggested when this one did not). */
  secondsToDetect: number;
}

export interface Summary {
  ranMs: number;
  plannedMs: number;
  interrupted: boolean;
  sent: number;
  ok: number;
  errors: number;
  /** error.code (or name) → count, most frequent first. */
  errorKinds: Array<[string, number]>;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  /** Successful responses per backend (x-backend), in backend order. */
  perBackend: Array<[string, number]>;
  worstSecond: { second: number; ok: number } | undefined;
  kill: KillReport | undefined;
  freeze: FreezeReport | undefined;
}

function ms2(n: number): string {
  return `${n.toFixed(2)} ms`;
}

function killLines(k: KillReport | undefined): string[] {
  if (!k) return ["kill         not reached (stopped early)"];
  if (k.membersOnIt === 0) return [`kill         ${k.label} SIGKILLed at ${stamp(k.atMs)}: no member was on it, nothing to replace`];
  const closed = k.closedAfterMs === undefined ? "its member was never seen closing" : `its member closed ${duration(k.closedAfterMs)} later`;
  const repl = k.replacement
    ? `slot ${k.replacement.slot}'s replacement ready on ${k.replacement.address} ${duration(k.replacement.afterMs)} after the kill`
    : "no replacement became ready before the end";
  return [`kill         ${k.label} SIGKILLed at ${stamp(k.atMs)}: ${closed};`, `             ${repl}`];
}

function freezeLines(f: FreezeReport | undefined): string[] {
  if (!f) return ["freeze       not reached (stopped early)"];
  const lasted = f.thawedAfterMs === undefined ? "still frozen at the end" : `thawed ${duration(f.thawedAfterMs)} later`;
  const unhealthy = f.unhealthyAfterMs === undefined ? "never marked unhealthy" : `marked unhealthy after ${duration(f.unhealthyAfterMs)}`;
  const evicted = f.evictedAfterMs === undefined ? "not evicted" : `evicted after ${duration(f.evictedAfterMs)}`;
  const traffic =
    f.lastSentAfterMs === undefined
      ? ["no request was sent to it after the freeze"]
      : [
          `the last request sent to it started ${duration(f.lastSentAfterMs)} after SIGSTOP;`,
          `${f.sentDuringFreeze} were sent to it while frozen, ${f.failedDuringFreeze} of them failed`,
        ];
  const lines = [
    `freeze       ${f.label} SIGSTOPped at ${stamp(f.atMs)}, ${lasted}:`,
    `             ${unhealthy}, ${evicted};`,
    ...traffic.map((t) => `             ${t}`),
  ];
  // What a newcomer would not guess: the default in-flight balancer often reacts before the health
  // check. Claimed only when traffic clearly stopped first (with two members on the frozen backend,
  // P2C sometimes has no other choice, and requests keep going there until the eviction).
  if (f.lastSentAfterMs !== undefined && f.unhealthyAfterMs !== undefined && f.lastSentAfterMs < f.unhealthyAfterMs / 2) {
    lines.push(
      `             (new requests stopped before PING noticed: a busy member silent for 250 ms is`,
      `             suspect, and the balancer avoids it while PINGs decide)`,
    );
  }
  // Not a failure of the channel: the thaw simply came before the PINGs could time out.
  if (f.unhealthyAfterMs === undefined && f.thawedAfterMs !== undefined && f.thawedAfterMs < f.detectWithinMs) {
    lines.push(
      `             (PING needs up to ${duration(f.detectWithinMs)} to notice a freeze and this one lasted ${duration(f.thawedAfterMs)};`,
      `             run with --seconds ${f.secondsToDetect} or more to see it evicted)`,
    );
  }
  return lines;
}

/** The end-of-run report. */
export function renderSummary(s: Summary): string {
  const how = s.interrupted ? "interrupted" : "complete";
  const pct = s.sent === 0 ? 0 : (100 * s.ok) / s.sent;
  const kinds = s.errorKinds.length === 0 ? "none" : s.errorKinds.map(([k, n]) => `${k} ×${n}`).join(", ");
  const latency = s.p50Ms === undefined || s.p99Ms === undefined ? "no successful requests" : `p50 ${ms2(s.p50Ms)}, p99 ${ms2(s.p99Ms)} (successful requests)`;
  const worst = s.worstSecond ? `; slowest full second: ${s.worstSecond.ok} ok at second ${s.worstSecond.second}` : "";
  return [
    `── summary (${how}: ran ${(s.ranMs / 1000).toFixed(1)} s of ${(s.plannedMs / 1000).toFixed(0)} s) ──`,
    `requests     ${s.sent} sent, ${s.ok} ok (${pct.toFixed(2)}%), ${s.errors} ${s.errors === 1 ? "error" : "errors"}${worst}`,
    `errors       ${kinds}`,
    `latency      ${latency}`,
    `per backend  ${s.perBackend.map(([k, n]) => `${k} ${n}`).join(", ")}`,
    ...killLines(s.kill),
    ...freezeLines(s.freeze),
    "",
    "Errors during the faults are expected: requests in flight on a killed or frozen backend fail,",
    "and the channel stops sending new ones there as soon as it knows.",
  ].join("\n");
}

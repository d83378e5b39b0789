import type { Address } from "../../src/core/address.js";
import { Regulator, type Action, type RegulatorEvent, type RegulatorOptions } from "../../src/supervisor/regulator.js";
import { fixedMembers, type MembersPlan } from "../../src/supervisor/members-plan.js";
import { DEFAULT_OUTLIER } from "../../src/pool/outlier-options.js";
import { mulberry32 } from "./random.js";

export type Dial = Extract<Action, { type: "dial" }>;

export function addr(i: number): Address {
  return { host: `10.0.0.${i}`, port: 443, family: 4 };
}
export const key = (i: number): string => `10.0.0.${i}:443`;

/**
 * A regulator driven by scripted events on a fake clock: what the supervisor
 * would do, without sockets or timers. Dials stay open until the script
 * settles them; member ids are handed out as the supervisor would.
 */
export class Sim {
  readonly reg: Regulator;
  now = 0;
  wakeAt: number | undefined;
  actions: Action[] = [];
  /** Dials not yet settled, by dial id. */
  open = new Map<number, Dial>();
  /** Member id of each connected dial. */
  memberOf = new Map<number, number>();
  #nextMember = 100;

  /** `members` may be a plain count, as most tests want a fixed one. */
  constructor(over: Omit<Partial<RegulatorOptions>, "members"> & { members?: number | MembersPlan } = {}) {
    const { members = 3, ...rest } = over;
    this.reg = new Regulator({
      target: "svc.test",
      members: typeof members === "number" ? fixedMembers(members) : members,
      criticalMin: 1,
      backoff: { initial: 100, multiplier: 2, max: 10_000, timeout: 0, jitter: 0 },
      flapWindow: 5000,
      minHold: 30_000,
      random: mulberry32(1),
      // Outlier ejection on, uncapped: every report ejects unless a test sets its own cap.
      outlier: { ...DEFAULT_OUTLIER, baseEjection: 1000, maxEjection: 2500, maxEjectedPercent: 100 },
      ...rest,
    });
  }

  send(e: RegulatorEvent): Action[] {
    const out = this.reg.accept(e, this.now);
    this.actions.push(...out);
    for (const a of out) {
      if (a.type === "dial") this.open.set(a.dial, a);
      // Like the supervisor's one timer: a new request replaces the old one.
      if (a.type === "wake") this.wakeAt = a.at;
    }
    return out;
  }

  answer(...ids: number[]): Action[] {
    return this.send({ type: "addresses", addresses: ids.map(addr) });
  }

  /** Open dials to an address. */
  dialsTo(i: number): Dial[] {
    return [...this.open.values()].filter((d) => d.address.host === addr(i).host);
  }

  /** Connects and proves every open dial to address i; returns the member ids. */
  up(i: number): number[] {
    const ids: number[] = [];
    for (const d of this.dialsTo(i)) ids.push(this.prove(d));
    return ids;
  }

  prove(d: Dial): number {
    const id = this.#nextMember++;
    this.open.delete(d.dial);
    this.memberOf.set(d.dial, id);
    this.send({ type: "connected", dial: d.dial, member: id });
    this.send({ type: "proven", member: id });
    return id;
  }

  /** Fails every open dial to address i (refused). */
  refuse(i: number): void {
    for (const d of this.dialsTo(i)) {
      this.open.delete(d.dial);
      this.send({ type: "dial-failed", dial: d.dial, member: undefined, error: new Error("ECONNREFUSED") });
    }
  }

  /** Advances the fake clock, delivering each tick the regulator asked for when it falls due. */
  advance(ms: number): void {
    const until = this.now + ms;
    while (this.wakeAt !== undefined && this.wakeAt <= until) {
      this.now = Math.max(this.now, this.wakeAt);
      this.wakeAt = undefined;
      this.send({ type: "tick" });
    }
    this.now = until;
  }

  of<T extends Action["type"]>(type: T): Array<Extract<Action, { type: T }>> {
    return this.actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
  }

  clear(): void {
    this.actions = [];
  }
}

import { isFailedAnswer, type DnsAnswerKind, type FamilyAnswer } from "../core/events.js";
import type { DnsResponse } from "./dns-message.js";

/**
 * The per-family rule (DESIGN.md, "DNS, per family"), apart from the
 * network so it can be tested on its own. A and AAAA are separate questions
 * that servers answer separately: one can be refused, time out or SERVFAIL
 * while the other answers. A family that fails keeps its own last good
 * addresses; a family that answers NODATA or NXDOMAIN has none (for its
 * negative TTL); a lookup has addresses when any family has some.
 */

export type AddressType = "A" | "AAAA";

/** What one record type of one name gave in one lookup. */
export type FamilyOutcome =
  | { kind: "addresses"; ips: string[]; ttl: number }
  /** A real answer with nothing in it, believed for `ttl` (the SOA's negative TTL, or Infinity without one). */
  | { kind: "none"; answer: "nodata" | "nxdomain"; ttl: number; server: string }
  | { kind: "failed"; answer: DnsAnswerKind; server: string | undefined; message: string };

/** The last good addresses of each family of each name asked. */
export class FamilyMemory {
  readonly #last = new Map<string, string[]>();

  get(name: string, type: AddressType): readonly string[] {
    return this.#last.get(key(name, type)) ?? [];
  }

  set(name: string, type: AddressType, ips: readonly string[]): void {
    this.#last.set(key(name, type), [...ips]);
  }

  /** Forgets names not asked in the last lookup (SRV targets come and go): the memory stays bounded. */
  retain(names: ReadonlySet<string>): void {
    for (const k of this.#last.keys()) if (!names.has(k.slice(0, k.lastIndexOf("|")))) this.#last.delete(k);
  }

  get size(): number {
    return this.#last.size;
  }
}

function key(name: string, type: AddressType): string {
  return `${name.replace(/\.$/, "").toLowerCase()}|${type}`;
}

export interface Merged {
  /** Fresh and kept addresses, A's first. */
  ips: string[];
  /** The smallest TTL among the fresh answers (addresses or none), ms; Infinity when no family answered. */
  ttl: number;
  /** The families that gave no fresh addresses, and what they answered. */
  answers: FamilyAnswer[];
  /**
   * `addresses`: some family has addresses, fresh or last good, and at least
   * one family answered. `empty`: every family answered, with nothing.
   * `failed`: no family answered (the set is unknown: the caller keeps what
   * it has), or none has an address and one failed (it may have had some).
   */
  status: "addresses" | "empty" | "failed";
  /** Some family failed (the lookup may still have succeeded on the other). */
  partial: boolean;
}

/**
 * Merges one lookup's outcomes for `name` and updates `memory`: a fresh
 * answer replaces a family's last good addresses (an empty one empties them),
 * a failure leaves them as they were and uses them.
 */
export function mergeFamilies(name: string, outcomes: ReadonlyArray<readonly [AddressType, FamilyOutcome]>, memory: FamilyMemory): Merged {
  const ips: string[] = [];
  const answers: FamilyAnswer[] = [];
  let ttl = Number.POSITIVE_INFINITY;
  let answered = false;
  let failed = false;
  for (const [type, o] of outcomes) {
    if (o.kind === "addresses") {
      answered = true;
      memory.set(name, type, o.ips);
      ips.push(...o.ips);
      ttl = Math.min(ttl, o.ttl);
    } else if (o.kind === "none") {
      answered = true;
      memory.set(name, type, []);
      ttl = Math.min(ttl, o.ttl);
      answers.push({ name, type, answer: o.answer, server: o.server, kept: 0, message: `${o.server} answered ${o.answer.toUpperCase()} for ${name} ${type}` });
    } else {
      failed = true;
      const kept = memory.get(name, type);
      ips.push(...kept);
      answers.push({ name, type, answer: o.answer, server: o.server, kept: kept.length, message: o.message });
    }
  }
  const unique = [...new Set(ips)];
  const status = !answered ? "failed" : unique.length > 0 ? "addresses" : failed ? "failed" : "empty";
  return { ips: unique, ttl, answers, status, partial: failed };
}

/**
 * How long an empty answer may be believed, ms (RFC 2308 §5): the smaller of
 * the SOA record's TTL and its MINIMUM field. Infinity without an SOA (the
 * caller uses minTtl then).
 */
export function negativeTtl(resp: Pick<DnsResponse, "authorities">): number {
  const soa = resp.authorities.find((r) => r.type === "SOA");
  if (!soa) return Number.POSITIVE_INFINITY;
  const minimum = (soa.data as { minimum?: unknown } | null)?.minimum;
  const seconds = typeof minimum === "number" && Number.isInteger(minimum) && minimum >= 0 ? Math.min(soa.ttl, minimum) : soa.ttl;
  return seconds * 1000;
}

/**
 * When to ask again, ms: at the set's TTL; after failures (a whole lookup,
 * or one family of it), no later than the retry backoff, so a failed family
 * is asked again soon while the other's addresses are used meanwhile.
 */
export function nextRefresh(ttl: number, failures: number, retry: { initial: number; max: number }): number {
  if (failures === 0) return ttl;
  return Math.min(ttl, Math.min(retry.max, retry.initial * 2 ** (failures - 1)));
}

/** Why a name has no address, in one line: every family's answer, naming the server. */
export function describeAnswers(answers: readonly FamilyAnswer[]): string {
  return answers.map((a) => (isFailedAnswer(a) && a.kept > 0 ? `${a.message} (kept ${a.kept} last good)` : a.message)).join("; ");
}

import { randomInt } from "node:crypto";
import { isIP } from "node:net";
import dnsPacket from "dns-packet";
import { ResolveError } from "../core/errors.js";
import type { DnsAnswerKind } from "../core/events.js";

export type QueryType = "A" | "AAAA" | "SRV";

/** One resource record, as the resolver uses it. */
export interface DnsRecord {
  name: string;
  type: string;
  ttl: number;
  data: unknown;
}

/** A response that passed every check: right ID, right question, well formed. */
export interface DnsResponse {
  rcode: string;
  truncated: boolean;
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

export interface DnsQuery {
  id: number;
  name: string;
  type: QueryType;
  bytes: Buffer;
}

/**
 * One server gave no usable answer to one question: what it was (a bounded
 * kind, for events and metric labels) and which server it was.
 */
export class DnsQueryError extends ResolveError {
  readonly answer: DnsAnswerKind;
  readonly server: string;
  /** The message without the "resolving <target>: " prefix. */
  readonly detail: string;
  constructor(target: string, message: string, answer: DnsAnswerKind, server: string, options?: { cause?: unknown }) {
    super(target, message, options);
    this.answer = answer;
    this.server = server;
    this.detail = message;
  }
}

/** A failing rcode as a DnsAnswerKind; rcodes outside the common ones are "error". */
export function rcodeAnswer(rcode: string): DnsAnswerKind {
  switch (rcode) {
    case "SERVFAIL":
      return "servfail";
    case "REFUSED":
      return "refused";
    case "NOTIMP":
      return "notimp";
    case "FORMERR":
      return "formerr";
    default:
      return "error";
  }
}

/** A query with a random 16-bit ID (the source port is random too: a fresh socket per query). */
export function makeQuery(name: string, type: QueryType): DnsQuery {
  const id = randomInt(0, 65536);
  const bytes = dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: "IN" }] });
  return { id, name, type, bytes };
}

/** DNS names compare case-insensitively, without the trailing dot. */
export function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, "").toLowerCase() === b.replace(/\.$/, "").toLowerCase();
}

/**
 * The decoder path: bytes from the network in, a checked response out.
 * Anything wrong (garbage, a wrong ID, a question that is not ours, not a
 * response, a record that is cut short or not what its type says) is a
 * ResolveError; nothing else can escape, whatever the bytes.
 */
export function decodeResponse(bytes: Buffer, query: DnsQuery, target: string): DnsResponse {
  let p: ReturnType<typeof dnsPacket.decode>;
  try {
    p = dnsPacket.decode(bytes);
  } catch (err) {
    throw new ResolveError(target, `malformed DNS message (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
  // dns-packet reads a cut record past the end of the buffer instead of
  // failing: an A record one byte short decodes to "127.0.0.undefined".
  // Having read more than was received means the message is malformed.
  const read = dnsPacket.decode.bytes;
  if (read > bytes.length) throw new ResolveError(target, `malformed DNS message (cut short: its records need ${read} bytes, got ${bytes.length})`);
  try {
    if (p.type !== "response") throw new ResolveError(target, "got a DNS query where a response was expected");
    if (p.id !== query.id) throw new ResolveError(target, `DNS response ID ${String(p.id)} does not match query ID ${query.id}`);
    const qs = p.questions ?? [];
    const q = qs[0];
    if (qs.length !== 1 || !q || typeof q.name !== "string" || !sameName(q.name, query.name) || q.type !== query.type) {
      throw new ResolveError(target, `DNS response is for another question (${q ? `${String(q.name)} ${String(q.type)}` : "none"})`);
    }
    const rcode = (p as { rcode?: unknown }).rcode;
    return {
      rcode: typeof rcode === "string" ? rcode : "UNKNOWN",
      truncated: p.flag_tc === true,
      answers: records(p.answers, target),
      authorities: records(p.authorities, target),
      additionals: records(p.additionals, target),
    };
  } catch (err) {
    if (err instanceof ResolveError) throw err;
    throw new ResolveError(target, `malformed DNS message (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
}

/**
 * Checks every record's shape. One bad record makes the whole answer
 * malformed: skipping it would turn a damaged answer into a smaller (or
 * empty) set of addresses, which the resolver would believe.
 */
function records(list: unknown, target: string): DnsRecord[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new ResolveError(target, "malformed DNS message (a record section is not a list)");
  const out: DnsRecord[] = [];
  for (const r of list as Array<Record<string, unknown> | null>) {
    if (!r || typeof r.name !== "string" || typeof r.type !== "string")
      throw new ResolveError(target, "malformed DNS message (a record without a name or type)");
    // OPT (EDNS) is a pseudo-record: it has no TTL and is never used as an answer.
    if (r.type === "OPT") continue;
    if (typeof r.ttl !== "number" || !Number.isInteger(r.ttl) || r.ttl < 0)
      throw new ResolveError(target, `malformed DNS message (${r.type} record for ${r.name} has TTL ${String(r.ttl)})`);
    const family = r.type === "A" ? 4 : r.type === "AAAA" ? 6 : 0;
    if (family !== 0 && (typeof r.data !== "string" || isIP(r.data) !== family)) {
      throw new ResolveError(
        target,
        `malformed DNS message (${r.type} record for ${r.name} holds ${JSON.stringify(String(r.data))}, not an IPv${family} address)`,
      );
    }
    out.push({ name: r.name, type: r.type, ttl: r.ttl, data: r.data });
  }
  return out;
}

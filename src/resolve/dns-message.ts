import { randomInt } from "node:crypto";
import dnsPacket from "dns-packet";
import { ResolveError } from "../core/errors.js";

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
 * response) is a ResolveError; nothing else can escape, whatever the bytes.
 */
export function decodeResponse(bytes: Buffer, query: DnsQuery, target: string): DnsResponse {
  let p: ReturnType<typeof dnsPacket.decode>;
  try {
    p = dnsPacket.decode(bytes);
  } catch (err) {
    throw new ResolveError(target, `malformed DNS message (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
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
      answers: records(p.answers),
      authorities: records(p.authorities),
      additionals: records(p.additionals),
    };
  } catch (err) {
    if (err instanceof ResolveError) throw err;
    throw new ResolveError(target, `malformed DNS message (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  }
}

/** Keeps only records whose basic shape is sound; odd ones are skipped, not trusted. */
function records(list: unknown): DnsRecord[] {
  if (!Array.isArray(list)) return [];
  const out: DnsRecord[] = [];
  for (const r of list as Array<Record<string, unknown>>) {
    if (!r || typeof r.name !== "string" || typeof r.type !== "string") continue;
    const ttl = typeof r.ttl === "number" && Number.isFinite(r.ttl) && r.ttl >= 0 ? r.ttl : 0;
    out.push({ name: r.name, type: r.type, ttl, data: r.data });
  }
  return out;
}

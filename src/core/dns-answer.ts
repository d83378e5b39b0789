/*
 * What a DNS server answered, as events, errors and metrics report it. Its
 * own file so that errors.ts (ResolveError carries answers) and events.ts
 * (which names GaveUpError) need not import each other.
 */

/**
 * What a DNS server said for one record type of one name when it gave no
 * fresh addresses: a real "none" (`nodata`, `nxdomain`) or a failure. The
 * set of values is closed, so metrics can use it as a label.
 */
export type DnsAnswerKind = "nodata" | "nxdomain" | "timeout" | "servfail" | "refused" | "notimp" | "formerr" | "malformed" | "error";

/** One family's answer, as the DNS resolver reports it (by record type; events and metrics name the family "ipv4", "ipv6" or "srv": familyOf). */
export interface FamilyAnswer {
  /** The name asked (after search domains and CNAMEs as asked). */
  name: string;
  type: "A" | "AAAA" | "SRV";
  answer: DnsAnswerKind;
  /** "ip:port" of the server that answered (the last one tried, on a failure). */
  server: string | undefined;
  /** Addresses of this family kept from its last good answer (a failure only; 0 otherwise). */
  kept: number;
  /** The answer in words, naming the server: "127.0.0.1:53 answered REFUSED for api.test AAAA". */
  message: string;
}

/** The address family a record type answers for, as events and metric labels name it. */
export function familyOf(type: FamilyAnswer["type"]): "ipv4" | "ipv6" | "srv" {
  return type === "A" ? "ipv4" : type === "AAAA" ? "ipv6" : "srv";
}

/** Whether an answer is a failure (the family keeps its last good addresses) rather than a real "none". */
export function isFailedAnswer(a: Pick<FamilyAnswer, "answer">): boolean {
  return a.answer !== "nodata" && a.answer !== "nxdomain";
}

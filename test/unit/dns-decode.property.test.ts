import dnsPacket from "dns-packet";
import fc from "fast-check";
import { isIP } from "node:net";
import { describe, expect, it } from "vitest";
import { ResolveError } from "../../src/core/errors.js";
import { decodeResponse, makeQuery, type DnsQuery } from "../../src/resolve/dns-message.js";

const query = makeQuery("svc.test", "A");
const valid = dnsPacket.encode({
  type: "response",
  id: query.id,
  flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
  questions: [{ type: "A", name: "svc.test", class: "IN" }],
  answers: [
    { type: "CNAME", name: "svc.test", ttl: 5, class: "IN", data: "real.test" },
    { type: "A", name: "real.test", ttl: 5, class: "IN", data: "127.0.0.2" },
  ],
});

/** Calls the decoder path; returns what escaped, if anything but a ResolveError. */
function escaped(bytes: Buffer): unknown {
  try {
    const r = decodeResponse(bytes, query, "dns:///svc.test:80");
    // Whatever was accepted is well-formed enough for the resolver to walk.
    for (const rec of [...r.answers, ...r.authorities, ...r.additionals]) {
      if (typeof rec.name !== "string" || typeof rec.type !== "string" || !(rec.ttl >= 0)) return new Error("malformed record accepted");
    }
    return undefined;
  } catch (err) {
    return err instanceof ResolveError ? undefined : err;
  }
}

describe("property: the DNS decoder path throws nothing but ResolveError, whatever the bytes", () => {
  it("random byte strings", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => escaped(Buffer.from(bytes)) === undefined),
      { numRuns: 3000 },
    );
  });

  it("a valid response with random bytes overwritten (reaches deep into the record parser)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const b = Buffer.from(valid);
        for (const [i, v] of edits) b[i] = v;
        return escaped(b) === undefined;
      }),
      { numRuns: 3000 },
    );
  });

  it("a valid response cut short at every length", () => {
    for (let n = 0; n < valid.length; n++) expect(escaped(valid.subarray(0, n))).toBeUndefined();
  });

  it("the untouched response is accepted (the property is not vacuous)", () => {
    const r = decodeResponse(valid, query, "dns:///svc.test:80");
    expect(r.answers.map((x) => x.type)).toEqual(["CNAME", "A"]);
  });
});

const aaaaQuery = makeQuery("svc.test", "AAAA");
const validAaaa = dnsPacket.encode({
  type: "response",
  id: aaaaQuery.id,
  flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
  questions: [{ type: "AAAA", name: "svc.test", class: "IN" }],
  answers: [
    { type: "AAAA", name: "svc.test", ttl: 5, class: "IN", data: "fd00::2" },
    { type: "AAAA", name: "svc.test", ttl: 5, class: "IN", data: "::1" },
  ],
  additionals: [{ type: "A", name: "svc.test", ttl: 5, class: "IN", data: "127.0.0.3" }],
});

/**
 * The decoder either rejects the bytes (ResolveError) or every A/AAAA record
 * it returns, in any section, holds a valid address of its family. Returns a
 * description of the first violation, or undefined.
 */
function bogusAddress(bytes: Buffer, q: DnsQuery): string | undefined {
  let r;
  try {
    r = decodeResponse(bytes, q, "dns:///svc.test:80");
  } catch (err) {
    return err instanceof ResolveError ? undefined : `threw ${String(err)}`;
  }
  for (const rec of [...r.answers, ...r.authorities, ...r.additionals]) {
    const family = rec.type === "A" ? 4 : rec.type === "AAAA" ? 6 : 0;
    if (family !== 0 && (typeof rec.data !== "string" || isIP(rec.data) !== family)) return `${rec.type} ${String(rec.data)}`;
  }
  return undefined;
}

describe("property: every decoded A/AAAA address is a valid IP, or the answer is rejected", () => {
  const cases = [
    { label: "A", q: query, bytes: valid },
    { label: "AAAA", q: aaaaQuery, bytes: validAaaa },
  ];

  it.each(cases)("$label response cut short at every length", ({ q, bytes }) => {
    for (let n = 0; n <= bytes.length; n++) expect(bogusAddress(bytes.subarray(0, n), q)).toBeUndefined();
  });

  it.each(cases)("$label response cut by one byte is rejected (dns-packet would read 127.0.0.undefined, or :: for AAAA)", ({ q, bytes }) => {
    expect(() => decodeResponse(bytes.subarray(0, bytes.length - 1), q, "dns:///svc.test:80")).toThrow(ResolveError);
    expect(() => decodeResponse(bytes.subarray(0, bytes.length - 1), q, "dns:///svc.test:80")).toThrow(/cut short/);
  });

  it.each(cases)("$label response with random bytes overwritten or cut", ({ q, bytes }) => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 0, maxLength: 6 }),
        // Bytes lost off the end (up to one AAAA record's worth), or none.
        fc.option(fc.integer({ min: 1, max: 18 }), { nil: 0 }),
        (edits, lost) => {
          const b = Buffer.from(bytes);
          for (const [i, v] of edits) b[i] = v;
          return bogusAddress(b.subarray(0, bytes.length - lost), q) === undefined;
        },
      ),
      { numRuns: 3000 },
    );
  });

  it.each(cases)("the untouched $label response is accepted with its addresses (not vacuous)", ({ q, bytes }) => {
    const r = decodeResponse(bytes, q, "dns:///svc.test:80");
    expect([...r.answers, ...r.additionals].map((x) => x.data).length).toBeGreaterThan(0);
    expect(bogusAddress(bytes, q)).toBeUndefined();
  });
});

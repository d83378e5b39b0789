import dnsPacket from "dns-packet";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ResolveError } from "../../src/core/errors.js";
import { decodeResponse, makeQuery } from "../../src/resolve/dns-message.js";

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

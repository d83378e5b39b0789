import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DialtoneError, type ChannelEvent, type Http2RequestInit } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

const { open } = channelFixture();

const anyText = fc.string({ unit: "binary", maxLength: 40 });
const tokenText = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
const plainText = fc.stringMatching(/^[\x21-\x7e]{0,40}$/);
// Weighted toward input a server accepts, so both paths (sent and refused) are exercised a lot.
const headerName = fc.oneof(
  { arbitrary: tokenText.map((t) => `x-${t}`), weight: 6 },
  fc.constantFrom(
    "x-a",
    "X-Mixed",
    "content-type",
    "connection",
    "te",
    "host",
    ":path",
    ":authority",
    "content-length",
    "authorization",
    "",
    "bad header",
    "x\u00e9",
  ),
  anyText,
);
const headerValue = fc.oneof(
  { arbitrary: plainText, weight: 8 },
  anyText,
  fc.integer(),
  fc.double(),
  fc.array(anyText, { maxLength: 3 }),
  fc.constantFrom(undefined, null, true, "trailers", "x".repeat(70_000), " padded ", "a\r\nb: c"),
  fc.object({ maxDepth: 1 }),
);
const body = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 3 },
  { arbitrary: anyText, weight: 3 },
  fc.uint8Array({ maxLength: 64 }),
  fc.uint8Array({ maxLength: 64 }).map((u) => u.buffer),
  fc.uint8Array({ maxLength: 64 }).map((u) => new DataView(u.buffer)),
  fc.uint8Array({ maxLength: 64 }).map((u) => new Blob([u])),
  fc.array(fc.oneof(anyText, fc.uint8Array({ maxLength: 16 }), fc.integer()), { maxLength: 4 }).map((parts) =>
    (async function* () {
      for (const p of parts) yield p;
    })(),
  ),
  fc.constantFrom(42, true, null),
  fc.object({ maxDepth: 1 }),
);
const init = fc.record(
  {
    method: fc.oneof({ arbitrary: fc.constantFrom("GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "CONNECT", "get", "TRACE"), weight: 8 }, anyText),
    path: fc.oneof(
      { arbitrary: fc.constant("/"), weight: 3 },
      { arbitrary: plainText.map((s) => `/${s}`), weight: 5 },
      anyText.map((s) => `/${s}`),
      anyText,
    ),
    headers: fc.oneof(
      { arbitrary: fc.dictionary(headerName, headerValue, { maxKeys: 3 }), weight: 3 },
      fc.dictionary(headerName, fc.constant("v"), { maxKeys: 3 }),
    ),
    body,
    idempotent: fc.boolean(),
    timeout: fc.oneof({ arbitrary: fc.constant(3000), weight: 9 }, fc.constantFrom(Number.NaN, -1, 0, 3e9)),
  },
  { requiredKeys: ["path"] },
);

describe("fuzzing request() against a live 2-member channel (fast-check, real HTTP/2 backends)", () => {
  it("every call resolves or rejects with a DialtoneError, and no member is ever lost to input", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const ch = open({ target: `http://svc.test:${backends[0]!.port}`, discovery: staticDiscovery(backends), members: 2 });
    await ch.ready(AbortSignal.timeout(10_000));
    const lost: ChannelEvent[] = [];
    ch.on((e) => {
      if (e.type === "evicted" || e.type === "member-removed" || e.type === "draining" || e.type === "connect-attempt") lost.push(e);
    });
    let ok = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(init, async (i) => {
        try {
          await ch.request(i as unknown as Http2RequestInit);
          ok++;
        } catch (err) {
          rejected++;
          if (!(err instanceof DialtoneError)) throw new Error(`escaped the taxonomy: ${String(err)}`, { cause: err });
        }
      }),
      { numRuns: 300, seed: 0x5eed, endOnFailure: true },
    );
    expect(ok).toBeGreaterThan(30);
    expect(rejected).toBeGreaterThan(0);
    expect(lost).toEqual([]);
    expect((await Promise.all(backends.map((b) => b.stats()))).map((s) => s.sessions)).toEqual([1, 1]);
    expect(ch.stats().members.map((m) => m.state)).toEqual(["ready", "ready"]);
  }, 60_000);
});

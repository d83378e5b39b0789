import { PassThrough } from "node:stream";
import { SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import type { Http2Channel, Http2Response } from "../../src/index.js";
import { startBackends, type Backend } from "../helpers/backends.js";
import { eventually } from "../helpers/channel.js";
import { callTrees, dialtoneTracing, parentOf, waitFor } from "../helpers/otel.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";

/**
 * dialtone/otel: a member's state changes are span events on each attempt
 * (and its call) that was in flight on that member when it changed — and on
 * no other call. Real faults: a backend process that sends GOAWAY under a
 * call, and one that is SIGSTOPped under a call (PINGs time out, the member
 * is evicted).
 */
const { open } = channelFixture();
const { exporter, tracer } = dialtoneTracing();

/** A POST whose body the test ends: the backend answers (echoes it) only then, so the call is in flight until the test says. */
function openPost(ch: Http2Channel, path: string): { body: PassThrough; response: Promise<Http2Response>; rootId: string } {
  const body = new PassThrough();
  body.write("part one ");
  let rootId = "";
  const response = tracer.startActiveSpan("test root", (root) => {
    rootId = root.spanContext().spanId;
    return ch.request({ method: "POST", path, body }).finally(() => root.end());
  });
  return { body, response, rootId };
}

/** Polls an asynchronous check every 20 ms until it holds; bounded. */
async function until(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const requestsAt = async (b: Backend): Promise<number> => (await b.stats()).requests;

const memberEvents = (s: ReadableSpan): Array<[string, unknown]> =>
  s.events.filter((e) => e.name.startsWith("dialtone.member.")).map((e) => [e.name, e.attributes?.["dialtone.member.reason"]]);

async function treeUnder(rootId: string): Promise<{ call: ReadableSpan; attempts: ReadableSpan[] }> {
  return await waitFor(() => callTrees(exporter.getFinishedSpans()).find((t) => parentOf(t.call) === rootId), "the call's spans");
}

describe("dialtone/otel: member changes are events on the spans of the calls in flight on that member, and only those", () => {
  it("GOAWAY under a call that still completes ok: dialtone.member.draining on its attempt and call; none on a call that had ended before", async () => {
    const [backend] = (await startBackends(["127.0.0.2"])) as [Backend];
    const ch = open({ target: `http://svc.test:${backend.port}`, discovery: staticDiscovery([backend]), members: 1 });
    await ch.ready(AbortSignal.timeout(10_000));
    const before = await tracer.startActiveSpan("test root", async (root) => {
      await ch.request({ path: "/before" });
      root.end();
      return root.spanContext().spanId;
    });
    const draining = new Promise<void>((resolve) => ch.on((e) => e.type === "draining" && e.reason === "goaway" && resolve()));
    const call = openPost(ch, "/echo");
    // The backend has the stream (its second request) before it sends GOAWAY: the call is below its last-stream-id.
    await until(async () => (await requestsAt(backend)) === 2, "the POST at the backend");
    await backend.command({ cmd: "goaway" });
    await draining;
    call.body.end("part two");
    const res = await call.response;
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("part one part two");

    const t = await treeUnder(call.rootId);
    expect(t.attempts).toHaveLength(1);
    const attempt = t.attempts[0]!;
    expect(attempt.attributes["dialtone.attempt.outcome"]).toBe("ok");
    expect(attempt.status.code).not.toBe(SpanStatusCode.ERROR);
    // The drained member closes once its last stream is done; whether that close or the call's own end is
    // handled first is up to the event loop, so a closed event after the draining one may or may not be there.
    const drained = (s: ReadableSpan): Array<[string, unknown]> => memberEvents(s).filter(([n]) => n !== "dialtone.member.closed");
    expect(drained(attempt)).toEqual([["dialtone.member.draining", "goaway"]]);
    expect(drained(t.call)).toEqual([["dialtone.member.draining", "goaway"]]);
    expect(memberEvents(attempt)[0]).toEqual(["dialtone.member.draining", "goaway"]);
    const event = attempt.events.find((e) => e.name === "dialtone.member.draining")!;
    expect(event.attributes).toMatchObject({ "network.peer.address": backend.host, "network.peer.port": backend.port, "dialtone.attempt": 1 });

    const earlier = await treeUnder(before);
    expect(memberEvents(earlier.call)).toEqual([]);
    expect(memberEvents(earlier.attempts[0]!)).toEqual([]);
  });

  it("a SIGSTOPped backend under a call: unhealthy then closed on that call's attempt and call spans; the call on the other member sees none", async () => {
    const backends = (await startBackends(["127.0.0.2", "127.0.0.3"])) as [Backend, Backend];
    const ch = open({
      target: `http://svc.test:${backends[0].port}`,
      discovery: staticDiscovery(backends),
      members: 2,
      balancer: "in-flight",
      // Found frozen within about 2 s, yet a PONG late by a whole second on a loaded machine is no failure.
      // No passive suspicion: each call's member is busy and silent while the test holds its body open.
      health: { interval: 500, timeout: 1000, unhealthyAfter: 2, suspectAfter: 0 },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    await eventually(() => ch.stats().ready === 2, 10_000, "both members ready");
    // Two calls in flight at once: with two members and the in-flight balancer, the second goes to the member the first did not take.
    const calls = [openPost(ch, "/echo"), openPost(ch, "/echo")];
    await until(async () => (await requestsAt(backends[0])) === 1 && (await requestsAt(backends[1])) === 1, "one POST at each backend");

    const [frozen] = backends;
    frozen.freeze();
    // The call on the frozen member fails once that member is evicted (its request was sent: no retry).
    const settled = calls.map((c) =>
      c.response.then(
        () => "ok" as const,
        (e: unknown) => e,
      ),
    );
    const lost = await Promise.race(settled.map((p, i) => p.then((r) => ({ i, r }))));
    expect(lost.r).toMatchObject({ code: "ERR_DIALTONE_MEMBER_LOST" });
    const other = calls[1 - lost.i]!;
    other.body.end("part two");
    expect((await other.response).status).toBe(200);

    const onFrozen = await treeUnder(calls[lost.i]!.rootId);
    const attempt = onFrozen.attempts[0]!;
    expect(attempt.attributes).toMatchObject({
      "network.peer.address": frozen.host,
      "dialtone.attempt.outcome": "error",
      "error.type": "ERR_DIALTONE_MEMBER_LOST",
    });
    // PINGs fail, then it is evicted.
    const changes = (s: ReadableSpan): string[] => memberEvents(s).map(([n]) => n);
    expect(changes(attempt)).toEqual(["dialtone.member.unhealthy", "dialtone.member.closed"]);
    expect(changes(onFrozen.call)).toEqual(["dialtone.member.unhealthy", "dialtone.member.closed"]);
    expect(attempt.events.find((e) => e.name === "dialtone.member.closed")!.attributes).toMatchObject({ "network.peer.address": frozen.host });

    const onLive = await treeUnder(other.rootId);
    expect(onLive.attempts[0]!.attributes["network.peer.address"]).toBe(backends[1].host);
    expect(memberEvents(onLive.call)).toEqual([]);
    expect(memberEvents(onLive.attempts[0]!)).toEqual([]);
    calls[lost.i]!.body.destroy();
  });
});

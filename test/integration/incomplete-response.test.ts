import { afterEach, describe, expect, it } from "vitest";
import { RequestError } from "../../src/index.js";
import { dataFrame, headersFrame, rstFrame, startRawH2Server, trailersFrame, type RawH2Server } from "../helpers/raw-h2.js";
import { channelFixture } from "../helpers/setup.js";

const { open } = channelFixture();
const servers: RawH2Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

type Script = (id: number, write: (b: Buffer) => void) => void;
const scripts: Record<string, Script> = {
  complete: (id, w) => (w(headersFrame(id, 200, { "content-length": "8" })), w(dataFrame(id, "complete", true))),
  "cut by RST_STREAM(NO_ERROR)": (id, w) => (w(headersFrame(id, 200)), w(dataFrame(id, "half")), w(rstFrame(id, 0))),
  "shorter than content-length": (id, w) => (w(headersFrame(id, 200, { "content-length": "10" })), w(dataFrame(id, "half", true))),
  "with trailers": (id, w) => (w(headersFrame(id, 200)), w(dataFrame(id, "body")), w(trailersFrame(id, { "grpc-status": "0" }))),
};

async function channelOn(script: Script): Promise<ReturnType<typeof open>> {
  const srv = await startRawH2Server("127.0.0.2", script);
  servers.push(srv);
  const ch = open({ target: `http://svc.test:${srv.port}`, discovery: `static:///127.0.0.2:${srv.port}`, members: 1, health: { suspectAfter: 0 } });
  await ch.ready(AbortSignal.timeout(10_000));
  return ch;
}

describe("success needs END_STREAM (raw-frame HTTP/2 server: a mock peer, since no real server cuts a body short on purpose)", () => {
  it("mock peer: a complete response, and one ending in trailers, succeed", async () => {
    const ch = await channelOn(scripts.complete!);
    expect((await ch.request({ path: "/" })).body.toString()).toBe("complete");
    const ch2 = await channelOn(scripts["with trailers"]!);
    const r = await ch2.request({ path: "/" });
    expect(r.body.toString()).toBe("body");
    expect(r.trailers["grpc-status"]).toBe("0");
  });

  it("mock peer: HEADERS 200 + DATA without END_STREAM + RST_STREAM(NO_ERROR) is ERR_DIALTONE_INCOMPLETE_RESPONSE, not a 200 with half a body", async () => {
    const ch = await channelOn(scripts["cut by RST_STREAM(NO_ERROR)"]!);
    const err = await ch.request({ path: "/" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).code).toBe("ERR_DIALTONE_INCOMPLETE_RESPONSE");
    expect((err as RequestError).unprocessed).toBe(false);
    // The streaming form: the body errors instead of ending.
    const res = await ch.requestStream({ path: "/" });
    const read = (async () => {
      for await (const _ of res.body) void _;
    })();
    await expect(read).rejects.toMatchObject({ code: "ERR_DIALTONE_INCOMPLETE_RESPONSE" });
    await expect(res.trailers).rejects.toMatchObject({ code: "ERR_DIALTONE_INCOMPLETE_RESPONSE" });
    expect(ch.stats().members[0]!.inFlight).toBe(0);
  });

  it("mock peer: a body shorter than its content-length fails", async () => {
    const ch = await channelOn(scripts["shorter than content-length"]!);
    const err = await ch.request({ path: "/" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RequestError);
    expect(["ERR_DIALTONE_INCOMPLETE_RESPONSE", "ERR_DIALTONE_STREAM"]).toContain((err as RequestError).code);
  });
});

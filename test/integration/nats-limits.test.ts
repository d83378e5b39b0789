import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestError, createNatsChannel, MemberLostError, type ChannelEvent, type NatsChannel } from "../../src/index.js";
import { startBroker, stopAllBrokers, type BrokerProcess } from "../helpers/broker.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";

/**
 * The server's size limits are the caller's errors (issue 22, item 8), against
 * a real nats-server with a lowered max_control_line and max_payload: the call
 * fails alone with a BadRequestError, nothing is written, no member is lost,
 * and the broker's bridge answers 400 (subject) or 413 (payload), never 502.
 */

const MAX_CONTROL_LINE = 512;
const MAX_PAYLOAD = 1024;

let server: NatsServer;
let responder: NatsConnection;
const channels: NatsChannel[] = [];

beforeAll(async () => {
  server = await startNatsServer({ config: () => `max_control_line: ${MAX_CONTROL_LINE}\nmax_payload: ${MAX_PAYLOAD}\n` });
  responder = await connect({ servers: server.key });
  const sub = responder.subscribe("echo");
  void (async () => {
    for await (const m of sub) {
      // "slow" requests are answered after 300 ms: they are in flight while a bad call is made.
      if (m.string() === "slow") setTimeout(() => m.respond("slow-ok"), 300);
      else m.respond(`ok:${m.data.length}`);
    }
  })().catch(() => {});
  await responder.flush();
});
afterAll(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await stopAllBrokers();
  await responder?.close();
  await server?.stop();
});

async function open(maxControlLine?: number): Promise<{ ch: NatsChannel; events: ChannelEvent[] }> {
  const ch = createNatsChannel({ target: `nats://${server.key}`, members: 1, ...(maxControlLine ? { maxControlLine } : {}) });
  channels.push(ch);
  const events: ChannelEvent[] = [];
  ch.on((e) => events.push(e));
  await ch.ready(AbortSignal.timeout(10_000));
  return { ch, events };
}

/** The one member is the same connection as before: never removed, still ready. */
function sameMember(ch: NatsChannel, events: ChannelEvent[], id: number): void {
  expect(events.filter((e) => e.type === "member-removed")).toEqual([]);
  const [m] = ch.stats().members;
  expect(m?.id).toBe(id);
  expect(m?.state).toBe("ready");
}

const longSubject = (bytes: number): string => `long.${"s".repeat(bytes - 5)}`;

describe("NATS limits are the caller's errors", () => {
  it("a subject over max_control_line fails that call alone (request, publish, subscribe); a request in flight on the member is answered", async () => {
    const { ch, events } = await open(MAX_CONTROL_LINE);
    const id = ch.stats().members[0]!.id;
    const inFlight = ch.request("echo", "slow", { timeout: 5000 });
    const subject = longSubject(600);
    const bad = await ch.request(subject, "x").catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect((bad as BadRequestError).field).toBe("subject");
    expect((bad as BadRequestError).reason).toBe("too-large");
    expect((bad as BadRequestError).message).toContain("max_control_line of 512");
    // The subject itself is not echoed back.
    expect((bad as BadRequestError).message).not.toContain("sssssssss");
    await expect(ch.publish(subject, "x")).rejects.toMatchObject({ field: "subject", reason: "too-large" });
    await expect(ch.subscribe(subject)).rejects.toMatchObject({ field: "subject", reason: "too-large" });
    // A subject that fits with the request's reply subject goes through.
    expect((await ch.request("echo", "fits")).string()).toBe("ok:4");
    expect((await inFlight).string()).toBe("slow-ok");
    sameMember(ch, events, id);
    // The caller's input is not the channel's trouble: it is never its last error.
    expect(ch.stats().lastError).toBeUndefined();
  });

  it("payload and header block are checked against the server's INFO max_payload: data, headers and their sum", async () => {
    const { ch, events } = await open(MAX_CONTROL_LINE);
    const id = ch.stats().members[0]!.id;
    const inFlight = ch.request("echo", "slow", { timeout: 5000 });
    const big = new Uint8Array(MAX_PAYLOAD + 1);
    await expect(ch.request("echo", big)).rejects.toMatchObject({ code: "ERR_DIALTONE_BAD_REQUEST", field: "data", reason: "too-large" });
    await expect(ch.publish("echo", big)).rejects.toMatchObject({ field: "data", reason: "too-large" });
    // A string counts in UTF-8 bytes: 400 × "é" is 800 bytes, 600 × "é" 1200.
    expect((await ch.request("echo", "é".repeat(400))).string()).toBe("ok:800");
    await expect(ch.request("echo", "é".repeat(600))).rejects.toMatchObject({ field: "data", reason: "too-large" });
    await expect(ch.request("echo", "x", { headers: { "x-big": "v".repeat(MAX_PAYLOAD) } })).rejects.toMatchObject({ field: "headers", reason: "too-large" });
    // Each part fits, the two together do not.
    await expect(ch.request("echo", new Uint8Array(700), { headers: { "x-half": "v".repeat(400) } })).rejects.toMatchObject({
      field: "data",
      reason: "too-large",
    });
    expect((await ch.request("echo", new Uint8Array(MAX_PAYLOAD))).string()).toBe(`ok:${MAX_PAYLOAD}`);
    expect((await inFlight).string()).toBe("slow-ok");
    sameMember(ch, events, id);
  });

  it("why the check exists: a subject the server's control line cannot take closes the member's connection (maxControlLine set above the server's)", async () => {
    const { ch, events } = await open(1 << 20);
    const id = ch.stats().members[0]!.id;
    // Far past what nats-server reads in one go (its read buffer is at most 64 KiB), so the line is always split.
    const err = await ch.request(longSubject(100_000), "x", { timeout: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MemberLostError);
    expect(events.some((e) => e.type === "member-removed" && e.member.id === id)).toBe(true);
  });
});

describe("the broker's NATS bridge and the server's limits", () => {
  let broker: BrokerProcess;
  beforeAll(async () => {
    // The upstream keeps the default maxControlLine (4096): the bridge takes what broker.yaml takes today.
    const big = await startNatsServer({ host: "127.0.0.6", config: () => `max_payload: ${MAX_PAYLOAD}\n` });
    const nc = await connect({ servers: big.key });
    const sub = nc.subscribe("echo");
    void (async () => {
      for await (const m of sub) m.respond(`ok:${m.data.length}`);
    })().catch(() => {});
    await nc.flush();
    broker = await startBroker(`
listen: ["http://127.0.0.1:0"]
admin: "http://127.0.0.1:0"
limits: { maxBodyBytes: 65536 }
upstreams:
  bus: { kind: nats, target: "nats://${big.key}", members: 1, warm: true }
`);
    return async () => {
      await stopAllBrokers();
      await nc.close();
      await big.stop();
    };
  });

  async function post(path: string, body: Uint8Array | string): Promise<{ status: number; error: string | null }> {
    const r = await fetch(`${broker.listen[0]}${path}`, { method: "POST", body, signal: AbortSignal.timeout(10_000) });
    await r.arrayBuffer();
    return { status: r.status, error: r.headers.get("x-dialtone-error") };
  }

  async function memberIds(): Promise<unknown> {
    const s = (await fetch(`${broker.admin}/stats`).then((r) => r.json())) as {
      broker: { in_flight: number };
      upstreams: { bus: { in_flight: number; channel: { members: Array<{ id: number; state: string }> } } };
    };
    // Nothing left in flight by a refusal, on the broker or the upstream.
    expect([s.broker.in_flight, s.upstreams.bus.in_flight]).toEqual([0, 0]);
    return s.upstreams.bus.channel.members.map((m) => `${m.id}:${m.state}`);
  }

  it("answers 400 for a subject over max_control_line and 413 for a payload over max_payload, and loses no member", async () => {
    expect(await post("/nats/bus/request/echo", "hi")).toEqual({ status: 200, error: null });
    const before = await memberIds();
    expect(before).toEqual([expect.stringMatching(/:ready$/)]);
    const subject = longSubject(5000);
    expect(await post(`/nats/bus/request/${subject}`, "x")).toEqual({ status: 400, error: "ERR_DIALTONE_BAD_REQUEST" });
    expect(await post(`/nats/bus/publish/${subject}`, "x")).toEqual({ status: 400, error: "ERR_DIALTONE_BAD_REQUEST" });
    expect(await post("/nats/bus/request/echo", new Uint8Array(MAX_PAYLOAD + 1))).toEqual({ status: 413, error: "ERR_DIALTONE_BAD_REQUEST" });
    expect(await post("/nats/bus/publish/echo", new Uint8Array(MAX_PAYLOAD + 1))).toEqual({ status: 413, error: "ERR_DIALTONE_BAD_REQUEST" });
    expect(await post("/nats/bus/request/echo", new Uint8Array(MAX_PAYLOAD))).toEqual({ status: 200, error: null });
    expect(await memberIds()).toEqual(before);
  });
});

import { execFile } from "node:child_process";
import http from "node:http";
import http2 from "node:http2";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startBroker, stopAllBrokers, type BrokerProcess } from "../helpers/broker.js";
import { startNatsCluster, type NatsCluster } from "../helpers/nats-cluster.js";

/** The NATS bridge against a real 3-node nats-server cluster, with a responder on its own connection. */

let cluster: NatsCluster;
let broker: BrokerProcess;
let responder: NatsConnection;

beforeAll(async () => {
  cluster = await startNatsCluster();
  responder = await connect({ servers: cluster.nodes[2]!.key });
  const echo = responder.subscribe("price.quote");
  void (async () => {
    for await (const m of echo) {
      const h = natsHeaders();
      h.set("x-quoted-by", "responder");
      h.set("x-sku", m.headers?.get("x-sku") ?? "none");
      m.respond(new TextEncoder().encode(`quote:${m.string()}`), { headers: h });
    }
  })();
  responder.subscribe("slow.never"); // subscribed but never answers
  await responder.flush();
  broker = await startBroker(`
listen: ["http://127.0.0.1:0"]
admin: off
limits: { maxBodyBytes: 1024 }
upstreams:
  prices: { kind: nats, target: "nats://${cluster.nodes.map((n) => n.key).join(",")}", members: 2, warm: true }
`);
});
afterAll(async () => {
  await stopAllBrokers();
  await responder?.close();
  await cluster?.stop();
});

function post(
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(broker.listen[0]!);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: Number(u.port), path, method: "POST", agent: false, headers, timeout: 10_000 }, (res) => {
      let b = "";
      res.on("data", (c: Buffer) => (b += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("broker NATS bridge", () => {
  it("request → the reply's body, with nats-* headers both ways", async () => {
    const r = await post("/nats/prices/request/price.quote", "sku-42", { "nats-x-sku": "42" });
    expect(r.status).toBe(200);
    expect(r.body).toBe("quote:sku-42");
    expect(r.headers["nats-x-quoted-by"]).toBe("responder");
    expect(r.headers["nats-x-sku"]).toBe("42");
  });

  it("curl (a client no one here wrote) gets a reply through the bridge, nats-* headers both ways", async () => {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(
        "curl",
        ["-sS", "-i", "--http1.1", "-H", "nats-x-sku: 7", "--data-binary", "sku-7", `${broker.listen[0]}/nats/prices/request/price.quote`],
        { timeout: 10_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      );
    });
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    expect(out.toLowerCase()).toContain("nats-x-quoted-by: responder");
    expect(out.toLowerCase()).toContain("nats-x-sku: 7");
    expect(out.endsWith("\r\n\r\nquote:sku-7")).toBe(true);
  });

  it("publish → 202, and a subscriber gets it", async () => {
    const sub = responder.subscribe("orders.created", { max: 1 });
    await responder.flush();
    const got = (async () => {
      for await (const m of sub) return m.string();
      return undefined;
    })();
    const r = await post("/nats/prices/publish/orders.created", "order-1");
    expect(r.status).toBe(202);
    expect(await Promise.race([got, new Promise((res) => setTimeout(() => res("timeout"), 5_000))])).toBe("order-1");
  });

  it("maps no responders to 503, a timeout to 504, a bad subject to 400 and a large body to 413", async () => {
    const none = await post("/nats/prices/request/nobody.home", "x");
    expect(none.status).toBe(503);
    expect(none.headers["x-dialtone-error"]).toBe("ERR_DIALTONE_NO_RESPONDERS");
    const slow = await post("/nats/prices/request/slow.never?timeout=200ms", "x");
    expect(slow.status).toBe(504);
    expect(slow.headers["x-dialtone-error"]).toBe("ERR_DIALTONE_REQUEST_TIMEOUT");
    const slowHeader = await post("/nats/prices/request/slow.never", "x", { "x-dialtone-timeout": "150ms" });
    expect(slowHeader.status).toBe(504);
    const bad = await post("/nats/prices/request/a..b", "x");
    expect(bad.status).toBe(400);
    const big = await post("/nats/prices/publish/orders.created", Buffer.alloc(2048, 1));
    expect(big.status).toBe(413);
    // The bridge is still fine afterwards.
    expect((await post("/nats/prices/request/price.quote", "again")).body).toBe("quote:again");
  });

  it("a client that goes away mid-request frees its slot at once, not at the request's timeout", async () => {
    const b = await startBroker(`
listen: ["http://127.0.0.1:0"]
admin: "http://127.0.0.1:0"
upstreams:
  prices: { kind: nats, target: "nats://${cluster.nodes.map((n) => n.key).join(",")}", members: 1, warm: true }
`);
    const inFlight = async (): Promise<number> =>
      ((await (await fetch(`${b.admin}/stats`)).json()) as { upstreams: { prices: { in_flight: number } } }).upstreams.prices.in_flight;
    const session = http2.connect(b.listen[0]!);
    session.on("error", () => {});
    try {
      // Nobody answers slow.never; the request would wait its whole 30 s.
      const st = session.request({ ":method": "POST", ":path": "/nats/prices/request/slow.never", "x-dialtone-timeout": "30s" });
      st.on("error", () => {});
      st.end("x");
      expect(await eventually(async () => (await inFlight()) === 1, 10_000)).toBe(true);
      st.close(http2.constants.NGHTTP2_CANCEL);
      expect(await eventually(async () => (await inFlight()) === 0, 5_000)).toBe(true);
      const stats = (await (await fetch(`${b.admin}/stats`)).json()) as { upstreams: { prices: { is_connected: boolean } } };
      expect(stats.upstreams.prices.is_connected).toBe(true);
    } finally {
      session.destroy();
    }
  });
});

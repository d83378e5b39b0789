import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConnectError, createNatsChannel, type ChannelEvent, type NatsChannel, type NatsChannelOptions } from "../../src/index.js";
import { makeCa, makeLeaf, type TestCa, type TestLeaf } from "../helpers/nats-pki.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import type { AddressInfo, Socket } from "node:net";

// Real nats-servers with TLS, certificates made here. The member dials 127.0.0.5;
// the certificate names nats.test (and the IP, for the IP-literal case).
const HOST = "127.0.0.5";
let ca: TestCa;
let otherCa: TestCa;
let leaf: TestLeaf;
let tlsServer: NatsServer;
const servers: NatsServer[] = [];
const channels: NatsChannel[] = [];

beforeAll(async () => {
  ca = makeCa("dialtone nats test CA");
  otherCa = makeCa("some other CA");
  leaf = makeLeaf(ca, ["nats.test", HOST]);
  tlsServer = await startNatsServer({
    host: HOST,
    files: { "cert.pem": leaf.cert, "key.pem": leaf.key },
    config: (d) => `tls { cert_file: "${d}/cert.pem", key_file: "${d}/key.pem", timeout: 2 }\n`,
  });
}, 20_000);
afterAll(async () => {
  await tlsServer.stop();
});
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

function open(opts: NatsChannelOptions): NatsChannel {
  const ch = createNatsChannel({ members: 1, ...opts });
  channels.push(ch);
  return ch;
}

/** The first dial failure of a channel that cannot connect (bounded wait). */
async function firstFailure(opts: NatsChannelOptions): Promise<Error> {
  const ch = open(opts);
  const failed = await ch.waitFor((e): e is Extract<ChannelEvent, { type: "connect-failed" }> => e.type === "connect-failed", AbortSignal.timeout(8000));
  expect(ch.stats().ready).toBe(0);
  return failed.error;
}

async function roundTrip(ch: NatsChannel): Promise<void> {
  const sub = await ch.subscribe("tls.echo");
  await ch.publish("tls.echo", "hello");
  for await (const m of sub) {
    expect(m.string()).toBe("hello");
    break;
  }
  sub.unsubscribe();
}

describe("NATS TLS by name while dialing IPs, against nats-server with TLS", () => {
  it("tls://nats.test with static:///127.0.0.5 and the right CA: SNI and the certificate check use nats.test", async () => {
    const ch = open({ target: `tls://nats.test:${tlsServer.port}`, discovery: `static:///${tlsServer.key}`, tls: { ca: ca.cert } });
    await ch.ready(AbortSignal.timeout(10_000));
    expect(ch.stats().members[0]?.address).toBe(tlsServer.key);
    await roundTrip(ch);
  });

  it('an IP-literal target verifies against the IP (an IP SAN), not against "localhost"', async () => {
    const ch = open({ target: `tls://${tlsServer.key}`, tls: { ca: ca.cert } });
    await ch.ready(AbortSignal.timeout(10_000));
    await roundTrip(ch);
  });

  it("the wrong CA fails the dial with a ConnectError naming the certificate problem", async () => {
    const err = await firstFailure({ target: `tls://nats.test:${tlsServer.port}`, discovery: `static:///${tlsServer.key}`, tls: { ca: otherCa.cert } });
    expect(err).toBeInstanceOf(ConnectError);
    expect(err.message).toMatch(/certificate|self.signed|verify/i);
    expect(err.message).toContain(tlsServer.key);
  });

  it("the wrong name fails: the certificate does not name wrong.test", async () => {
    const err = await firstFailure({ target: `tls://wrong.test:${tlsServer.port}`, discovery: `static:///${tlsServer.key}`, tls: { ca: ca.cert } });
    expect(err).toBeInstanceOf(ConnectError);
    expect(err.message).toMatch(/wrong\.test.*altnames|altnames.*wrong\.test/i);
  });

  it("tls.servername overrides the name checked", async () => {
    const ch = open({ target: `tls://${tlsServer.key}`, tls: { ca: ca.cert, servername: "nats.test" } });
    await ch.ready(AbortSignal.timeout(10_000));
    await roundTrip(ch);
  });

  it("tls:// against a plaintext server is an error, not a silent plaintext connection", async () => {
    const plain = await startNatsServer({ host: HOST, config: () => "" });
    servers.push(plain);
    const err = await firstFailure({ target: `tls://${plain.key}`, tls: { ca: ca.cert } });
    expect(err).toBeInstanceOf(ConnectError);
    expect(err.message).toMatch(/tls/i);
  });

  it("mTLS: a server that verifies client certificates takes the client's cert/key, and refuses a client without one", async () => {
    const client = makeLeaf(ca, ["dialtone-client"]);
    const mtls = await startNatsServer({
      host: HOST,
      files: { "cert.pem": leaf.cert, "key.pem": leaf.key, "ca.pem": ca.cert },
      config: (d) => `tls { cert_file: "${d}/cert.pem", key_file: "${d}/key.pem", ca_file: "${d}/ca.pem", verify: true, timeout: 2 }\n`,
    });
    servers.push(mtls);
    const ok = open({ target: `tls://nats.test:${mtls.port}`, discovery: `static:///${mtls.key}`, tls: { ca: ca.cert, cert: client.cert, key: client.key } });
    await ok.ready(AbortSignal.timeout(10_000));
    await roundTrip(ok);
    const err = await firstFailure({ target: `tls://nats.test:${mtls.port}`, discovery: `static:///${mtls.key}`, tls: { ca: ca.cert } });
    expect(err).toBeInstanceOf(ConnectError);
  });

  // Debian's nats-server 2.9 has no handshake_first (it came in 2.10), so this peer is a mock: a TLS
  // server that speaks just enough NATS (INFO, then PONG to every PING) only after the TLS handshake.
  it("mock peer (no handshake_first in nats-server 2.9): tlsFirst: true handshakes before INFO; without it the dial fails", async () => {
    const mock = await startTlsFirstMock(HOST, leaf);
    try {
      const ch = open({
        target: `tls://nats.test:${mock.port}`,
        discovery: `static:///${HOST}:${mock.port}`,
        tls: { ca: ca.cert },
        tlsFirst: true,
        connectTimeout: 2000,
      });
      await ch.ready(AbortSignal.timeout(10_000));
      expect(mock.handshakes()).toBeGreaterThan(0);
      const err = await firstFailure({
        target: `tls://nats.test:${mock.port}`,
        discovery: `static:///${HOST}:${mock.port}`,
        tls: { ca: ca.cert },
        connectTimeout: 1000,
      });
      expect(err).toBeInstanceOf(ConnectError);
    } finally {
      // The channels redial the mock until they close: close them first, then the mock.
      await Promise.all(channels.splice(0).map((c) => c.close()));
      await mock.close();
    }
  });
});

/** A TLS server that sends NATS INFO only once the TLS handshake is done, and answers PING with PONG. */
async function startTlsFirstMock(host: string, cert: TestLeaf): Promise<{ port: number; handshakes(): number; close(): Promise<void> }> {
  let handshakes = 0;
  const sockets = new Set<Socket>();
  const server = createTlsServer({ cert: cert.cert, key: cert.key }, (socket: TLSSocket) => {
    handshakes++;
    socket.on("error", () => {});
    socket.write(`INFO {"server_id":"mock","version":"2.10.0","proto":1,"max_payload":1048576,"headers":true,"tls_required":true}\r\n`);
    let buf = "";
    socket.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      let i: number;
      while ((i = buf.indexOf("\r\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (line === "PING") socket.write("PONG\r\n");
      }
    });
  });
  // Every TCP connection, handshaken or not (a plaintext client never finishes one), so close() can end it.
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    handshakes: () => handshakes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser } from "@nats-io/nkeys";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import {
  NatsAuthError,
  NotReadyError,
  RequestError,
  createNatsChannel,
  type ChannelEvent,
  type NatsChannel,
  type NatsChannelOptions,
} from "../../src/index.js";
import { eventually, recordEvents } from "../helpers/channel.js";
import { startNatsCluster, type NatsCluster } from "../helpers/nats-cluster.js";
import { startNatsServer, type NatsServer } from "../helpers/nats-server.js";
import { sample } from "../helpers/prom.js";

/** The password carries "@" so the target must percent-encode it: the channel must decode it to get in. */
const SECRET = "s3cr3t@pw";
const ENCODED = encodeURIComponent(SECRET);
const USER = "app";

let cluster: NatsCluster | undefined;
const channels: NatsChannel[] = [];
const servers: NatsServer[] = [];
afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close()));
  await cluster?.stop();
  cluster = undefined;
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function server(config: (dir: string) => string, files?: Record<string, string>): Promise<NatsServer> {
  const s = await startNatsServer({ host: "127.0.0.6", config, ...(files ? { files } : {}) });
  servers.push(s);
  return s;
}

/** A message round trip through the channel: proof the member is in and authorized. */
async function roundTrip(ch: NatsChannel, subject = "auth.echo"): Promise<void> {
  const sub = await ch.subscribe(subject);
  await ch.publish(subject, "hi");
  for await (const m of sub) {
    expect(m.string()).toBe("hi");
    break;
  }
  sub.unsubscribe();
}

const connectFailed = (e: ChannelEvent): e is Extract<ChannelEvent, { type: "connect-failed" }> => e.type === "connect-failed";

function open(opts: NatsChannelOptions): NatsChannel {
  const ch = createNatsChannel(opts);
  channels.push(ch);
  return ch;
}

/** Everything an operator could see about a channel, as one string to search for the secret. */
function visible(ch: NatsChannel, events: ChannelEvent[], extra: string[] = []): string {
  const errText = (e: unknown): string => (e instanceof Error ? `${e.message} ${String(e.stack)} ${errText(e.cause)}` : "");
  const parts = [ch.target, ch.name, JSON.stringify(ch.stats()), ...extra];
  for (const e of events) {
    parts.push(JSON.stringify(e));
    for (const v of Object.values(e)) parts.push(errText(v));
  }
  return parts.join("\n");
}

function expectNoSecret(text: string): void {
  expect(text).not.toContain("s3cr3t");
  expect(text).not.toContain(ENCODED);
  expect(text).not.toContain(`${USER}:`);
}

describe("NATS credentials in the target, against a real nats-server with authorization", () => {
  it("nats://user:pass@… connects, works, and shows no credentials in target, name, stats, events or metric labels", async () => {
    cluster = await startNatsCluster({ user: USER, pass: SECRET });
    const [a, b, c] = cluster.nodes as [NatsCluster["nodes"][0], NatsCluster["nodes"][0], NatsCluster["nodes"][0]];
    const target = `nats://${USER}:${ENCODED}@${a.key},${USER}:${ENCODED}@${b.key},${c.key}`;
    const ch = open({ target, members: 3, ignoreDiscoveredServers: true });
    const rec = recordEvents(ch);
    const registry = new Registry();
    ch.metrics(registry);
    await ch.ready(AbortSignal.timeout(10_000));
    expect(ch.target).toBe(`nats://${a.key},${b.key},${c.key}`);
    expect(new Set(ch.stats().members.map((m) => m.address))).toEqual(new Set([a.key, b.key, c.key]));

    // It works: a subscription on one member gets what is published through the others.
    const sub = await ch.subscribe("auth.test");
    const got: string[] = [];
    const reader = (async () => {
      for await (const m of sub) {
        got.push(m.string());
        if (got.length === 10) return;
      }
    })();
    for (let i = 0; i < 10; i++) await ch.publish("auth.test", String(i));
    await ch.flush();
    await eventually(() => got.length === 10, 5000, "10 messages through the authenticated channel");
    sub.unsubscribe();
    await reader;

    const metrics = await registry.metrics();
    expect(metrics).toContain(`channel="nats://${a.key},${b.key},${c.key}"`);
    expect(rec.events.some((e) => e.type === "connect-ok")).toBe(true);
    expectNoSecret(visible(ch, rec.events, [metrics]));
  });

  it("the same credentials given in auth instead of the URL connect the same way", async () => {
    cluster = await startNatsCluster({ user: USER, pass: SECRET, hosts: ["127.0.0.2"] });
    const key = cluster.nodes[0]!.key;
    const ch = open({ target: `nats://${key}`, members: 1, auth: { user: USER, pass: SECRET } });
    await ch.ready(AbortSignal.timeout(10_000));
    expect(ch.connected).toBe(true);
  });

  it("with the wrong password it never connects, and no error, event or stat contains the password", async () => {
    cluster = await startNatsCluster({ user: USER, pass: SECRET, hosts: ["127.0.0.2"] });
    const key = cluster.nodes[0]!.key;
    const wrong = "wr0ng@s3cr3t";
    const ch = open({ target: `nats://${USER}:${encodeURIComponent(wrong)}@${key}`, members: 1, readyTimeout: 1500, acquireTimeout: 200 });
    const rec = recordEvents(ch);
    const readyErr = await ch.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(readyErr).toBeInstanceOf(NotReadyError);
    const failed = rec.events.filter((e) => e.type === "connect-failed");
    expect(failed.length).toBeGreaterThan(0);
    const first = failed[0] as Extract<ChannelEvent, { type: "connect-failed" }>;
    expect(first.error).toBeInstanceOf(NatsAuthError);
    expect((first.error as NatsAuthError).code).toBe("ERR_DIALTONE_AUTH");
    // The server said why, and only that.
    expect((first.error as NatsAuthError).reason).toMatch(/authori[sz]ation violation/i);
    const publishErr = await ch.publish("x", "y").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(publishErr).toBeInstanceOf(Error);
    const text = visible(ch, rec.events, [String((readyErr as Error).message), String((readyErr as Error).stack), String((publishErr as Error).message)]);
    expect(text).not.toContain("wr0ng");
    expect(text).not.toContain(encodeURIComponent(wrong));
    expectNoSecret(text);
  });
});

describe("NATS auth methods against nats-server configured for each", () => {
  it("nkey: a seed from @nats-io/nkeys signs the server's nonce; another seed is refused with NatsAuthError, never echoed", async () => {
    const user = createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const s = await server(() => `authorization { users: [ { nkey: "${user.getPublicKey()}" } ] }\n`);
    const ok = open({ target: `nats://${s.key}`, members: 1, auth: { nkeySeed: seed } });
    await ok.ready(AbortSignal.timeout(10_000));
    await roundTrip(ok);

    const stranger = new TextDecoder().decode(createUser().getSeed());
    const bad = open({ target: `nats://${s.key}`, members: 1, auth: { nkeySeed: stranger } });
    const rec = recordEvents(bad);
    const failed = await bad.waitFor(connectFailed, AbortSignal.timeout(8000));
    expect(failed.error).toBeInstanceOf(NatsAuthError);
    expect((failed.error as NatsAuthError).reason).toMatch(/authorization violation/i);
    const text = visible(bad, rec.events);
    expect(text).not.toContain(stranger);
    expect(text).not.toContain(stranger.slice(4, 20));
  });

  it("JWT: a .creds file minted with @nats-io/jwt against a server in operator mode", async () => {
    const op = createOperator();
    const acct = createAccount();
    const usr = createUser();
    const opJwt = await encodeOperator("dialtone-op", op);
    // Unlimited: an account JWT's limits default to 0 connections.
    const unlimited = { conn: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, leaf: -1 };
    const acctJwt = await encodeAccount("APP", acct, { limits: unlimited }, { signer: op });
    const userJwt = await encodeUser("app", usr, acct);
    const creds = new TextDecoder().decode(fmtCreds(userJwt, usr));
    const s = await server(() => `operator: ${opJwt}\nresolver: MEMORY\nresolver_preload: { ${acct.getPublicKey()}: ${acctJwt} }\n`);
    const credsFile = join(s.dir, "app.creds");
    writeFileSync(credsFile, creds);
    const ch = open({ target: `nats://${s.key}`, members: 2, auth: { credsFile } });
    await ch.ready(AbortSignal.timeout(10_000));
    await roundTrip(ch);

    // A user JWT signed by an account the server does not know is refused, typed.
    const otherAcct = createAccount();
    const otherUsr = createUser();
    writeFileSync(join(s.dir, "other.creds"), fmtCreds(await encodeUser("x", otherUsr, otherAcct), otherUsr));
    const bad = open({ target: `nats://${s.key}`, members: 1, auth: { credsFile: join(s.dir, "other.creds") } });
    const failed = await bad.waitFor(connectFailed, AbortSignal.timeout(8000));
    expect(failed.error).toBeInstanceOf(NatsAuthError);
  });

  it("authenticator is called on every connect: credentials rotated on the server and in the callback, members come back with the new ones", async () => {
    const users = (u: string, p: string): string => `authorization { users: [ { user: "${u}", password: "${p}" } ] }\n`;
    const s = await server(() => users("app1", "pw-one"));
    let current = { user: "app1", pass: "pw-one" };
    let calls = 0;
    const ch = open({
      target: `nats://${s.key}`,
      members: 2,
      backoff: { initial: 50, max: 200 },
      authenticator: () => {
        calls++;
        return current;
      },
    });
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));
    expect(calls).toBeGreaterThanOrEqual(2);
    await roundTrip(ch);

    // Rotate: the server now takes only app2 (it drops connections authorized as app1), and so does the callback.
    current = { user: "app2", pass: "pw-two" };
    const before = calls;
    s.reload(() => users("app2", "pw-two"));
    await eventually(() => rec.events.some((e) => e.type === "member-removed"), 8000, "the server to drop the old-credential members");
    await eventually(() => ch.stats().ready === 2, 10_000, "both members back with the new credentials");
    expect(calls).toBeGreaterThan(before);
    await roundTrip(ch);
    expectNoSecret(visible(ch, rec.events));
    expect(visible(ch, rec.events)).not.toContain("pw-two");
  });
});

describe("NATS server errors are events and metrics", () => {
  it("a permission violation on publish and on subscribe: server-error events with operation and subject, counted; the refused subscription ends with the reason", async () => {
    const perms = `permissions: { publish: { deny: ["secret.>"] }, subscribe: { deny: ["secret.>"] } }`;
    const s = await server(() => `authorization { users: [ { user: "app", password: "pw", ${perms} } ] }\n`);
    const ch = open({ target: `nats://${s.key}`, members: 1, auth: { user: "app", pass: "pw" } });
    const registry = new Registry();
    ch.metrics(registry);
    const rec = recordEvents(ch);
    await ch.ready(AbortSignal.timeout(10_000));

    await ch.publish("secret.launch", "x");
    await ch.flush();
    // The -ERR comes before the flush's PONG, so it is in the record by now (or very soon).
    await eventually(() => rec.events.some((e) => e.type === "server-error" && e.operation === "publish"), 5000, "the publish permission error");
    const pub = rec.events.find((e) => e.type === "server-error" && e.operation === "publish") as Extract<ChannelEvent, { type: "server-error" }>;
    expect(pub).toMatchObject({ kind: "permission", subject: "secret.launch", address: s.key });
    expect(pub.message).toMatch(/permissions violation/i);

    const sub = await ch.subscribe("secret.plans");
    const ended = await (async () => {
      try {
        for await (const _ of sub) return "message";
        return "ended";
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
    })();
    expect(ended).toMatch(/permissions violation.*secret\.plans/i);
    expect(sub.closed).toBe(true);
    expect(rec.events.some((e) => e.type === "server-error" && e.operation === "subscription" && e.subject === "secret.plans")).toBe(true);

    // The member stays: a permission error is about one subject, not the connection.
    expect(ch.stats().ready).toBe(1);
    await roundTrip(ch, "open.echo");
    const text = await registry.metrics();
    expect(sample(text, "dialtone_server_errors_total", { kind: "permission" })).toBe(2);
  });

  it("a request on a subject the server refuses to take a publish on fails at once with the server's reason, not at its timeout", async () => {
    const s = await server(() => `authorization { users: [ { user: "app", password: "pw", permissions: { publish: { deny: ["secret.>"] } } } ] }\n`);
    const ch = open({ target: `nats://${s.key}`, members: 1, auth: { user: "app", pass: "pw" } });
    await ch.ready(AbortSignal.timeout(10_000));
    const err = await ch.request("secret.ask", "?", { timeout: 5000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RequestError);
    expect((err as RequestError).code).toBe("ERR_DIALTONE_NATS");
    // The server's reason, not RequestTimeoutError: it did not wait out its timeout.
    expect((err as Error).message).toMatch(/permissions violation/i);
    // The member stays and serves other subjects.
    expect(ch.stats().ready).toBe(1);
    await roundTrip(ch, "open.echo");
  });
});

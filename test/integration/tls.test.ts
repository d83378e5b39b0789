import { describe, expect, it } from "vitest";
import { NoMemberError } from "../../src/index.js";
import { startBackends } from "../helpers/backends.js";
import { channelFixture, staticDiscovery } from "../helpers/setup.js";
import { makeTestPki } from "../helpers/tls.js";

const { open } = channelFixture();

describe("TLS with a CA made at test time", () => {
  const pki = makeTestPki(["dialtone.test"]);

  it("verifies the backend against the target's host name while dialing the resolved IP", async () => {
    const backends = await startBackends(["127.0.0.2", "127.0.0.3"], { tls: { cert: pki.cert, key: pki.key } });
    const ch = open({
      target: `https://dialtone.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 2,
      tls: { ca: pki.ca },
    });
    await ch.ready(AbortSignal.timeout(10_000));
    const r = await ch.request({ path: "/", method: "POST", body: "hello over tls" });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe("hello over tls");
    // The socket went to an IP; :authority carries the target's host name.
    expect(r.headers["x-authority"]).toBe(`dialtone.test:${backends[0]!.port}`);
  });

  it("refuses a backend whose certificate does not name the target host", async () => {
    const backends = await startBackends(["127.0.0.2"], { tls: { cert: pki.cert, key: pki.key } });
    const ch = open({
      target: `https://wrong.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 1,
      tls: { ca: pki.ca },
      acquireTimeout: 500,
    });
    const err = await ch.request({ path: "/" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NoMemberError);
    expect((err as NoMemberError).message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID|altnames/);
    expect((err as NoMemberError).message).toContain("wrong.test");
    expect(ch.stats().members.filter((m) => m.state === "ready")).toEqual([]);
  });

  it("refuses a backend signed by a CA it was not given", async () => {
    const backends = await startBackends(["127.0.0.2"], { tls: { cert: pki.cert, key: pki.key } });
    const ch = open({
      target: `https://dialtone.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 1,
      acquireTimeout: 500,
    });
    const err = await ch.request({ path: "/" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NoMemberError);
    expect((err as NoMemberError).message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify|self.signed/i);
  });

  it("mTLS: presents the client certificate when given cert/key; a backend requiring one refuses a client without it", async () => {
    const backends = await startBackends(["127.0.0.2"], { tls: { cert: pki.cert, key: pki.key, clientCa: pki.ca } });
    const withCert = open({
      target: `https://dialtone.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 1,
      tls: { ca: pki.ca, cert: pki.cert, key: pki.key },
    });
    await withCert.ready(AbortSignal.timeout(10_000));
    expect((await withCert.request({ path: "/" })).status).toBe(200);

    const without = open({
      target: `https://dialtone.test:${backends[0]!.port}`,
      discovery: staticDiscovery(backends),
      members: 1,
      tls: { ca: pki.ca },
      acquireTimeout: 700,
    });
    const err = await without.request({ path: "/" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NoMemberError);
    expect(without.stats().ready).toBe(0);
  });
});

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseHosts, readHosts } from "../../src/resolve/hosts-file.js";
import { RESOLV_DEFAULTS, parseResolvConf, readResolvConf } from "../../src/resolve/resolv-conf.js";

describe("resolv.conf parsing", () => {
  it("reads nameservers, search, ndots, timeout, attempts and rotate", () => {
    const c = parseResolvConf(
      [
        "# comment",
        "nameserver 127.0.0.53",
        "nameserver ::1",
        "nameserver not-an-ip",
        "search corp.test. dev.test",
        "options ndots:3 timeout:2 attempts:4 rotate edns0",
      ].join("\n"),
    );
    expect(c).toEqual({ nameservers: ["127.0.0.53:53", "[::1]:53"], search: ["corp.test", "dev.test"], ndots: 3, timeout: 2000, attempts: 4, rotate: true });
  });

  it("falls back to the C library's defaults, and clamps silly values", () => {
    expect(parseResolvConf("")).toEqual({ ...RESOLV_DEFAULTS, nameservers: ["127.0.0.1:53"] });
    const c = parseResolvConf("options ndots:99 timeout:500 attempts:50");
    expect([c.ndots, c.timeout, c.attempts]).toEqual([15, 30_000, 5]);
    expect(readResolvConf("/nonexistent/resolv.conf").nameservers).toEqual(["127.0.0.1:53"]);
  });

  it("the last search/domain line wins", () => {
    expect(parseResolvConf("search a.test\ndomain b.test").search).toEqual(["b.test"]);
  });
});

describe("hosts file parsing", () => {
  it("maps every alias to its addresses, case-insensitively, skipping junk", () => {
    const t = parseHosts(["127.0.0.2 API.test api-alias", "127.0.0.3 api.test # second", "garbage line", "::1 api.test", "300.1.1.1 bad.test"].join("\n"));
    expect(t.get("api.test")).toEqual(["127.0.0.2", "127.0.0.3", "::1"]);
    expect(t.get("api-alias")).toEqual(["127.0.0.2"]);
    expect(t.has("bad.test")).toBe(false);
  });

  it("reads a file, and a missing one is empty", () => {
    const dir = mkdtempSync(join(tmpdir(), "dialtone-hosts-"));
    writeFileSync(join(dir, "hosts"), "127.0.0.9 file.test\n");
    expect(readHosts(join(dir, "hosts")).get("file.test")).toEqual(["127.0.0.9"]);
    expect(readHosts(join(dir, "missing")).size).toBe(0);
  });
});

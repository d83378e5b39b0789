import { mkdtempSync, rmSync, statSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import { startBackends, stopAllBackends } from "../helpers/backends.js";
import { eventually, startBroker, stopAllBrokers } from "../helpers/broker.js";

/**
 * The admin diagnostics page in a real browser: Debian's Chromium, headless,
 * driven by playwright-core (no browser download). The flags are the ones
 * this machine needs: no sandbox as root, and no background networking (the
 * closed network refuses Chromium's own connections).
 */

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let profile: string | undefined;
let browser: BrowserContext | undefined;
afterEach(async () => {
  await browser?.close();
  browser = undefined;
  if (profile) rmSync(profile, { recursive: true, force: true });
  await stopAllBrokers();
  await stopAllBackends();
});

async function launch(): Promise<BrowserContext> {
  // A fresh, empty profile each run, as --user-data-dir (playwright takes it as the persistent context's directory).
  profile = mkdtempSync(join(tmpdir(), "dialtone-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    timeout: 20_000,
  });
  return browser;
}

describe("broker diagnostics page in headless Chromium", () => {
  it("renders every upstream and member, updates live when a backend is killed, and is saved as a screenshot", async () => {
    const api = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const catalog = await startBackends(["127.0.0.4"]);
    const b = await startBroker(`
listen: ["http://127.0.0.1:0"]
admin: "http://127.0.0.1:0"
upstreams:
  api: { target: "http://api.internal:${api[0]!.port}", discovery: "static:///${api.map((x) => x.key).join(",")}", members: 2, hosts: ["api.internal"], warm: true }
  catalog: { target: "http://catalog.internal:${catalog[0]!.port}", discovery: "static:///${catalog[0]!.key}", members: 1, hosts: ["catalog.internal"], warm: true }
  prices: { kind: nats, target: "nats://app:s3cretpw@127.0.0.9:1", members: 1 }
`);
    const ctx = await launch();
    const page = await ctx.newPage();
    await page.goto(`${b.admin}/`, { waitUntil: "load", timeout: 10_000 });
    expect(await page.title()).toBe("dialtone broker");
    // Every upstream has its section; every warm member its row, in state ready (waiting for the live refresh if needed).
    for (const name of ["api", "catalog", "prices"]) await page.locator(`section[data-upstream="${name}"]`).waitFor({ timeout: 5_000 });
    for (const x of [...api, ...catalog]) {
      await page.locator(`tr[data-member="${x.key}"] td.ready`).first().waitFor({ timeout: 5_000 });
    }
    // The script took over: the page says it is live, and the RTT sparklines appear after a second PING.
    // Functions run in the page are given as source text: this project compiles without the DOM's types.
    await page.waitForFunction(`document.getElementById("live")?.textContent?.startsWith("live ·") === true`, undefined, { timeout: 5_000 });
    await page.locator('section[data-upstream="api"] svg.spark').first().waitFor({ timeout: 5_000 });
    const text = await page.locator("body").innerText();
    expect(text).not.toContain("s3cretpw");
    expect(text).toContain("nats://***@127.0.0.9:1");

    // Kill one api backend: the open page (no reload) shows it leaving ready, and the event log says why.
    await api[1]!.kill();
    const gone = page.locator(`section[data-upstream="api"] tr[data-member="${api[1]!.key}"] td.ready`);
    await page.waitForFunction(
      `(() => {
        const section = document.querySelector('section[data-upstream="api"]');
        const row = section?.querySelector('tr[data-member="${api[1]!.key}"]');
        const rowLeftReady = !row || !row.querySelector("td.ready");
        return rowLeftReady && /evicted|peer-closed|connect-failed|unhealthy|ECONNREFUSED/.test(section?.querySelector("pre.events")?.textContent ?? "");
      })()`,
      undefined,
      { timeout: 10_000 },
    );
    expect(await gone.count()).toBe(0);
    // The survivor still serves (and the lost slot may already have stacked on it: members go to live addresses).
    expect(await page.locator(`section[data-upstream="api"] tr[data-member="${api[0]!.key}"] td.ready`).count()).toBeGreaterThanOrEqual(1);

    const shot = join(tmpdir(), `dialtone-broker-diagnostics-${process.pid}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    console.log(`broker diagnostics page screenshot: ${shot}`);
  });

  it("is readable without JavaScript: the server-rendered page shows every upstream and member", async () => {
    const api = await startBackends(["127.0.0.2", "127.0.0.3"]);
    const b = await startBroker(`
listen: ["http://127.0.0.1:0"]
admin: "http://127.0.0.1:0"
upstreams:
  api: { target: "http://api.internal:${api[0]!.port}", discovery: "static:///${api.map((x) => x.key).join(",")}", members: 2, hosts: ["api.internal"], warm: true }
`);
    const ctx = await launch();
    // Let the warm members come up before the one and only render.
    await new Promise((r) => setTimeout(r, 1_500));
    const noJs = await ctx.newPage();
    // Chromium's own switch for "JavaScript off", set through the DevTools protocol for this page only.
    const cdp = await ctx.newCDPSession(noJs);
    await cdp.send("Emulation.setScriptExecutionDisabled", { value: true });
    await noJs.goto(`${b.admin}/`, { waitUntil: "load", timeout: 10_000 });
    // The script never ran (it would have said "live"), yet every member is there with its state.
    expect(await noJs.locator("#live").innerText()).toBe("static");
    for (const x of api) expect(await noJs.locator(`tr[data-member="${x.key}"] td.ready`).count()).toBe(1);
  });

  it("cross-site: a page from another origin cannot publish through the NATS bridge or read the admin endpoints; a listed origin can; the page's own fetches keep working", async () => {
    // Two "sites" on loopback, each a different origin from the broker's: one listed in allowOrigins, one not.
    const site = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<!doctype html><title>site</title>");
    });
    await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
    const sitePort = (site.address() as AddressInfo).port;
    const listed = `http://127.0.0.1:${sitePort}`;
    const unlisted = `http://localhost:${sitePort}`;
    try {
      const b = await startBroker(`
listen: ["http://127.0.0.1:0"]
admin: "http://127.0.0.1:0"
allowOrigins: ["${listed}"]
upstreams:
  # Nothing listens there: a publish the Origin check lets through fails later (503), and is counted under bus.
  bus: { kind: nats, target: "nats://127.0.0.1:9", members: 1, acquireTimeout: 300ms }
`);
      const ingress = b.listen[0]!;
      const counted = async (upstream: string, status: string): Promise<number> => {
        const m = new RegExp(`dialtone_broker_requests_total\\{upstream="${upstream}",status="${status}"\\} (\\d+)`).exec(
          await (await fetch(`${b.admin}/metrics`)).text(),
        );
        return m ? Number(m[1]) : 0;
      };
      const ctx = await launch();
      // The page's own refresh: same-origin GETs, no Origin header, so allowOrigins (which lists no admin origin) never blocks it.
      const admin = await ctx.newPage();
      await admin.goto(`${b.admin}/`, { waitUntil: "load", timeout: 10_000 });
      await admin.waitForFunction(`document.getElementById("live")?.textContent?.startsWith("live ·") === true`, undefined, { timeout: 5_000 });

      const page = await ctx.newPage();
      await page.goto(`${unlisted}/`, { waitUntil: "load", timeout: 10_000 });
      // A "simple" cross-site POST (no preflight): the browser sends it; the broker must refuse it before any NATS work.
      await page.evaluate(`fetch(${JSON.stringify(`${ingress}/nats/bus/publish/orders`)}, { method: "POST", mode: "no-cors", body: "x" }).catch(() => {})`);
      await page.evaluate(`fetch(${JSON.stringify(`${b.admin}/stats`)}).catch(() => {})`);
      expect(await eventually(async () => (await counted("none", "403")) === 1, 5_000)).toBe(true);
      const stats = (await (await fetch(`${b.admin}/stats`)).json()) as { upstreams: Record<string, { open: boolean }> };
      expect(stats.upstreams.bus!.open).toBe(false);

      const ok = await ctx.newPage();
      await ok.goto(`${listed}/`, { waitUntil: "load", timeout: 10_000 });
      await ok.evaluate(`fetch(${JSON.stringify(`${ingress}/nats/bus/publish/orders`)}, { method: "POST", mode: "no-cors", body: "x" }).catch(() => {})`);
      expect(await eventually(async () => (await counted("bus", "503")) === 1, 5_000)).toBe(true);
      expect(await counted("none", "403")).toBe(1);
    } finally {
      // Chromium keeps its connections to the site alive: close them, or close() waits for them.
      site.closeAllConnections();
      await new Promise((r) => site.close(r));
    }
  });
});

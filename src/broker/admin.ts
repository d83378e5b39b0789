import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import { bind, removeSocket } from "./bind.js";
import { renderFragment, renderPage } from "./diagnostics-page.js";
import { sendFailure } from "./error-response.js";
import type { ListenAddress } from "./listen-address.js";
import { originRefused } from "./strict-request.js";
import type { Upstreams } from "./upstreams.js";

/**
 * The admin listener (loopback by default): /metrics, /stats, /healthz,
 * /readyz and the diagnostics page. Separate from the ingress so that a
 * flood of proxied traffic, or a client reaching the ingress, never reaches
 * these.
 */
export class AdminServer {
  readonly #server: http.Server;
  readonly #upstreams: () => Upstreams;
  readonly #registry: Registry;
  readonly #meta: { version: string; startedAt: string };
  #unixPath: string | undefined;

  readonly #allowOrigins: ReadonlySet<string>;

  constructor(upstreams: () => Upstreams, registry: Registry, meta: { version: string; startedAt: string }, allowOrigins: ReadonlySet<string> = new Set()) {
    this.#allowOrigins = allowOrigins;
    this.#upstreams = upstreams;
    this.#registry = registry;
    this.#meta = meta;
    this.#server = http.createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", "internal error\n");
        else res.destroy();
      });
    });
    this.#server.maxConnections = 64;
  }

  /** Binds the admin listener with the same care as the ingress's (stale unix sockets only, mode 0660); errors name `admin`. */
  async listen(addr: ListenAddress): Promise<string> {
    const shown = await bind(this.#server, addr, "admin");
    if (addr.kind === "unix") this.#unixPath = addr.path;
    return shown;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    // A web page's cross-site requests (its Origin not listed) never reach the stats or the page; the page's own GETs carry none.
    const crossSite = originRefused(req.headers, this.#allowOrigins);
    if (crossSite !== undefined) {
      sendFailure(res, crossSite);
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      send(res, 405, "text/plain; charset=utf-8", "admin endpoints take GET\n");
      return;
    }
    const upstreams = this.#upstreams();
    switch (path) {
      case "/healthz":
        send(res, 200, "text/plain; charset=utf-8", "ok\n");
        return;
      case "/readyz": {
        const missing = upstreams.notReady();
        if (missing.length === 0) send(res, 200, "text/plain; charset=utf-8", "ready\n");
        else send(res, 503, "text/plain; charset=utf-8", `not ready: warm upstream(s) without a usable member: ${missing.join(", ")}\n`);
        return;
      }
      case "/metrics":
        send(res, 200, this.#registry.contentType, await this.#registry.metrics());
        return;
      case "/stats": {
        const snap = upstreams.snapshot();
        const body = {
          broker: { ...this.#meta, in_flight: upstreams.inFlight },
          upstreams: Object.fromEntries(snap.map(({ events: _e, rtt: _r, ...u }) => [u.name, u])),
        };
        send(res, 200, "application/json", `${JSON.stringify(body, null, 2)}\n`);
        return;
      }
      case "/":
        send(res, 200, "text/html; charset=utf-8", renderPage(upstreams.snapshot(), this.#meta));
        return;
      case "/diagnostics/fragment":
        send(res, 200, "text/html; charset=utf-8", renderFragment(upstreams.snapshot()));
        return;
      default:
        send(res, 404, "text/plain; charset=utf-8", "not found: try /, /stats, /metrics, /healthz, /readyz\n");
    }
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (this.#unixPath !== undefined) removeSocket(this.#unixPath);
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

import { constants, Http2ServerRequest, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { Registry } from "prom-client";
import { AdminServer } from "./admin.js";
import { BrokerMetrics } from "./broker-metrics.js";
import type { BrokerConfig } from "./config.js";
import { sendFailure, sendStreamFailure, type Failure, type IngressResponse } from "./error-response.js";
import { authorityOf, CompatClient, compatCall, forward, StreamClient, streamAuthority, streamCall } from "./forward.js";
import { Ingress, type IngressRequest } from "./ingress.js";
import { isNatsBridgePath, natsBridge } from "./nats-bridge.js";
import { Router } from "./router.js";
import { ambiguousHostH1, ambiguousHostH2, CONNECT_REFUSED, originRefused, upgradeRefused } from "./strict-request.js";
import { Upstreams, validateUpstream } from "./upstreams.js";

/**
 * The sidecar: ingress listeners in front of one channel per upstream, the
 * NATS bridge, idle reaping and the admin listener. Built only on the public
 * channel API.
 */
export class Broker {
  readonly registry = new Registry();
  readonly #metrics = new BrokerMetrics(this.registry);
  #config: BrokerConfig;
  #router: Router;
  #upstreams: Upstreams;
  readonly #ingress: Ingress;
  readonly #admin: AdminServer | undefined;
  readonly #reaper: NodeJS.Timeout | undefined;
  /** Ingress requests being handled; shutdown waits for them (bounded by shutdownGrace). */
  #active = 0;
  #idleWaiters: Array<() => void> = [];
  #closing: Promise<void> | undefined;
  listen: string[] = [];
  admin: string | undefined;

  private constructor(config: BrokerConfig, version: string) {
    this.#config = config;
    this.#router = new Router(config.upstreams);
    this.#upstreams = new Upstreams(config.upstreams, this.registry, config.idle.timeout);
    this.#ingress = new Ingress(
      (req, res) => this.#handle(req, res),
      (stream, headers) => this.#handleStream(stream, headers),
      config.limits,
      this.#metrics,
    );
    this.#admin = config.admin
      ? new AdminServer(() => this.#upstreams, this.registry, { version, startedAt: new Date().toISOString() }, config.allowOrigins)
      : undefined;
    if (config.idle.timeout > 0) {
      // The broker is a process on real sockets, not a channel: its own timers (reaping, shutdown grace,
      // ingress limits) run on the system clock. The channels it opens each have theirs.
      this.#reaper = setInterval(() => this.#upstreams.reapIdle(), config.idle.checkInterval);
      // Reaping is housekeeping: it must never be what keeps the process alive.
      this.#reaper.unref();
    }
  }

  /** Checks every upstream's options without dialing (ConfigError naming the setting). */
  static check(config: BrokerConfig): void {
    for (const u of config.upstreams) validateUpstream(u);
  }

  /** Validates, binds every listener, and warms the `warm` upstreams. */
  static async start(config: BrokerConfig, version = "0.0.0"): Promise<Broker> {
    Broker.check(config);
    const b = new Broker(config, version);
    try {
      for (const [i, addr] of config.listen.entries()) b.listen.push(await b.#ingress.listen(addr, `listen[${i}]`));
      if (b.#admin && config.admin) b.admin = await b.#admin.listen(config.admin);
    } catch (err) {
      await b.close();
      throw err;
    }
    b.#upstreams.warmUp();
    return b;
  }

  /**
   * Applies a new config's upstreams (SIGHUP): new ones are added, removed
   * ones closed, changed ones replaced; unchanged ones keep their warm
   * channel. Listeners, limits and idle settings need a restart.
   */
  async reload(config: BrokerConfig): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    Broker.check(config);
    this.#router = new Router(config.upstreams);
    const result = await this.#upstreams.apply(config.upstreams);
    this.#config = { ...this.#config, upstreams: config.upstreams };
    return result;
  }

  /** For tests and operators: close idle channels now instead of at the next check. */
  reapIdle(): string[] {
    return this.#upstreams.reapIdle();
  }

  #handle(req: IngressRequest, res: IngressResponse): void {
    this.#track(this.#serve(req, res), () => {
      if (!res.headersSent) sendFailure(res, INTERNAL);
      else res.destroy();
    });
  }

  /**
   * An h2c stream, served on Node's core stream API when it is a plain
   * request to forward; the NATS bridge, CONNECT and Expect go to the compat
   * handler (false).
   */
  #handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean {
    const path = headers[":path"];
    if (headers[":method"] === "CONNECT") {
      stream.on("error", noop);
      this.#refuse(CONNECT_REFUSED);
      sendStreamFailure(stream, CONNECT_REFUSED);
      return true;
    }
    if (typeof path !== "string" || isNatsBridgePath(path) || headers.expect !== undefined) return false;
    // The compat layer listens for stream errors; bare, an unheard 'error' (a client's reset) would throw.
    stream.on("error", noop);
    this.#track(this.#serveStream(stream, headers), () => {
      if (!stream.headersSent) sendStreamFailure(stream, INTERNAL);
      else if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    });
    return true;
  }

  /** Counts a request being served until it settles (shutdown waits for the count to reach 0). */
  #track(serving: Promise<void>, onError: () => void): void {
    this.#active++;
    serving.catch(onError).finally(() => {
      this.#active--;
      if (this.#active === 0) for (const w of this.#idleWaiters.splice(0)) w();
    });
  }

  async #serve(req: IngressRequest, res: IngressResponse): Promise<void> {
    const h2 = req instanceof Http2ServerRequest;
    const refused = h2 ? ambiguousHostH2(req.headers) : (ambiguousHostH1(req.rawHeaders) ?? upgradeRefused(req.headers));
    if (refused !== undefined) {
      // The rest of an HTTP/1.1 request refused before its body was read cannot stay on the connection.
      if (!h2) res.setHeader("connection", "close");
      this.#refuse(refused);
      sendFailure(res, refused);
      return;
    }
    const url = req.url ?? "/";
    // /nats/<name>/… is the bridge only when <name> is a nats upstream; other paths under /nats/ route by host as usual.
    const natsName = isNatsBridgePath(url) ? decodeSafe(url.split("/")[2] ?? "") : undefined;
    if (natsName !== undefined && this.#upstreams.kindOf(natsName) === "nats") {
      const crossSite = originRefused(req.headers, this.#config.allowOrigins);
      if (crossSite !== undefined) {
        if (!h2) res.setHeader("connection", "close");
        this.#refuse(crossSite);
        sendFailure(res, crossSite);
        return;
      }
      const done = this.#metrics.start(natsName);
      done((await natsBridge(this.#upstreams, req, res, this.#config.limits.maxBodyBytes)).status);
      return;
    }
    const authority = authorityOf(req);
    const name = this.#route(authority);
    if (typeof name !== "string") {
      sendFailure(res, name);
      return;
    }
    const done = this.#metrics.start(name);
    done(await forward(this.#upstreams, name, compatCall(req), new CompatClient(req, res)));
  }

  async #serveStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const refused = ambiguousHostH2(headers);
    if (refused !== undefined) {
      this.#refuse(refused);
      sendStreamFailure(stream, refused);
      return;
    }
    const name = this.#route(streamAuthority(headers));
    if (typeof name !== "string") {
      sendStreamFailure(stream, name);
      return;
    }
    const done = this.#metrics.start(name);
    const call = streamCall(stream, headers);
    done(await forward(this.#upstreams, name, call, new StreamClient(stream, call.method)));
  }

  /** A request refused before routing: counted under upstream "none", as a 404 is. */
  #refuse(f: Failure): void {
    this.#metrics.start("none")(f.status);
  }

  /** The upstream for a host, or the 404 to send (counted under upstream "none"). */
  #route(authority: string | undefined): string | Failure {
    const name = this.#router.route(authority);
    if (name !== undefined) return name;
    this.#metrics.start("none")(404);
    const host = (authority ?? "").slice(0, 255).replace(/[^\x21-\x7e]/g, "?");
    return {
      status: 404,
      code: "ERR_DIALTONE_BROKER_NO_ROUTE",
      reason: authority ? `no upstream for host ${JSON.stringify(host)} (and no default upstream)` : "no Host header or :authority, and no default upstream",
    };
  }

  /**
   * Graceful: stop accepting, let in-flight requests finish (at most
   * shutdownGrace), cut what remains, close every channel and the admin
   * listener.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#reaper) clearInterval(this.#reaper);
      this.#ingress.stopAccepting();
      if (this.#active > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.#config.shutdownGrace);
          this.#idleWaiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      this.#ingress.destroyAll();
      await this.#upstreams.close();
      await this.#admin?.close();
    })();
    return this.#closing;
  }
}

const INTERNAL: Failure = { status: 500, code: "ERR_DIALTONE_BROKER", reason: "internal error" };
const noop = (): void => {};

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

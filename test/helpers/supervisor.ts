import { SUPERVISOR_DEFAULTS, fixedMembers } from "../../src/supervisor/members-plan.js";
import { resolveHealth } from "../../src/health/options.js";
import { StaticResolver } from "../../src/resolve/static-resolver.js";
import { SLOT_BACKOFF } from "../../src/supervisor/backoff.js";
import { Supervisor, type SupervisorOptions } from "../../src/supervisor/supervisor.js";
import { Http2Connector } from "../../src/transport/http2/connector.js";
import type { Http2Connection } from "../../src/transport/http2/connection.js";
import type { Backend } from "./backends.js";

/** A supervisor over real HTTP/2 backends without a channel around it, for options channels do not expose yet. */
export function http2Supervisor(backends: Backend[], over: Partial<SupervisorOptions<Http2Connection>> = {}): Supervisor<Http2Connection> {
  const target = `http://svc.test:${backends[0]!.port}`;
  return new Supervisor<Http2Connection>({
    target,
    resolver: new StaticResolver(
      "static:///",
      backends.map((b) => ({ host: b.host, port: b.port, family: 4 })),
    ),
    connector: new Http2Connector({ url: new URL(target), target, tls: {}, connectTimeout: 2000 }),
    members: fixedMembers(backends.length),
    health: resolveHealth({}),
    backoff: { ...SLOT_BACKOFF },
    criticalMin: 1,
    balancer: "in-flight",
    acquireTimeout: 1000,
    maxQueue: 10,
    closeGrace: 100,
    drainTimeout: 1000,
    readyTimeout: 5000,
    flapWindow: SUPERVISOR_DEFAULTS.flapWindow,
    minHold: SUPERVISOR_DEFAULTS.minHold,
    maxOutstanding: SUPERVISOR_DEFAULTS.maxOutstanding,
    ...over,
  });
}

import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/**
 * The broker's own series, beside every channel's dialtone_* families on the
 * same registry. `upstream` is a configured name (bounded by the config) or
 * "none" for requests no upstream took; `status` is the HTTP status sent.
 */
export class BrokerMetrics {
  readonly requests: Counter<"upstream" | "status">;
  readonly inFlight: Gauge<"upstream">;
  readonly duration: Histogram<"upstream">;
  readonly connections: Gauge<"protocol">;
  readonly connectionsTotal: Counter<"protocol">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: "dialtone_broker_requests_total",
      help: "Requests through the broker by upstream and HTTP status sent.",
      labelNames: ["upstream", "status"],
      registers,
    });
    this.inFlight = new Gauge({
      name: "dialtone_broker_requests_in_flight",
      help: "Requests the broker is serving now, by upstream.",
      labelNames: ["upstream"],
      registers,
    });
    this.duration = new Histogram({
      name: "dialtone_broker_request_duration_seconds",
      help: "Time from a request's head arriving to its response ending, by upstream.",
      labelNames: ["upstream"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.connections = new Gauge({
      name: "dialtone_broker_ingress_connections",
      help: "Open ingress connections by protocol (http1, h2c).",
      labelNames: ["protocol"],
      registers,
    });
    this.connectionsTotal = new Counter({
      name: "dialtone_broker_ingress_connections_total",
      help: "Ingress connections accepted by protocol (http1, h2c).",
      labelNames: ["protocol"],
      registers,
    });
  }

  /** Per upstream, its labelled series: a request then costs no label hashing (upstream names are bounded by the config). */
  readonly #children = new Map<string, UpstreamSeries>();

  /** Starts timing one request; the returned function records its end with the status sent. */
  start(upstream: string): (status: number) => void {
    let c = this.#children.get(upstream);
    if (c === undefined) {
      c = { inFlight: this.inFlight.labels(upstream), duration: this.duration.labels(upstream), byStatus: new Map() };
      this.#children.set(upstream, c);
    }
    const series = c;
    series.inFlight.inc();
    const started = process.hrtime.bigint();
    let done = false;
    return (status) => {
      if (done) return;
      done = true;
      series.inFlight.dec();
      series.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
      let requests = series.byStatus.get(status);
      if (requests === undefined) {
        requests = this.requests.labels(upstream, String(status));
        series.byStatus.set(status, requests);
      }
      requests.inc();
    };
  }
}

interface UpstreamSeries {
  inFlight: { inc(): void; dec(): void };
  duration: { observe(seconds: number): void };
  byStatus: Map<number, { inc(): void }>;
}

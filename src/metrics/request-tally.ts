import type { Registry } from "prom-client";
import type { RequestOutcome } from "../core/events.js";

/** Request durations, seconds: sub-ms on loopback up to a slow call's 10 s. */
export const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Outcome label values are lower snake case; computed once, not per request. */
const SNAKE = new Map<string, string>();
const snake = (s: string): string => {
  let v = SNAKE.get(s);
  if (v === undefined) SNAKE.set(s, (v = s.replace(/-/g, "_")));
  return v;
};

/**
 * One channel's requests, counted in plain numbers on the request path.
 * prom-client's labelled inc() and observe() cost a few hundred ns each
 * (label objects, validation, a hash per call) — on every request that was
 * a measurable share of a request's CPU. The tally costs tens of ns; the
 * families read it only when scraped.
 */
export class RequestTally {
  readonly channel: string;
  /** Requests by outcome label, since the channel's metrics began. */
  readonly outcomes = new Map<string, number>();
  retries = 0;
  hedges = 0;
  hedgesWon = 0;
  /** Per bucket (not cumulative); the last is +Inf. */
  readonly buckets = new Float64Array(REQUEST_BUCKETS.length + 1);
  sum = 0;
  count = 0;
  /** What the counters were last given (they take deltas). */
  readonly flushed = { outcomes: new Map<string, number>(), retries: 0, hedges: 0, hedgesWon: 0 };

  constructor(channel: string) {
    this.channel = channel;
  }

  record(outcome: RequestOutcome, seconds: number, retries: number, hedges: number, hedgeWon: boolean): void {
    const label = snake(outcome);
    this.outcomes.set(label, (this.outcomes.get(label) ?? 0) + 1);
    this.retries += retries;
    this.hedges += hedges;
    if (hedgeWon) this.hedgesWon++;
    // A duration that is not one (a clock step) would poison the sum for good; prom-client refuses it too.
    if (!(seconds >= 0) || seconds === Number.POSITIVE_INFINITY) return;
    let b = 0;
    while (b < REQUEST_BUCKETS.length && seconds > (REQUEST_BUCKETS[b] as number)) b++;
    this.buckets[b] = (this.buckets[b] as number) + 1;
    this.sum += seconds;
    this.count++;
  }
}

interface Value {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  /** prom-client gives every bucket one (null without exemplars). */
  exemplar?: null;
}

/**
 * dialtone_request_duration_seconds, read from the channels' tallies at
 * scrape time. prom-client's Histogram has no way to take counts in bulk, so
 * this is a metric of its own that a prom-client Registry formats like any
 * other: it offers what the registry reads (get(), getForPromString(),
 * reset(), name, help, type, aggregator) and the same output as a prom-client
 * Histogram with labelNames ["channel"].
 */
export class TallyHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly labelNames = ["channel"];
  readonly #tallies: ReadonlySet<RequestTally>;

  constructor(registry: Registry, name: string, help: string, tallies: ReadonlySet<RequestTally>) {
    this.name = name;
    this.help = help;
    this.#tallies = tallies;
    registry.registerMetric(this as never);
  }

  getForPromString(): Promise<{ name: string; help: string; type: string; values: Value[]; aggregator: string }> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const t of this.#tallies) {
      const shared = { channel: t.channel };
      let acc = 0;
      for (let i = 0; i < REQUEST_BUCKETS.length; i++) {
        acc += t.buckets[i] as number;
        values.push({ labels: { le: REQUEST_BUCKETS[i] as number }, sharedLabels: shared, value: acc, metricName: bucket, exemplar: null });
      }
      values.push({ labels: { le: "+Inf" }, sharedLabels: shared, value: t.count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels: shared, value: t.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: shared, value: t.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /** As prom-client's get(): the channel label merged into each value's labels. */
  async get(): Promise<{ name: string; help: string; type: string; values: Value[]; aggregator: string }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }

  /** registry.resetMetrics(): every channel's durations start over. */
  reset(): void {
    for (const t of this.#tallies) {
      t.buckets.fill(0);
      t.sum = 0;
      t.count = 0;
    }
  }
}

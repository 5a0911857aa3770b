/**
 * What the live console shows, computed from the registry itself: request
 * rate, error rate and latency percentiles over a recent window, time to
 * first token, tokens per second, requests in flight and queue depth. The
 * console never keeps numbers of its own, so it cannot disagree with
 * Prometheus.
 */
import type { GatewayRecorder } from "./gateway-metrics.js";
import type { QueueRecorder } from "./queue-metrics.js";

/** One reading of the cumulative series the console needs. */
interface Snapshot {
  at: number;
  requests: number;
  errors: number;
  /** Cumulative bucket counts by upper bound (`+Inf` included). */
  latency: Map<number, number>;
  ttft: Map<number, number>;
  inputTokens: number;
  outputTokens: number;
}

/** What `GET /v1/console/stats` answers. */
export interface ConsoleStats {
  /** Seconds the numbers below are measured over. */
  windowSeconds: number;
  requests: {
    /** API requests per second (console, metrics and probe calls left out). */
    perSecond: number;
    /** Of those, answered 5xx, per second. */
    errorsPerSecond: number;
    /** Latency percentiles in seconds, from the duration histogram; null without traffic. */
    latency: { p50: number | null; p95: number | null; p99: number | null };
    inFlight: number;
    total: number;
  };
  timeToFirstToken: { p50: number | null; p95: number | null };
  tokens: { inputPerSecond: number; outputPerSecond: number };
  queues: { queue: string; state: string; count: number }[];
}

/** Routes that are not API traffic: the console's own polling, scrapes and probes. */
function isApiRoute(route: string | undefined): boolean {
  return route !== undefined && route.startsWith("/v1/") && !route.startsWith("/v1/console");
}

type Value = { labels: Partial<Record<string, string | number>>; value: number; metricName?: string };

async function values(metric: { get(): Promise<{ values: unknown[] }> }): Promise<Value[]> {
  return (await metric.get()).values as Value[];
}

function buckets(all: Value[], name: string, keep: (labels: Value["labels"]) => boolean): Map<number, number> {
  const result = new Map<number, number>();
  for (const value of all) {
    if (value.metricName !== `${name}_bucket` || !keep(value.labels)) continue;
    const le = value.labels.le === "+Inf" ? Infinity : Number(value.labels.le);
    result.set(le, (result.get(le) ?? 0) + value.value);
  }
  return result;
}

/**
 * The `q` quantile of the observations between two readings of cumulative
 * buckets, interpolated inside the bucket as Prometheus' `histogram_quantile`
 * does. Null when nothing was observed.
 */
export function bucketQuantile(q: number, now: Map<number, number>, before: Map<number, number> | undefined): number | null {
  const bounds = [...now.keys()].sort((a, b) => a - b);
  const counts = bounds.map((bound) => (now.get(bound) ?? 0) - (before?.get(bound) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let index = 0; index < bounds.length; index++) {
    if (counts[index]! >= rank) {
      const upper = bounds[index]!;
      const lower = index === 0 ? 0 : bounds[index - 1]!;
      if (upper === Infinity) return lower;
      const below = index === 0 ? 0 : counts[index - 1]!;
      const inBucket = counts[index]! - below;
      return inBucket <= 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
    }
  }
  return bounds.at(-2) ?? null;
}

export class ConsoleStatsWindow {
  readonly #gateway: GatewayRecorder;
  readonly #queue: QueueRecorder | undefined;
  readonly #windowMs: number;
  readonly #now: () => number;
  /** Readings, oldest first; the first is the base rates are measured from. */
  readonly #snapshots: Snapshot[];

  /**
   * @param windowSeconds how far back rates and percentiles look (default 60).
   */
  constructor(options: { gateway: GatewayRecorder; queue?: QueueRecorder; windowSeconds?: number; now?: () => number }) {
    this.#gateway = options.gateway;
    this.#queue = options.queue;
    this.#windowMs = (options.windowSeconds ?? 60) * 1000;
    this.#now = options.now ?? Date.now;
    // Until the window has passed, everything since start counts.
    this.#snapshots = [{ at: this.#now(), requests: 0, errors: 0, latency: new Map(), ttft: new Map(), inputTokens: 0, outputTokens: 0 }];
  }

  async #read(): Promise<Snapshot> {
    const gateway = this.#gateway;
    const [requests, latency, ttft, tokens] = await Promise.all([
      values(gateway.requests),
      values(gateway.duration),
      values(gateway.timeToFirstToken),
      values(gateway.tokens),
    ]);
    let total = 0;
    let errors = 0;
    for (const value of requests) {
      if (!isApiRoute(value.labels.route as string | undefined)) continue;
      total += value.value;
      if (String(value.labels.status).startsWith("5")) errors += value.value;
    }
    let inputTokens = 0;
    let outputTokens = 0;
    for (const value of tokens) {
      if (value.labels.type === "input") inputTokens += value.value;
      else if (value.labels.type === "output") outputTokens += value.value;
    }
    return {
      at: this.#now(),
      requests: total,
      errors,
      latency: buckets(latency, "switchboard_http_request_duration_seconds", (labels) => isApiRoute(labels.route as string | undefined)),
      ttft: buckets(ttft, "switchboard_gateway_time_to_first_token_seconds", () => true),
      inputTokens,
      outputTokens,
    };
  }

  /**
   * Takes a reading and compares it with the newest earlier one that is at
   * least a window old (or the first, while the process is younger than that).
   */
  async stats(): Promise<ConsoleStats> {
    const current = await this.#read();
    const snapshots = this.#snapshots;
    while (snapshots.length >= 2 && current.at - snapshots[1]!.at >= this.#windowMs) snapshots.shift();
    const base = snapshots[0]!;
    // Readings closer than a second apart add nothing to the history.
    if (current.at - snapshots.at(-1)!.at >= 1000) snapshots.push(current);
    const seconds = Math.max(0.001, (current.at - base.at) / 1000);
    const rate = (now: number, before: number) => Math.max(0, now - before) / seconds;
    const inFlight = (await values(this.#gateway.inFlight))[0]?.value ?? 0;
    const queues = this.#queue ? (await values(this.#queue.depth)).map((value) => ({ queue: String(value.labels.queue), state: String(value.labels.state), count: value.value })) : [];
    return {
      windowSeconds: Math.round(seconds * 10) / 10,
      requests: {
        perSecond: rate(current.requests, base.requests),
        errorsPerSecond: rate(current.errors, base.errors),
        latency: {
          p50: bucketQuantile(0.5, current.latency, base.latency),
          p95: bucketQuantile(0.95, current.latency, base.latency),
          p99: bucketQuantile(0.99, current.latency, base.latency),
        },
        inFlight,
        total: current.requests,
      },
      timeToFirstToken: { p50: bucketQuantile(0.5, current.ttft, base.ttft), p95: bucketQuantile(0.95, current.ttft, base.ttft) },
      tokens: { inputPerSecond: rate(current.inputTokens, base.inputTokens), outputPerSecond: rate(current.outputTokens, base.outputTokens) },
      queues,
    };
  }
}

/**
 * Every Prometheus metric Switchboard exposes is defined here, once, on a
 * registry the app injects. Apps never call `new Counter(...)` themselves, so
 * names, help texts, label sets and buckets stay consistent across processes.
 * The list, with each metric's OpenTelemetry GenAI equivalent, is in
 * `docs/metrics.md`.
 *
 * Labels are bounded: routes by template, models only from the catalog,
 * queues, tasks, backends and providers from fixed lists; anything else is
 * folded into `other` (see {@link LabelPolicy}).
 */
import { collectDefaultMetrics, Registry } from "prom-client";
import { GatewayRecorder } from "./gateway-metrics.js";
import { LabelPolicy, type LabelPolicyOptions } from "./label-policy.js";
import { QueueRecorder } from "./queue-metrics.js";
import { RouterRecorder } from "./router-metrics.js";
import { HfRecorder, LlamaRecorder, WorkerRecorder } from "./worker-metrics.js";

export { Registry };
export { HTTP_DURATION_BUCKETS } from "./buckets.js";
export { CappedValues, KnownValues, NONE, OTHER, UNMATCHED_ROUTE, foldMethod, foldStatus, llamaQueueLabel, providerOf, type ModelLabelSource } from "./labels.js";
export { LabelPolicy, ROUTER_MODEL, type LabelPolicyOptions } from "./label-policy.js";
export { GenerationTimer, tapEvents, type JobObserver, type JobOutcome } from "./generation-timer.js";
export { CounterSeries, FastCounter, FastGauge, FastHistogram, GaugeSeries, HistogramSeries, type FastMetricOptions } from "./fast-metrics.js";
export { GatewayRecorder, REJECTION_REASONS, RequestObservation, requestClockFrom, type FinishedRequest, type HttpRequestLabels, type ObservedJob, type RequestClock } from "./gateway-metrics.js";
export { QueueRecorder, type QueueDepthSample, type QueueDepthSource, type QueueJobOutcome } from "./queue-metrics.js";
export { HfRecorder, LlamaRecorder, WorkerRecorder, type CircuitSample, type CircuitSource, type FinishedJob, type LlamaLoadSource, type LlamaModelLoad } from "./worker-metrics.js";
export { RouterRecorder } from "./router-metrics.js";
export { ConsoleStatsWindow, bucketQuantile, type ConsoleStats } from "./console-stats.js";
export { parseExposition, sampleSum, seriesCount, type Exposition, type Sample } from "./exposition.js";

/**
 * prom-client defaults removed from every registry: `nodejs_active_handles_total`
 * and its siblings are gauges with a counter's suffix. `sum(nodejs_active_handles)`
 * (labelled by type, kept) gives the same number.
 */
export const LINT_FAILING_DEFAULTS = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

export interface MetricsOptions extends LabelPolicyOptions {
  /** Where the metrics live; a fresh registry when absent. One set of metrics per registry. */
  registry?: Registry;
  /** Collect prom-client's default process metrics (CPU, memory, event loop, GC). Default true. */
  processMetrics?: boolean;
}

/** The metrics of a Switchboard process, grouped by who records them. */
export interface SwitchboardMetrics {
  readonly registry: Registry;
  readonly labels: LabelPolicy;
  /** HTTP traffic and the jobs behind it (the gateway). */
  readonly gateway: GatewayRecorder;
  /** Queue depth, wait and run time, job outcomes (the transports). */
  readonly queue: QueueRecorder;
  /** Per-job work, tokens and decode speed of any backend. */
  readonly worker: WorkerRecorder;
  /** Model loads, sequences and context of the llama engine. */
  readonly llama: LlamaRecorder;
  /** Upstream latency, errors, retries and circuits of the Hugging Face engine. */
  readonly hf: HfRecorder;
  /** Stages, plans, tasks and runs of the router (an `OrchestrationObserver`). */
  readonly router: RouterRecorder;
  /** `switchboard_http_requests_total` (kept for callers of the first version). */
  readonly httpRequestsTotal: GatewayRecorder["requests"];
  /** `switchboard_http_request_duration_seconds` (kept for callers of the first version). */
  readonly httpRequestDuration: GatewayRecorder["duration"];
}

/**
 * Defines every metric on the registry and starts collecting prom-client's
 * default process metrics on it. Call once per registry: prom-client refuses
 * a second metric of the same name. A bare `Registry` argument is accepted
 * for callers of the first version (no catalog: every model is `other`).
 */
export function createMetrics(options: MetricsOptions | Registry = {}): SwitchboardMetrics {
  const settings: MetricsOptions = options instanceof Registry ? { registry: options } : options;
  const registry = settings.registry ?? new Registry();
  if (settings.processMetrics !== false) {
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters fail `promtool check metrics`; each is the sum of a labelled gauge that stays.
    for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);
  }
  const labels = new LabelPolicy(settings);
  const gateway = new GatewayRecorder(registry, labels);
  const worker = new WorkerRecorder(registry, labels);
  return {
    registry,
    labels,
    gateway,
    queue: new QueueRecorder(registry, labels),
    worker,
    llama: new LlamaRecorder(registry, labels, worker),
    hf: new HfRecorder(registry, labels),
    router: new RouterRecorder(registry, labels),
    httpRequestsTotal: gateway.requests,
    httpRequestDuration: gateway.duration,
  };
}

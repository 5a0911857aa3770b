/**
 * Every Prometheus metric Switchboard exposes is defined here, once, on a
 * registry the app injects. Apps never call `new Counter(...)` themselves, so
 * names, help texts, label sets and buckets stay consistent across processes.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export { Registry };

/** The label values of one HTTP request, bounded by construction. */
export type HttpRequestLabels = {
  /** Route template (`/v1/models/*`), never the raw URL; unknown routes share one value. */
  route: string;
  method: string;
  /** Status code as text; `499` when the client went away before the response ended. */
  status: string;
};

/** The metrics every Switchboard app shares. */
export interface SwitchboardMetrics {
  readonly registry: Registry;
  /** `switchboard_http_requests_total{route,method,status}`. */
  readonly httpRequestsTotal: Counter<keyof HttpRequestLabels>;
  /**
   * `switchboard_http_request_duration_seconds{route,method,status}`: from the
   * first byte of the request to the end of the response (the whole stream for SSE).
   */
  readonly httpRequestDuration: Histogram<keyof HttpRequestLabels>;
}

/** Label value for requests that matched no route, so scanners cannot grow the label set. */
export const UNMATCHED_ROUTE = "unmatched";

/**
 * Buckets in seconds: sub-millisecond for `/health`-style calls up to minutes
 * for long streamed generations.
 */
export const HTTP_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/**
 * Defines the metrics on `registry` and starts collecting prom-client's
 * default process metrics on it. Call once per registry: prom-client refuses
 * a second metric of the same name.
 */
export function createMetrics(registry: Registry = new Registry()): SwitchboardMetrics {
  collectDefaultMetrics({ register: registry });
  const labelNames = ["route", "method", "status"] as const;
  return {
    registry,
    httpRequestsTotal: new Counter({
      name: "switchboard_http_requests_total",
      help: "HTTP requests answered, by route template, method and status code.",
      labelNames,
      registers: [registry],
    }),
    httpRequestDuration: new Histogram({
      name: "switchboard_http_request_duration_seconds",
      help: "Time from receiving an HTTP request to the end of its response (whole stream for SSE), in seconds.",
      labelNames,
      buckets: HTTP_DURATION_BUCKETS,
      registers: [registry],
    }),
  };
}

/**
 * What the Hugging Face engine tells metrics. `@switchboard/metrics`
 * implements it (`createMetrics().hf`), so the engine never imports
 * prom-client. Circuit states are read at scrape time from
 * `HfEngine.breaker.state(model)`. Methods must be cheap and never throw.
 */
export interface HfUpstreamMetrics {
  /**
   * One upstream call ended: `seconds` covers its attempts and backoff (for a
   * stream, until the response headers); `error` is the GatewayError code of
   * a failed call (`upstream_timeout`, `upstream_error`, ...), absent on success.
   */
  upstreamCall(info: { model: string; provider: string; seconds: number; error?: string }): void;
  /** An attempt failed in a retryable way and is about to be retried. */
  upstreamRetry(info: { model: string; provider: string }): void;
}

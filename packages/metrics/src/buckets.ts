/**
 * Histogram buckets, in base units. Where the OpenTelemetry GenAI semantic
 * conventions recommend boundaries they are used, extended downwards where
 * small local models are faster than the conventions assume.
 */

/** HTTP request duration, seconds: sub-millisecond `/health` calls up to minutes-long streams. */
export const HTTP_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** `gen_ai.server.request.duration`'s advice, plus 1-5 ms for tiny models. */
export const GENAI_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92, 163.84];

/** `gen_ai.server.time_to_first_token`'s advice, plus 0.5 ms. */
export const TTFT_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** `gen_ai.server.time_per_output_token`'s advice, extended to 0.1 ms (a ~1 MB model decodes 1,000-3,000 tokens/s). */
export const TPOT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5];

/** Queue wait and run time, seconds. */
export const QUEUE_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Model load time, seconds: a 250 KB test model in milliseconds, a 7B GGUF from a slow disk in minutes. */
export const MODEL_LOAD_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** Decode speed of one job, tokens per second. */
export const DECODE_RATE_BUCKETS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** Upstream (Hugging Face) call latency, seconds. */
export const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Router stage and run durations, seconds. */
export const ROUTER_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Tasks in a plan (the default limit is 8). */
export const PLAN_SIZE_BUCKETS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16];

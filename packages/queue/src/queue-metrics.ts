/**
 * What a transport tells metrics about its queues. Both transports call it
 * (in-process and BullMQ); `@switchboard/metrics` implements it on a
 * prom-client registry (`createMetrics().queue`), so the queue never imports
 * prom-client. Every method must be cheap and must never throw.
 */
/**
 * How a job left its queue: `completed` (its events ran to their end, an
 * in-band error included), `rejected` (its first event was an error: refused
 * before it started, e.g. the queue or line was full), `cancelled` (the
 * reader stopped early: the client went away), `failed` (the transport or
 * backend broke).
 */
export type QueueJobOutcome = "completed" | "failed" | "cancelled" | "rejected";

/** Jobs of one queue in one state, read when metrics are scraped. */
export interface QueueDepthSample {
  /** Queue name, as the fleet names it (`llama.<model>`, `hf`, `router`). */
  queue: string;
  /** BullMQ's state names: `waiting`, `active`, `delayed`, `prioritized`, `waiting-children`, `paused`. */
  state: string;
  count: number;
}

export interface QueueMetrics {
  /** A worker (or a free sequence) took a job that had waited `waitSeconds` since it was submitted. */
  jobStarted(queue: string, waitSeconds: number): void;
  /** A job left its queue; `runSeconds` from when it started (ignored for `rejected`). */
  jobFinished(queue: string, outcome: QueueJobOutcome, runSeconds: number): void;
  /** A job is run again after a failed or lost attempt. */
  jobRetried(queue: string): void;
  /** A job's worker stopped renewing its lock (BullMQ's `stalled`). */
  jobStalled(queue: string): void;
  /**
   * A worker serves `queue`: its re-run and stall counts start at 0 here.
   * Prometheus' `rate()` cannot see a counter's first increase when the
   * series first appears already at 1.
   */
  queueServed(queue: string): void;
  /**
   * Registers a reader of queue depth, called at every scrape (may be async;
   * a reader that throws reports nothing that time). Returns an unregister
   * function, for `close()`.
   */
  watchDepth(read: () => readonly QueueDepthSample[] | Promise<readonly QueueDepthSample[]>): () => void;
}

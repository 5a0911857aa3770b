/**
 * The one interface every engine implements (llama now, Hugging Face later).
 * A transport (in-process or BullMQ) feeds jobs to a backend; the backend
 * knows nothing of HTTP or queues.
 */
import type { Job, JobEvent } from "./jobs.js";
import type { JobSignal } from "./job-signal.js";
import type { Logger } from "./logger.js";

export interface JobContext {
  /** Aborted when the client goes away or the deadline passes (a real `AbortSignal` for platform APIs: `toAbortSignal`). */
  signal: JobSignal;
  logger: Logger;
}

/** Load state of one model, for `/ready` and `/v1/models`. */
export interface ModelState {
  id: string;
  state: "downloading" | "loading" | "ready" | "failed";
  /** 0..1 while downloading. */
  progress?: number;
  /** Why the model failed to load; safe to show to operators. */
  error?: string;
}

export interface Backend {
  /** Short name used in logs and metrics: "llama", "hf". */
  readonly name: string;
  /** Catalog ids of the models this backend serves. */
  models(): string[];
  modelStates(): ModelState[];
  /**
   * Runs one job. Failures before generation are yielded as a single `error`
   * event (never thrown), so every transport can answer them as plain HTTP
   * errors.
   */
  run(job: Job, context: JobContext): AsyncIterable<JobEvent>;
  close(): Promise<void>;
}

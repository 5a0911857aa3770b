/**
 * The gateway's only way to run work. Routes turn a request into a {@link Job}
 * and read back {@link JobEvent}s; whether the job runs in this process or on
 * a worker across Redis is the transport's business.
 */
import type { Job, JobEvent, JobSignal, ModelState } from "@switchboard/protocol";

export interface SubmitOptions {
  /** Aborting it removes a waiting job or stops a running one. */
  signal?: JobSignal;
}

export interface Dispatcher {
  /**
   * Submits a job. The first event is `accepted` or `error`; errors found
   * before generation never arrive after an `accepted`.
   */
  submit(job: Job, options?: SubmitOptions): AsyncIterable<JobEvent>;
  /** Load state of every model some backend or worker serves. */
  modelStates(): Promise<ModelState[]>;
  /** Whether the transport itself can take work (Redis reachable, ...). */
  ready(): Promise<boolean>;
  close(): Promise<void>;
}

import {
  GatewayError,
  asGatewayError,
  modelUnavailable,
  silentLogger,
  type Backend,
  type Job,
  type JobEvent,
  type Logger,
  type ModelState,
} from "@switchboard/protocol";
import { HF_QUEUE, ROUTER_QUEUE, llamaQueueName } from "./bullmq/names.js";
import type { Dispatcher, SubmitOptions } from "./dispatcher.js";
import type { JobEventObserver, QueueJobOutcome, QueueMetrics } from "./queue-metrics.js";

export interface InProcessDispatcherOptions {
  backends: Backend[];
  logger?: Logger;
  /** Queue metrics: depth, wait and run time, outcomes. Nothing is recorded without it. */
  metrics?: QueueMetrics;
  /** The queue a job is counted under; by default the fleet's name for it (`llama.<model>`, `hf`, `router`). */
  queueFor?: (job: Job, backend: Backend) => string;
}

/** The queue the fleet transport would put a job on. */
const fleetQueueFor = (job: Job, backend: Backend): string =>
  backend.name === "hf" ? HF_QUEUE : backend.name === "router" ? ROUTER_QUEUE : llamaQueueName(job.model);

/** The embedded default: jobs run on backends in this process, no Redis. */
export class InProcessDispatcher implements Dispatcher {
  readonly #backends: Backend[];
  readonly #logger: Logger;
  readonly #metrics: QueueMetrics | undefined;
  readonly #queueFor: (job: Job, backend: Backend) => string;
  /** Jobs per queue that wait for their first event (a sequence, a check) or run. */
  readonly #depth = new Map<string, QueueDepth>();
  readonly #unwatch: (() => void) | undefined;

  constructor(options: InProcessDispatcherOptions) {
    this.#backends = options.backends;
    this.#logger = options.logger ?? silentLogger;
    this.#metrics = options.metrics;
    this.#queueFor = options.queueFor ?? fleetQueueFor;
    this.#unwatch = options.metrics?.watchDepth(() =>
      [...this.#depth.values()].flatMap((depth) => [
        { queue: depth.queue, state: "waiting", count: depth.waiting },
        { queue: depth.queue, state: "active", count: depth.active },
      ]),
    );
  }

  async *submit(job: Job, options: SubmitOptions = {}): AsyncIterable<JobEvent> {
    const backend = this.#backends.find((candidate) => candidate.models().includes(job.model));
    if (!backend) {
      yield { type: "error", error: modelUnavailable(job.model, `No backend serves model '${job.model}'.`, 5).toPayload() };
      return;
    }
    const signal = options.signal ?? new AbortController().signal;
    const logger = this.#logger.child({ requestId: job.requestId, jobId: job.id, model: job.model, backend: backend.name });
    try {
      const events = backend.run(job, { signal, logger });
      if (!this.#metrics) yield* events;
      else {
        const tracker = new JobTracker(this.#metrics, this.#depthOf(this.#queueFor(job, backend)), job, backend.name);
        let finished = false;
        try {
          for await (const event of events) {
            tracker.see(event);
            yield event;
          }
          finished = true;
        } finally {
          tracker.end(finished);
        }
      }
    } catch (error) {
      // Backends report failures as events; a throw is a bug, but it must still reach the client.
      if (!(error instanceof GatewayError)) logger.error({ err: error }, "backend threw instead of yielding an error event");
      yield { type: "error", error: asGatewayError(error).toPayload() };
    }
  }

  async modelStates(): Promise<ModelState[]> {
    return this.#backends.flatMap((backend) => backend.modelStates());
  }

  async ready(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.#unwatch?.();
    await Promise.all(this.#backends.map((backend) => backend.close()));
  }

  #depthOf(queue: string): QueueDepth {
    let depth = this.#depth.get(queue);
    if (!depth) this.#depth.set(queue, (depth = { queue, waiting: 0, active: 0 }));
    return depth;
  }
}

interface QueueDepth {
  queue: string;
  waiting: number;
  active: number;
}

/**
 * One job on the in-process transport, for metrics: waiting until its first
 * event (the llama engine sends `accepted` once a sequence is free), active
 * until its last. An `error` first is a rejection: it never ran. The job's
 * events also go to the worker observer, when the metrics have one.
 */
class JobTracker {
  readonly #metrics: QueueMetrics;
  readonly #depth: QueueDepth;
  readonly #worker: JobEventObserver | undefined;
  readonly #submittedAt = performance.now();
  #startedAt: number | undefined;
  #waiting = true;
  #outcome: QueueJobOutcome | undefined;

  constructor(metrics: QueueMetrics, depth: QueueDepth, job: Job, backend: string) {
    this.#metrics = metrics;
    this.#depth = depth;
    this.#worker = metrics.observeJob?.(job, backend);
    depth.waiting++;
  }

  see(event: JobEvent): void {
    this.#worker?.see(event);
    if (this.#waiting) {
      this.#waiting = false;
      this.#depth.waiting--;
      if (event.type === "error") this.#outcome = "rejected";
      else {
        this.#startedAt = performance.now();
        this.#depth.active++;
        this.#metrics.jobStarted(this.#depth.queue, (this.#startedAt - this.#submittedAt) / 1000);
      }
    } else if (event.type === "error") this.#outcome = "failed";
  }

  /** `finished`: the events ran to their end; otherwise the reader stopped early (the client went away). */
  end(finished: boolean): void {
    this.#worker?.end(finished);
    if (this.#waiting) this.#depth.waiting--;
    else if (this.#startedAt !== undefined) this.#depth.active--;
    const outcome = this.#outcome ?? (!finished ? "cancelled" : this.#waiting ? "failed" : "completed");
    this.#metrics.jobFinished(this.#depth.queue, outcome, this.#startedAt === undefined ? 0 : (performance.now() - this.#startedAt) / 1000);
  }
}

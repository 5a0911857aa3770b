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
import type { QueueJobOutcome, QueueMetrics } from "./queue-metrics.js";

export interface InProcessDispatcherOptions {
  backends: Backend[];
  logger?: Logger;
  /** Queue metrics: depth, wait and run time, outcomes. Nothing is recorded without it. */
  metrics?: QueueMetrics;
  /** The queue a job is counted under; by default the fleet's name for it (`llama.<model>`, `hf`, `router`). */
  queueFor?: (job: Job, backend: Backend) => string;
}

/** The queue the fleet transport would put a job on. Local queue names are kept (percent-encoding each time costs); only models a backend serves get here. */
const localQueueNames = new Map<string, string>();
const fleetQueueFor = (job: Job, backend: Backend): string => {
  if (backend.name === "hf") return HF_QUEUE;
  if (backend.name === "router") return ROUTER_QUEUE;
  let name = localQueueNames.get(job.model);
  if (name === undefined) localQueueNames.set(job.model, (name = llamaQueueName(job.model)));
  return name;
};

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
        // Only the first event is looked at (when a sequence or worker took the job); the rest pass
        // straight through, so metrics cost nothing per event.
        const tracker = new JobTracker(this.#metrics, this.#depthOf(this.#queueFor(job, backend)), events);
        let ended: "finished" | "stopped" | "threw" = "stopped";
        try {
          yield* tracker;
          ended = "finished";
        } catch (error) {
          ended = "threw";
          throw error;
        } finally {
          tracker.end(ended);
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
 * until its last. An `error` first is a rejection: it never ran. It is the
 * job's event iterator: the first `next()` is watched, later ones are the
 * backend's own.
 */
class JobTracker implements AsyncIterableIterator<JobEvent> {
  readonly #metrics: QueueMetrics;
  readonly #depth: QueueDepth;
  readonly #events: AsyncIterator<JobEvent>;
  readonly #submittedAt = performance.now();
  #startedAt: number | undefined;
  #waiting = true;
  #rejected = false;

  constructor(metrics: QueueMetrics, depth: QueueDepth, events: AsyncIterable<JobEvent>) {
    this.#metrics = metrics;
    this.#depth = depth;
    this.#events = events[Symbol.asyncIterator]();
    depth.waiting++;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<JobEvent> {
    return this;
  }

  next(): Promise<IteratorResult<JobEvent>> {
    if (!this.#waiting) return this.#events.next();
    return this.#firstEvent();
  }

  return(value?: unknown): Promise<IteratorResult<JobEvent>> {
    return this.#events.return ? this.#events.return(value) : Promise.resolve({ done: true, value: undefined });
  }

  // A method, not an arrow field: under tsx each arrow made per job gets a name-setting wrapper call.
  async #firstEvent(): Promise<IteratorResult<JobEvent>> {
    const result = await this.#events.next();
    if (result.done) return result;
    this.#waiting = false;
    this.#depth.waiting--;
    if (result.value.type === "error") this.#rejected = true;
    else {
      this.#startedAt = performance.now();
      this.#depth.active++;
      this.#metrics.jobStarted(this.#depth.queue, (this.#startedAt - this.#submittedAt) / 1000);
    }
    return result;
  }

  /** `finished`: the events ran to their end; `stopped`: the reader stopped early; `threw`: the backend broke. */
  end(ended: "finished" | "stopped" | "threw"): void {
    if (this.#waiting) this.#depth.waiting--;
    else if (this.#startedAt !== undefined) this.#depth.active--;
    const outcome: QueueJobOutcome =
      ended === "threw" ? "failed" : this.#rejected ? "rejected" : ended === "stopped" ? "cancelled" : this.#startedAt === undefined ? "failed" : "completed";
    this.#metrics.jobFinished(this.#depth.queue, outcome, this.#startedAt === undefined ? 0 : (performance.now() - this.#startedAt) / 1000);
  }
}

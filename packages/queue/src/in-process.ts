import {
  GatewayError,
  JobAbortController,
  asGatewayError,
  lazyChild,
  metricsNow,
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

  submit(job: Job, options: SubmitOptions = {}): AsyncIterable<JobEvent> {
    const backend = this.#backends.find((candidate) => candidate.models().includes(job.model));
    if (!backend) return oneEvent({ type: "error", error: modelUnavailable(job.model, `No backend serves model '${job.model}'.`, 5).toPayload() });
    const signal = options.signal ?? new JobAbortController().signal;
    const logger = lazyChild(this.#logger, { requestId: job.requestId, jobId: job.id, model: job.model, backend: backend.name });
    const depth = this.#metrics ? this.#depthOf(this.#queueFor(job, backend)) : undefined;
    return new JobEvents(() => backend.run(job, { signal, logger })[Symbol.asyncIterator](), logger, this.#metrics, depth);
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
 * A job's events as the reader gets them, straight from the backend: no
 * generator in between, so an event costs one awaited `next()` here. A
 * backend that throws (a bug: backends report failures as events) still
 * reaches the client, as a last `error` event.
 */
class JobEvents implements AsyncIterableIterator<JobEvent> {
  readonly #start: () => AsyncIterator<JobEvent>;
  readonly #logger: Logger;
  readonly #metrics: QueueMetrics | undefined;
  readonly #depth: QueueDepth | undefined;
  /** Made at the first `next()`, as a generator would: a job nobody reads never starts. */
  #events: AsyncIterator<JobEvent> | undefined;
  #tracker: JobTracker | undefined;
  #ended = false;

  constructor(start: () => AsyncIterator<JobEvent>, logger: Logger, metrics: QueueMetrics | undefined, depth: QueueDepth | undefined) {
    this.#start = start;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#depth = depth;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<JobEvent> {
    return this;
  }

  async next(): Promise<IteratorResult<JobEvent>> {
    if (this.#ended) return { done: true, value: undefined };
    try {
      if (this.#events === undefined) {
        if (this.#metrics && this.#depth) this.#tracker = new JobTracker(this.#metrics, this.#depth);
        this.#events = this.#start();
      }
      const result = await this.#events.next();
      if (result.done) this.#end("finished");
      else this.#tracker?.see(result.value);
      return result;
    } catch (error) {
      this.#end("threw");
      if (!(error instanceof GatewayError)) this.#logger.error({ err: error }, "backend threw instead of yielding an error event");
      return { done: false, value: { type: "error", error: asGatewayError(error).toPayload() } };
    }
  }

  /** The reader stopped early (the client went away): the backend's generator is stopped too. */
  async return(): Promise<IteratorResult<JobEvent>> {
    const started = this.#events !== undefined;
    this.#end("stopped");
    if (started) await this.#events?.return?.();
    return { done: true, value: undefined };
  }

  #end(how: "finished" | "stopped" | "threw"): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#tracker?.end(how);
  }
}

/**
 * One job on the in-process transport, for metrics: waiting until its first
 * event (the llama engine sends `accepted` once a sequence is free), active
 * until its last. An `error` first is a rejection: it never ran. Only the
 * first event is looked at.
 */
class JobTracker {
  readonly #metrics: QueueMetrics;
  readonly #depth: QueueDepth;
  readonly #submittedAt = metricsNow();
  #startedAt: number | undefined;
  #waiting = true;
  #rejected = false;

  constructor(metrics: QueueMetrics, depth: QueueDepth) {
    this.#metrics = metrics;
    this.#depth = depth;
    depth.waiting++;
  }

  see(event: JobEvent): void {
    if (!this.#waiting) return;
    this.#waiting = false;
    this.#depth.waiting--;
    if (event.type === "error") this.#rejected = true;
    else {
      this.#startedAt = metricsNow();
      this.#depth.active++;
      this.#metrics.jobStarted(this.#depth.queue, (this.#startedAt - this.#submittedAt) / 1000);
    }
  }

  /** `finished`: the events ran to their end; `stopped`: the reader stopped early; `threw`: the backend broke. */
  end(ended: "finished" | "stopped" | "threw"): void {
    if (this.#waiting) this.#depth.waiting--;
    else if (this.#startedAt !== undefined) this.#depth.active--;
    const outcome: QueueJobOutcome =
      ended === "threw" ? "failed" : this.#rejected ? "rejected" : ended === "stopped" ? "cancelled" : this.#startedAt === undefined ? "failed" : "completed";
    this.#metrics.jobFinished(this.#depth.queue, outcome, this.#startedAt === undefined ? 0 : (metricsNow() - this.#startedAt) / 1000);
  }
}

async function* oneEvent(event: JobEvent): AsyncGenerator<JobEvent> {
  yield event;
}

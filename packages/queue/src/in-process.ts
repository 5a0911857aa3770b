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
 *
 * With metrics, it also tracks the job in its queue: waiting until its first
 * event (the llama engine sends `accepted` once a sequence is free), active
 * until its last. An `error` first is a rejection: it never ran. Only the
 * first event is looked at.
 */
class JobEvents implements AsyncIterableIterator<JobEvent> {
  readonly #start: () => AsyncIterator<JobEvent>;
  readonly #logger: Logger;
  readonly #metrics: QueueMetrics | undefined;
  readonly #depth: QueueDepth | undefined;
  /** Made at the first `next()`, as a generator would: a job nobody reads never starts. */
  #events: AsyncIterator<JobEvent> | undefined;
  #ended = false;
  /** Where the job is in its queue, for metrics (stays `untracked` without them). */
  #phase: "untracked" | "waiting" | "active" | "rejected" = "untracked";
  #submittedAt = 0;
  #startedAt = 0;

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
        if (this.#depth !== undefined) this.#submitted(this.#depth);
        this.#events = this.#start();
      }
      const result = await this.#events.next();
      if (result.done) this.#end("finished");
      else if (this.#phase === "waiting") this.#firstEvent(result.value);
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
    if (this.#phase !== "untracked") this.#left(how);
  }

  #submitted(depth: QueueDepth): void {
    this.#phase = "waiting";
    this.#submittedAt = metricsNow();
    depth.waiting++;
  }

  #firstEvent(event: JobEvent): void {
    const depth = this.#depth!;
    depth.waiting--;
    if (event.type === "error") {
      this.#phase = "rejected";
      return;
    }
    this.#phase = "active";
    this.#startedAt = metricsNow();
    depth.active++;
    this.#metrics!.jobStarted(depth.queue, (this.#startedAt - this.#submittedAt) / 1000);
  }

  /** `finished`: the events ran to their end; `stopped`: the reader stopped early; `threw`: the backend broke. */
  #left(how: "finished" | "stopped" | "threw"): void {
    const depth = this.#depth!;
    const phase = this.#phase;
    if (phase === "waiting") depth.waiting--;
    else if (phase === "active") depth.active--;
    const outcome: QueueJobOutcome =
      how === "threw" ? "failed" : phase === "rejected" ? "rejected" : how === "stopped" ? "cancelled" : phase === "active" ? "completed" : "failed";
    this.#metrics!.jobFinished(depth.queue, outcome, phase === "active" ? (metricsNow() - this.#startedAt) / 1000 : 0);
  }
}

async function* oneEvent(event: JobEvent): AsyncGenerator<JobEvent> {
  yield event;
}

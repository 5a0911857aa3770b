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
import type { Dispatcher, SubmitOptions } from "./dispatcher.js";

export interface InProcessDispatcherOptions {
  backends: Backend[];
  logger?: Logger;
}

/** The embedded default: jobs run on backends in this process, no Redis. */
export class InProcessDispatcher implements Dispatcher {
  readonly #backends: Backend[];
  readonly #logger: Logger;

  constructor(options: InProcessDispatcherOptions) {
    this.#backends = options.backends;
    this.#logger = options.logger ?? silentLogger;
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
      yield* backend.run(job, { signal, logger });
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
    await Promise.all(this.#backends.map((backend) => backend.close()));
  }
}

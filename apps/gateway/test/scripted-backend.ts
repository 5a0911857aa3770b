/**
 * A scripted backend for gateway tests: a real {@link Backend} implementation
 * whose answers are predetermined by the test (a script per job), run behind
 * the real `InProcessDispatcher`. It records every job and signal it saw.
 */
import type { Backend, Job, JobContext, JobEvent, JobSignal, ModelState } from "@switchboard/protocol";

/** Produces the events for one job. */
export type Script = (job: Job, context: JobContext) => AsyncIterable<JobEvent> | Iterable<JobEvent>;

export interface ScriptedBackendOptions {
  models: string[];
  script: Script;
  states?: () => ModelState[];
}

export class ScriptedBackend implements Backend {
  readonly name = "scripted";
  readonly jobs: Job[] = [];
  readonly signals: JobSignal[] = [];
  script: Script;
  readonly #models: string[];
  readonly #states: (() => ModelState[]) | undefined;

  constructor(options: ScriptedBackendOptions) {
    this.#models = options.models;
    this.script = options.script;
    this.#states = options.states;
  }

  models(): string[] {
    return this.#models;
  }

  modelStates(): ModelState[] {
    return this.#states?.() ?? this.#models.map((id) => ({ id, state: "ready" as const }));
  }

  async *run(job: Job, context: JobContext): AsyncIterable<JobEvent> {
    this.jobs.push(job);
    this.signals.push(context.signal);
    yield* this.script(job, context);
  }

  async close(): Promise<void> {}
}

/** `accepted`, one text delta per piece, `finish`: a complete generation for every prompt of the job. */
export function* textAnswer(job: Job, pieces: string[], finishReason: "stop" | "length" = "stop", promptTokens = 7): Iterable<JobEvent> {
  yield { type: "accepted", jobId: job.id, model: job.model, promptTokens };
  const choices = job.kind === "completion" ? job.prompts.length : 1;
  for (let index = 0; index < choices; index++) {
    for (const text of pieces) yield { type: "text-delta", index, text };
    yield { type: "finish", index, finishReason, completionTokens: pieces.length };
  }
}

/** Resolves when `signal` aborts. */
export function aborted(signal: JobSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

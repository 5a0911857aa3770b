/**
 * The router as an engine: a `Backend` that serves the model `router` by
 * running the HuggingGPT loop for each `orchestration` job. It calls its
 * LLMs and tasks through an injected `submit` (the process's dispatcher), so
 * the same code runs in the embedded gateway (in-process jobs) and in the
 * fleet's router worker (jobs on BullMQ, tasks on other workers).
 *
 * Events of a run: `accepted` once the run has started (a client plan that
 * does not validate, or a planner that is not loaded, is a single `error`
 * instead), then `progress` for each stage, `text-delta` for the answer, one
 * `run` with the record, and `finish` carrying the tokens every LLM call of
 * the run used (or an in-band `error` when no answer could be written).
 */
import { ROUTER_MODEL_ID, type RouterSettings, type SwitchboardConfig } from "@switchboard/catalog";
import {
  GatewayError,
  asGatewayError,
  invalidRequest,
  modelUnavailable,
  rateLimited,
  silentLogger,
  toAbortSignal,
  type Backend,
  type Job,
  type JobContext,
  type JobEvent,
  type Logger,
  type ModelState,
  type OrchestrationJob,
  type RouterRunRecord,
} from "@switchboard/protocol";
import { ModelHealth, liveCatalogView, measuredExecutor } from "./catalog-view.js";
import { createJobExecutor, type JobSubmit } from "./job-executor.js";
import { runOrchestration } from "./orchestration.js";
import { progressText } from "./progress-text.js";
import type { RunStore } from "./run-store.js";
import type { ChatLlm, CircuitState, OrchestrationConfig, OrchestrationMessage, OrchestrationObserver, ProgressEvent, RunRecord, TaskRecord } from "./types.js";

export interface RouterBackendOptions {
  config: Pick<SwitchboardConfig, "models" | "router">;
  /** Submits the run's LLM and task jobs: the dispatcher of this process. */
  submit: JobSubmit;
  /** Load state of every model some backend or worker serves now (`Dispatcher.modelStates`). */
  modelStates: () => Promise<ModelState[]>;
  runs: RunStore;
  observer?: OrchestrationObserver;
  /** Circuit state from an engine in this process; the router's own measurements count either way. */
  circuitOf?: (model: string) => CircuitState | undefined;
  logger?: Logger;
  /** Settings of a run beyond the config file's (token limits of each role, literal lengths). */
  orchestration?: Partial<OrchestrationConfig>;
  /**
   * The artifact store the engines read (`@switchboard/artifacts`): the
   * request's inline images and audio are stored there once, and tasks get
   * references. Without it, tasks get the bytes themselves.
   */
  artifacts?: { put(data: Uint8Array, mimeType: string): Promise<{ id: string }> };
}

/** How long a client is told to wait when every run slot of this process is busy. */
const BUSY_RETRY_AFTER_SECONDS = 2;

export class RouterBackend implements Backend {
  readonly name = "router";
  readonly #options: RouterBackendOptions;
  readonly #settings: RouterSettings;
  readonly #logger: Logger;
  readonly #health = new ModelHealth();
  readonly #running = new Set<AbortController>();
  #closed = false;

  constructor(options: RouterBackendOptions) {
    this.#options = options;
    this.#settings = options.config.router;
    this.#logger = options.logger ?? silentLogger;
  }

  models(): string[] {
    return [ROUTER_MODEL_ID];
  }

  modelStates(): ModelState[] {
    return [{ id: ROUTER_MODEL_ID, state: "ready" }];
  }

  /** What the router measured of the models it called (latency, errors, circuits). */
  get health(): ModelHealth {
    return this.#health;
  }

  async *run(job: Job, context: JobContext): AsyncIterable<JobEvent> {
    if (job.kind !== "orchestration") {
      yield errorEvent(invalidRequest("The router answers chat completions and /v1/orchestrations only.", "model", "model_not_supported"));
      return;
    }
    if (this.#closed) {
      yield errorEvent(modelUnavailable(ROUTER_MODEL_ID, "The router is shutting down.", 1));
      return;
    }
    if (this.#running.size >= this.#settings.concurrency) {
      yield errorEvent(rateLimited(`The router is running ${this.#running.size} runs, its limit; retry shortly.`, BUSY_RETRY_AFTER_SECONDS));
      return;
    }
    const states = await this.#options.modelStates().catch(() => [] as ModelState[]);
    const notReady = this.#rolesNotReady(states);
    if (notReady) {
      yield errorEvent(notReady);
      return;
    }
    yield* this.#run(job, context, states);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const controller of this.#running) controller.abort(new Error("the router is shutting down"));
  }

  async *#run(job: OrchestrationJob, context: JobContext, states: ModelState[]): AsyncGenerator<JobEvent> {
    const logger = context.logger ?? this.#logger;
    const controller = new AbortController();
    const signal = AbortSignal.any([toAbortSignal(context.signal), controller.signal]);
    this.#running.add(controller);
    const channel = new EventChannel();
    const usage = { promptTokens: 0, completionTokens: 0 };
    const submit = this.#options.submit;
    const llm = (model: string): ChatLlm => ({
      model,
      grammarEnforced: this.#options.config.models.find((candidate) => candidate.id === model)?.backend === "llama",
      submit: (chatJob, options) => countUsage(submit(chatJob, options), usage),
    });
    const settings = this.#settings;
    const live = new LiveRecord(this.#options.runs, logger);
    let started = false;

    const run = runOrchestration({
      messages: job.messages as OrchestrationMessage[],
      ...(job.dryRun ? { dryRun: true } : {}),
      ...(job.plan === undefined ? {} : { plan: job.plan }),
      signal,
      llm: { planner: llm(settings.planner), selector: llm(settings.selector), responder: llm(settings.responder) },
      executor: measuredExecutor(createJobExecutor({ submit }), this.#health),
      catalogView: liveCatalogView({
        models: this.#options.config.models,
        states,
        health: this.#health,
        ...(this.#options.circuitOf ? { circuitOf: this.#options.circuitOf } : {}),
      }),
      config: { ...this.#options.orchestration, maxTasks: settings.maxTasks, taskBudget: settings.maxTasks, topK: settings.topK, deadlineMs: settings.deadlineMs, maxReplans: settings.maxReplans },
      runId: job.id,
      requestId: job.requestId,
      ...(this.#options.observer ? { observer: this.#options.observer } : {}),
      ...(this.#options.artifacts ? { storeInput: storeIn(this.#options.artifacts) } : {}),
      onProgress: (event) => {
        if (event.type === "run-started") {
          started = true;
          channel.push({ type: "accepted", jobId: job.id, model: ROUTER_MODEL_ID, promptTokens: 0 });
          live.start(event.runId, job);
        } else if (event.type === "answer-delta") channel.push({ type: "text-delta", index: 0, text: event.text });
        else if (event.type !== "run-finished") {
          channel.push({ type: "progress", progress: event, text: progressText(event) });
          live.update(event);
        }
      },
    });

    run.then(
      async (record) => {
        await live.finish(record);
        channel.push({ type: "run", record: record as unknown as RouterRunRecord });
        if (record.status === "failed") channel.push(errorEvent(GatewayError.fromPayload(record.error ?? internalPayload())));
        else if (record.status !== "cancelled") channel.push({ type: "finish", index: 0, finishReason: "stop", completionTokens: usage.completionTokens, promptTokens: usage.promptTokens });
        channel.end();
      },
      (error: unknown) => {
        // Only a client plan that does not validate is thrown, before the run starts.
        if (started) logger.error({ err: error }, "router run failed");
        channel.push(errorEvent(asGatewayError(error)));
        channel.end();
      },
    );

    try {
      yield* channel.drain();
    } finally {
      // The reader stopped early (the client went away): stop the run too.
      controller.abort(new Error("the reader went away"));
      this.#running.delete(controller);
    }
  }

  /** A 503 when a role's model is not loaded anywhere now (a planner still downloading, no worker). */
  #rolesNotReady(states: readonly ModelState[]): GatewayError | undefined {
    const byId = new Map(states.map((state) => [state.id, state]));
    for (const role of ["planner", "selector", "responder"] as const) {
      const model = this.#settings[role];
      const state = byId.get(model);
      if (state?.state === "ready") continue;
      const why =
        state === undefined
          ? "no worker serves it now"
          : state.state === "downloading"
            ? `it is downloading (${Math.round((state.progress ?? 0) * 100)}%)`
            : state.state === "failed"
              ? `it failed to load: ${state.error ?? "unknown error"}`
              : "it is loading";
      const message = `The router's ${role} '${model}' is not available: ${why}. Retry later, or set router.${role} to a loaded chat model.`;
      // A model that failed to load will not come back by waiting: no Retry-After, as the engine answers for it (SDKs would sleep on it).
      if (state?.state === "failed") return new GatewayError(message, { status: 503, type: "service_unavailable_error", code: "model_unavailable", param: "model" });
      return modelUnavailable(ROUTER_MODEL_ID, message, 5);
    }
    return undefined;
  }
}

function storeIn(artifacts: NonNullable<RouterBackendOptions["artifacts"]>) {
  return async (data: Uint8Array, mimeType: string) => (await artifacts.put(data, mimeType)).id;
}

/** Passes a chat job's events through, adding its tokens to `usage`. */
async function* countUsage(events: AsyncIterable<JobEvent>, usage: { promptTokens: number; completionTokens: number }): AsyncGenerator<JobEvent> {
  let prompt = 0;
  try {
    for await (const event of events) {
      if (event.type === "accepted") prompt = event.promptTokens;
      else if (event.type === "finish") {
        usage.completionTokens += event.completionTokens;
        if (event.promptTokens !== undefined) prompt = event.promptTokens;
      }
      yield event;
    }
  } finally {
    usage.promptTokens += prompt;
  }
}

/**
 * The run record while the run goes on, built from its progress and written
 * to the store at each stage, so `GET /v1/orchestrations/{id}` and the
 * console show a running run's plan and task states. Writes are chained: a
 * slow store never reorders them, and a failing one is logged, not fatal.
 */
class LiveRecord {
  readonly #store: RunStore;
  readonly #logger: Logger;
  #record: RunRecord | undefined;
  #writes: Promise<void> = Promise.resolve();

  constructor(store: RunStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  start(runId: string, job: OrchestrationJob): void {
    this.#record = {
      id: runId,
      requestId: job.requestId,
      status: "running",
      createdAt: Date.now(),
      dryRun: job.dryRun === true,
      inputs: [],
      plan: [],
      planner: { source: job.plan === undefined ? "local" : "client", model: null, calls: 0, rejected: [], rejectedSteps: 0, truncatedSteps: 0, neutralisedLiterals: 0 },
      replans: 0,
      selections: [],
      tasks: [],
      answer: "",
      timings: {},
    };
    this.#write();
  }

  update(event: ProgressEvent): void {
    const record = this.#record;
    if (!record) return;
    switch (event.type) {
      case "plan":
        record.plan = event.plan;
        record.planner.source = event.source;
        record.replans = event.replans;
        record.tasks = event.plan.map((task): TaskRecord => ({ id: task.id, task: task.task, model: null, backend: null, status: "pending", artifacts: [] }));
        break;
      case "selection":
        record.selections.push(event.selection);
        break;
      case "task-started": {
        const task = record.tasks[event.taskId];
        if (task) Object.assign(task, { status: "running", model: event.model, startedAt: Date.now() });
        break;
      }
      case "task-finished": {
        const task = record.tasks[event.taskId];
        if (task) Object.assign(task, { status: event.status, finishedAt: Date.now(), ...(event.durationMs === undefined ? {} : { durationMs: event.durationMs }), ...(event.error ? { error: event.error } : {}) });
        break;
      }
      default:
        return;
    }
    this.#write();
  }

  async finish(record: RunRecord): Promise<void> {
    this.#record = record;
    this.#write();
    await this.#writes;
  }

  #write(): void {
    const snapshot = structuredClone(this.#record!);
    this.#writes = this.#writes.then(() => this.#store.save(snapshot)).catch((error: unknown) => this.#logger.warn({ err: error, runId: snapshot.id }, "could not store the run record"));
  }
}

/** A queue of events between the run's callbacks and the generator that yields them. */
class EventChannel {
  readonly #events: JobEvent[] = [];
  #ended = false;
  #wake: (() => void) | undefined;

  push(event: JobEvent): void {
    this.#events.push(event);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async *drain(): AsyncGenerator<JobEvent> {
    for (;;) {
      const event = this.#events.shift();
      if (event !== undefined) {
        yield event;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}

function errorEvent(error: GatewayError): JobEvent {
  return { type: "error", error: error.toPayload() };
}

function internalPayload() {
  return new GatewayError("The router could not write an answer.", { status: 500, type: "server_error", code: "router_failed" }).toPayload();
}

/**
 * The llama engine: serves chat, completion and embedding jobs from local GGUF
 * models through node-llama-cpp. Models load in the background; each has one
 * context whose sequences are handed to jobs through a bounded line.
 */
import { availableParallelism } from "node:os";
import { getLlama, LlamaLogLevel, type Llama, type LlamaOptions } from "node-llama-cpp";
import type { LlamaModelConfig } from "@switchboard/catalog";
import {
  GatewayError,
  asGatewayError,
  modelNotFound,
  invalidRequest,
  joinTextDeltas,
  metricsNow,
  modelUnavailable,
  rateLimited,
  silentLogger,
  type Backend,
  type Job,
  type JobContext,
  type JobEvent,
  type Logger,
  type ModelState,
} from "@switchboard/protocol";
import { planChat } from "./chat-job.js";
import { planCompletion } from "./completion-job.js";
import { planEmbedding } from "./embedding-job.js";
import { EventChannel } from "./event-channel.js";
import type { JobPlan, JobUsage } from "./job-plan.js";
import type { LlamaEngineMetrics } from "./engine-metrics.js";
import { ModelRuntime, safeErrorMessage, type CheckModelFile, type ResolveModelPath } from "./model-runtime.js";

/** Which llama.cpp build to use: CPU only, or a GPU backend node-llama-cpp ships. */
export type LlamaGpu = false | "auto" | "cuda" | "vulkan" | "metal";

export interface LlamaBackendOptions {
  models: LlamaModelConfig[];
  /** Finds (downloads, generates) a model's GGUF file and reports progress. */
  resolvePath: ResolveModelPath;
  /** Checks a file before it is loaded in this process; throw to refuse it. */
  checkFile?: CheckModelFile;
  logger?: Logger;
  /** A Llama to use instead of the shared one (tests, embedding hosts). */
  llama?: Llama;
  /**
   * GPU backend for the shared Llama; `false` (default) is CPU only, which
   * loads fast and never tries to compile. Ignored when `llama` is given.
   */
  gpu?: LlamaGpu;
  /**
   * Contexts each model's sequences are spread over. Each context decodes on
   * its own thread: with one thread per context (the fast setting on small
   * shared-vCPU hosts) two contexts decode about 1.6x the tokens of one on
   * 2 vCPUs. `"auto"` (default): one per CPU (per `threads` CPUs), at most one
   * per sequence, and one on a GPU.
   */
  contextsPerModel?: number | "auto";
  /** Where model load times go (`createMetrics().llama`); nothing is recorded without it. */
  metrics?: LlamaEngineMetrics;
}

/** Seconds a client is told to wait while a model is still loading. */
const loadingRetryAfterSeconds = 5;
/** ... and while it is still downloading. */
const downloadingRetryAfterSeconds = 15;

export class LlamaBackend implements Backend {
  readonly name = "llama";
  readonly #runtimes = new Map<string, ModelRuntime>();
  readonly #options: LlamaBackendOptions;
  readonly #logger: Logger;
  /** Every running job's abort, so close() can stop them. */
  readonly #running = new Set<{ stop: (cause: AbortCause) => void; done: Promise<void> }>();
  #loading: Promise<void> | undefined;
  #closed = false;

  constructor(options: LlamaBackendOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    for (const config of options.models) this.#runtimes.set(config.id, new ModelRuntime(config));
  }

  models(): string[] {
    return [...this.#runtimes.keys()];
  }

  modelStates(): ModelState[] {
    return [...this.#runtimes.values()].map((runtime) => runtime.state);
  }

  /**
   * Sequences in use, jobs waiting and context tokens held, per loaded model
   * (for metrics and tests). `contextTokens` counts every token in the KV
   * cache: running jobs' prompts and outputs, and the tokens idle sequences
   * keep for reuse (`cachedContextTokens`).
   */
  queueStates(): {
    id: string;
    sequences: number;
    free: number;
    waiting: number;
    contextTokens: number;
    cachedContextTokens: number;
    contextCapacity: number;
  }[] {
    return [...this.#runtimes.values()]
      .filter((runtime) => runtime.state.state === "ready")
      .map((runtime) => ({
        id: runtime.config.id,
        sequences: runtime.sequences.size,
        free: runtime.sequences.freeCount,
        waiting: runtime.sequences.waitingCount,
        contextTokens: runtime.contextTokensInUse(),
        cachedContextTokens: runtime.cachedContextTokens(),
        contextCapacity: runtime.contextSize * runtime.sequences.size,
      }));
  }

  /** Begins loading every model in the background, one at a time; returns at once. */
  start(): void {
    if (this.#loading || this.#closed) return;
    this.#loading = this.#loadAll();
  }

  /** Resolves with a model's state once it is ready or has failed (starts loading if needed). */
  async whenReady(modelId: string): Promise<ModelState> {
    const runtime = this.#runtimes.get(modelId);
    if (!runtime) throw new Error(`unknown model '${modelId}'`);
    this.start();
    await runtime.settled;
    return runtime.state;
  }

  async *run(job: Job, context: JobContext): AsyncIterable<JobEvent> {
    const { logger } = context;
    const runtime = this.#runtimes.get(job.model);
    if (!runtime) {
      yield errorEvent(modelNotFound(job.model));
      return;
    }
    const unavailable = this.#unavailable(runtime);
    if (unavailable) {
      yield errorEvent(unavailable);
      return;
    }

    // Every check that can fail happens here, before the job waits for a slot.
    let plan: JobPlan<unknown>;
    try {
      plan = (await planJob(job, runtime)) as JobPlan<unknown>;
    } catch (error) {
      yield errorEvent(this.#toGatewayError(error, logger, "job rejected before generation"));
      return;
    }

    const abort = new AbortController();
    let abortCause: AbortCause | undefined;
    const stop = (cause: AbortCause) => {
      abortCause ??= cause;
      abort.abort();
    };
    const onClientAbort = () => stop("client");
    if (context.signal.aborted) stop("client");
    else context.signal.addEventListener("abort", onClientAbort, { once: true });
    let deadlineTimer: NodeJS.Timeout | undefined;
    if (job.deadlineAt !== undefined) {
      const remaining = job.deadlineAt - Date.now();
      if (remaining <= 0) stop("deadline");
      else deadlineTimer = setTimeout(() => stop("deadline"), remaining);
    }
    const running = { stop, done: Promise.resolve() };
    this.#running.add(running);
    const cleanup = () => {
      context.signal.removeEventListener("abort", onClientAbort);
      if (deadlineTimer) clearTimeout(deadlineTimer);
      this.#running.delete(running);
    };

    const waitStarted = metricsNow();
    const acquired = await plan.pool.acquire(abort.signal, plan.affinity);
    if (!("slot" in acquired)) {
      cleanup();
      if (acquired.reason === "full") {
        logger.debug({ retryAfterSeconds: acquired.retryAfterSeconds }, "waiting line full");
        yield errorEvent(
          rateLimited(
            `The model '${job.model}' is busy: every sequence is in use and the waiting line is full. Retry after ${acquired.retryAfterSeconds} s.`,
            acquired.retryAfterSeconds,
          ),
        );
      } else if (acquired.reason === "closed" || abortCause === "closing") {
        yield errorEvent(modelUnavailable(job.model, "The server is shutting down.", loadingRetryAfterSeconds));
      } else {
        yield errorEvent(abortError(abortCause));
      }
      return;
    }
    const slot = acquired.slot;
    const waitedMs = metricsNow() - waitStarted;

    const channel = new EventChannel<JobEvent>({ coalesce: coalesceDeltas });
    const started = metricsNow();
    let finishes = 0;
    // For metrics: output tokens, and the times of the first output and the last finish.
    const metrics = this.#options.metrics;
    let completionTokens = 0;
    let firstOutputAt: number | undefined;
    let lastFinishAt: number | undefined;
    let outcome: "completed" | "failed" | "cancelled" = "completed";
    const usage: JobUsage = { reusedPromptTokens: 0 };
    const emit = (event: JobEvent) => {
      if (event.type === "finish") {
        finishes++;
        completionTokens += event.completionTokens;
        if (metrics) lastFinishAt = metricsNow();
      } else if (metrics && firstOutputAt === undefined) firstOutputAt = metricsNow();
      channel.push(event);
    };
    running.done = (async () => {
      try {
        await plan.execute(slot, emit, abort.signal, usage);
        // Stopped before every choice finished: say why (the reader may still be there, e.g. a deadline).
        if (abort.signal.aborted && finishes < plan.choices) {
          outcome = abortCause === "client" ? "cancelled" : "failed";
          channel.push(errorEvent(abortError(abortCause)));
        }
        logger.debug(
          {
            waitedMs: Math.round(waitedMs),
            generationMs: Math.round(metricsNow() - started),
            reusedPromptTokens: usage.reusedPromptTokens,
            aborted: abortCause,
          },
          "job finished",
        );
      } catch (error) {
        outcome = abort.signal.aborted && abortCause === "client" ? "cancelled" : "failed";
        channel.push(errorEvent(abort.signal.aborted ? abortError(abortCause) : this.#toGatewayError(error, logger, "generation failed")));
      } finally {
        metrics?.jobFinished({
          model: job.model,
          kind: job.kind,
          outcome,
          promptTokens: plan.promptTokens,
          reusedPromptTokens: usage.reusedPromptTokens,
          completionTokens,
          seconds: (metricsNow() - started) / 1000,
          ...(firstOutputAt !== undefined && lastFinishAt !== undefined ? { decodeSeconds: (lastFinishAt - firstOutputAt) / 1000 } : {}),
        });
        channel.close();
        try {
          // After a failure or an abort the sequence's state is not trusted: only a clean end keeps it.
          await plan.reset(slot, outcome === "completed");
        } catch (error) {
          logger.warn({ err: error }, "could not reset the sequence after a job");
        }
        plan.pool.release(slot);
        cleanup();
      }
    })();

    try {
      yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: plan.promptTokens, worker: this.name };
      yield* channel;
    } finally {
      // Done, or the reader stopped early (client gone, transport closing): either way stop generating.
      stop("client");
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const runtime of this.#runtimes.values()) runtime.closePools();
    for (const running of this.#running) running.stop("closing");
    await Promise.allSettled([...this.#running].map((running) => running.done));
    // A model still loading (or stuck downloading) is not awaited: it disposes itself when its load returns.
    await Promise.all([...this.#runtimes.values()].map((runtime) => runtime.dispose()));
  }

  async #loadAll(): Promise<void> {
    let llama: Llama;
    try {
      llama = this.#options.llama ?? (await sharedLlama(this.#options.gpu ?? false, this.#logger));
    } catch (error) {
      this.#logger.error({ err: error }, "llama.cpp could not start");
      for (const runtime of this.#runtimes.values()) runtime.fail(`llama.cpp could not start: ${safeErrorMessage(error)}`);
      return;
    }
    const gpu = (this.#options.gpu ?? false) !== false;
    // One at a time: loading is CPU and disk bound, and the first model becomes usable sooner.
    for (const runtime of this.#runtimes.values()) {
      if (this.#closed) break;
      const setting = this.#options.contextsPerModel ?? "auto";
      const contexts = setting !== "auto" ? setting : gpu ? 1 : Math.max(1, Math.floor(availableParallelism() / Math.max(1, runtime.config.threads)));
      await runtime.load({ llama, resolvePath: this.#options.resolvePath, checkFile: this.#options.checkFile, logger: this.#logger, gpu, contexts, metrics: this.#options.metrics });
    }
  }

  #unavailable(runtime: ModelRuntime): GatewayError | undefined {
    const state = runtime.state;
    switch (state.state) {
      case "ready":
        return this.#closed ? modelUnavailable(runtime.config.id, "The server is shutting down.", loadingRetryAfterSeconds) : undefined;
      case "downloading": {
        const percent = state.progress === undefined ? "" : ` (${Math.floor(state.progress * 100)}%)`;
        return modelUnavailable(runtime.config.id, `The model '${runtime.config.id}' is still downloading${percent}.`, downloadingRetryAfterSeconds);
      }
      case "loading":
        return modelUnavailable(runtime.config.id, `The model '${runtime.config.id}' is still loading.`, loadingRetryAfterSeconds);
      case "failed":
        return new GatewayError(`The model '${runtime.config.id}' failed to load: ${state.error ?? "unknown error"}`, {
          status: 503,
          type: "service_unavailable_error",
          code: "model_unavailable",
          param: "model",
        });
    }
  }

  #toGatewayError(error: unknown, logger: Logger, message: string): GatewayError {
    if (error instanceof GatewayError) {
      if (error.cause !== undefined) logger.warn({ err: error.cause }, message);
      return error;
    }
    logger.error({ err: error }, message);
    return asGatewayError(error);
  }
}

function planJob(job: Job, runtime: ModelRuntime): Promise<JobPlan<unknown>> | JobPlan<unknown> {
  switch (job.kind) {
    case "chat":
      return planChat(job, runtime) as Promise<JobPlan<unknown>>;
    case "completion":
      return planCompletion(job, runtime) as JobPlan<unknown>;
    case "embedding":
      return planEmbedding(job, runtime) as Promise<JobPlan<unknown>>;
    case "task":
      throw invalidRequest(`The model '${job.model}' is a local language model; it does not run '${job.task}' tasks.`, "model", "model_not_supported");
    case "orchestration":
      throw invalidRequest(`The model '${job.model}' is a local language model, not the router.`, "model", "model_not_supported");
  }
}

function errorEvent(error: GatewayError): JobEvent {
  return { type: "error", error: error.toPayload() };
}

type AbortCause = "client" | "deadline" | "closing";

function abortError(cause: AbortCause | undefined): GatewayError {
  if (cause === "deadline")
    return new GatewayError("The request passed its deadline before it finished.", { status: 408, type: "timeout_error", code: "deadline_exceeded" });
  if (cause === "closing")
    return new GatewayError("The server is shutting down.", { status: 503, type: "service_unavailable_error", code: "server_shutting_down" });
  return new GatewayError("The request was cancelled.", { status: 499, type: "invalid_request_error", code: "request_cancelled" });
}

/** Joins waiting text deltas of one choice (and argument deltas of one call) so a slow reader holds few events. */
function coalesceDeltas(last: JobEvent, next: JobEvent): JobEvent | undefined {
  if (last.type === "text-delta" && next.type === "text-delta" && last.index === next.index)
    return joinTextDeltas(last, next);
  if (
    last.type === "tool-call-delta" &&
    next.type === "tool-call-delta" &&
    next.id === undefined &&
    last.index === next.index &&
    last.toolCallIndex === next.toolCallIndex
  )
    return { ...last, argumentsDelta: last.argumentsDelta + next.argumentsDelta };
  return undefined;
}

// One Llama per process and GPU setting: llama.cpp's backend is process-wide state.
const sharedLlamas = new Map<string, Promise<Llama>>();
const llamaLogSinks = new Set<Logger>();

function sharedLlama(gpu: LlamaGpu, logger: Logger): Promise<Llama> {
  llamaLogSinks.add(logger);
  const key = String(gpu);
  let llama = sharedLlamas.get(key);
  if (!llama) {
    const options: LlamaOptions = {
      gpu,
      // Never compile at run time: a broken prebuilt binary must fail loudly.
      build: "never",
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (text.length === 0) return;
        for (const sink of llamaLogSinks) {
          // llama.cpp warnings are mostly about model metadata quirks: keep them out of the operator's way.
          if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) sink.warn({ llamaCpp: text }, "llama.cpp error");
          else sink.debug({ llamaCpp: text }, "llama.cpp");
        }
      },
    };
    llama = getLlama(options);
    llama.catch(() => sharedLlamas.delete(key));
    sharedLlamas.set(key, llama);
  }
  return llama;
}

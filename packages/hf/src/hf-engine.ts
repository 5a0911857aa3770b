/**
 * The Hugging Face engine: remote specialist models reached through an
 * injected `@huggingface/inference` client. Every call goes through
 * {@link HfEngine.guard}: the model's circuit is checked, a per-call owned
 * fetch is made (budget, retries, bounded reads, address rewriting), the task
 * function runs, its output is checked against the task's schema, and any
 * failure becomes a GatewayError that names the model. The engine knows
 * nothing of HTTP routes or queues.
 */
import {
  InferenceClient,
  InferenceClientHubApiError,
  InferenceClientInputError,
  InferenceClientProviderApiError,
  InferenceClientProviderOutputError,
  InferenceClientRoutingError,
} from "@huggingface/inference";
import {
  GatewayError,
  TaskOutputSchemas,
  invalidRequest,
  silentLogger,
  type Logger,
  type ModelState,
  type TaskInputs,
  type TaskName,
  type TaskOutput,
  type TaskParameters,
} from "@switchboard/protocol";
import { servesTask } from "@switchboard/catalog";
import { Value } from "typebox/value";
import { resolveBinaryInput, type ArtifactResolver } from "./binary-data.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import { lazyChild } from "./lazy-logger.js";
import type { HfUpstreamMetrics } from "./hf-metrics.js";
import type { HfModelConfig, HuggingFaceSettings } from "./hf-settings.js";
import { TASK_RESPONSE_BODY, TASK_RUNNERS, normalizeEmbeddings, type HfCallArgs, type TaskCall } from "./task-runners.js";
import {
  CallCancelledError,
  circuitOpen,
  countsAsModelFailure,
  redactSecrets,
  upstreamBadResponse,
  upstreamFailed,
  upstreamTimeout,
} from "./upstream-errors.js";
import { UpstreamFetch, type ExpectedBody } from "./upstream-fetch.js";
import type { ResolvedAddress } from "./user-url.js";

/** Chat request in the client's (OpenAI-compatible) shape, `model` excluded. */
export type HfChatRequest = Omit<Parameters<InferenceClient["chatCompletion"]>[0], "model" | "endpointUrl" | "provider" | "accessToken">;
export type HfChatOutput = Awaited<ReturnType<InferenceClient["chatCompletion"]>>;
export type HfChatChunk = ReturnType<InferenceClient["chatCompletionStream"]> extends AsyncGenerator<infer Chunk> ? Chunk : never;

export interface HfEngineOptions {
  settings: HuggingFaceSettings;
  models: readonly HfModelConfig[];
  /** The client; a token-less `new InferenceClient()` by default (the engine passes the token per call). */
  client?: InferenceClient;
  logger?: Logger;
  /** The network under the owned fetch (tests, benchmarks); `globalThis.fetch` by default. */
  transport?: typeof fetch;
  /** Backoff jitter source in [0, 1). */
  random?: () => number;
  now?: () => number;
  /** Resolves `{type: "artifact"}` inputs; without it they are refused. */
  resolveArtifact?: ArtifactResolver;
  /** Name resolution for user-supplied URLs (tests); the system resolver by default. */
  resolveHost?: (hostname: string) => Promise<ResolvedAddress[]>;
  /** Upstream latency, errors and retries (`createMetrics().hf`); nothing is recorded without it. */
  metrics?: HfUpstreamMetrics;
}

/** Per-call context: the caller's signal and logger, and the job's deadline. */
export interface HfCallContext {
  signal?: AbortSignal;
  logger?: Logger;
  /** Epoch milliseconds; the call's budget is cut to fit. */
  deadlineAt?: number;
}

/** Providers whose task helpers make every request through the client's `fetch` option. */
const CHAT_ONLY_PROVIDERS_NOTE = "providers other than hf-inference are supported for conversational models only";

function isHuggingFaceEndpoint(url: string): boolean {
  try {
    return new URL(url).hostname.endsWith(".endpoints.huggingface.cloud");
  } catch {
    return false;
  }
}

/** Problems with the remote model entries, by model id; empty when the configuration is usable. */
export function checkHfModels(models: readonly HfModelConfig[]): string[] {
  const problems: string[] = [];
  for (const model of models) {
    const where = `model '${model.id}'`;
    if (model.provider && model.endpointUrl) problems.push(`${where}: set provider or endpointUrl, not both`);
    if (model.provider && model.provider !== "hf-inference" && model.task !== "conversational") problems.push(`${where}: ${CHAT_ONLY_PROVIDERS_NOTE}`);
    if (model.provider === "auto" && model.task !== "conversational") problems.push(`${where}: provider 'auto' is for chat models`);
    if (model.endpointUrl && !/^https?:\/\//.test(model.endpointUrl)) problems.push(`${where}: endpointUrl must be an http(s) URL`);
    if (!(model.timeoutMs > 0)) problems.push(`${where}: timeoutMs must be positive`);
  }
  return problems;
}

export class HfEngine {
  readonly upstream: UpstreamFetch;
  readonly breaker: CircuitBreaker;
  private readonly client: InferenceClient;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly byId = new Map<string, HfModelConfig>();
  /** Models that said they are loading, until when (epoch ms). */
  private readonly loadingUntil = new Map<string, number>();

  constructor(private readonly options: HfEngineOptions) {
    const problems = checkHfModels(options.models);
    if (problems.length) throw new Error(`Invalid Hugging Face model configuration: ${problems.join("; ")}`);
    this.client = options.client ?? new InferenceClient();
    this.logger = options.logger ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.upstream = new UpstreamFetch(options.settings, {
      ...(options.transport ? { transport: options.transport } : {}),
      ...(options.random ? { random: options.random } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      now: this.now,
    });
    this.breaker = new CircuitBreaker({
      failureThreshold: options.settings.circuitFailureThreshold,
      coolDownMs: options.settings.circuitCoolDownMs,
      now: this.now,
    });
    for (const model of options.models) {
      this.byId.set(model.id, model);
      for (const alias of model.aliases) if (!this.byId.has(alias)) this.byId.set(alias, model);
    }
  }

  /** Closes the upstream connections (in-flight calls finish first). */
  close(): Promise<void> {
    return this.upstream.close();
  }

  /** The model entry for a catalog id or alias. */
  model(id: string): HfModelConfig | undefined {
    return this.byId.get(id);
  }

  models(): HfModelConfig[] {
    return [...this.options.models];
  }

  modelState(id: string): ModelState {
    const circuit = this.breaker.state(id);
    if (circuit === "open") return { id, state: "failed", error: "Out of rotation after repeated upstream failures; it will be probed again." };
    if ((this.loadingUntil.get(id) ?? 0) > this.now()) return { id, state: "loading" };
    return { id, state: "ready" };
  }

  private require(id: string, task?: TaskName): HfModelConfig {
    const model = this.byId.get(id);
    if (!model) throw new GatewayError(`The model '${id}' does not exist.`, { status: 404, type: "invalid_request_error", code: "model_not_found", param: "model" });
    if (task && !servesTask(model, task)) {
      throw invalidRequest(`The model '${id}' serves ${model.task}, not ${task}.`, "model", "model_task_mismatch");
    }
    return model;
  }

  /** Where the model is and whether it gets the token. */
  callArgs(model: HfModelConfig): HfCallArgs {
    const sendToken = model.sendToken ?? (!model.endpointUrl || isHuggingFaceEndpoint(model.endpointUrl));
    return {
      model: model.model,
      ...(model.endpointUrl ? { endpointUrl: model.endpointUrl } : { provider: model.provider ?? "hf-inference" }),
      ...(sendToken && this.options.settings.token ? { accessToken: this.options.settings.token } : {}),
    };
  }

  private budget(model: HfModelConfig, context: HfCallContext): number {
    const left = context.deadlineAt === undefined ? Infinity : context.deadlineAt - this.now();
    return Math.min(model.timeoutMs, left);
  }

  private makeCall(model: HfModelConfig, expect: ExpectedBody, timeoutMs: number, context: HfCallContext, onStreamRead?: () => void): TaskCall {
    const logger = lazyChild(context.logger ?? this.logger, { model: model.id, backend: "hf" });
    const fetch = this.upstream.forCall({
      model: model.id,
      ...(model.endpointUrl ? { endpointUrl: model.endpointUrl } : {}),
      timeoutMs,
      ...(context.signal ? { signal: context.signal } : {}),
      expect,
      logger,
      provider: model.endpointUrl ? "endpoint" : (model.provider ?? "hf-inference"),
      ...(onStreamRead ? { onStreamRead } : {}),
    });
    const args = this.callArgs(model);
    const userUrls = this.options.settings.userUrls;
    return {
      client: this.client,
      args,
      options: { fetch, retry_on_error: false, ...(context.signal ? { signal: context.signal } : {}) },
      directUrl: model.endpointUrl ?? this.upstream.routerModelUrl(model.model),
      model: model.id,
      binary: (input, kind, param) =>
        resolveBinaryInput(input, kind, param, {
          userUrls: {
            allowList: userUrls.allowList,
            maxBytes: userUrls.maxBytes,
            timeoutMs: userUrls.timeoutMs,
            ...(this.options.resolveHost ? { resolve: this.options.resolveHost } : {}),
          },
          ...(this.options.resolveArtifact ? { resolveArtifact: this.options.resolveArtifact } : {}),
          ...(context.signal ? { signal: context.signal } : {}),
        }),
    };
  }

  /** Turns whatever a call threw into a GatewayError that names the model (or a cancellation). */
  private mapError(error: unknown, model: HfModelConfig, context: HfCallContext): Error {
    if (error instanceof CallCancelledError) return error;
    if (context.signal?.aborted) return new CallCancelledError();
    if (error instanceof GatewayError) return error;
    const logger = context.logger ?? this.logger;
    const name = error instanceof Error ? error.name : typeof error;
    const detail = redactSecrets(error instanceof Error ? error.message : String(error), [this.options.settings.token]).slice(0, 500);
    logger.warn({ model: model.id, backend: "hf", error: name, detail }, "Hugging Face client error");
    if (error instanceof InferenceClientProviderOutputError) return upstreamBadResponse(model.id, "the answer does not have the shape its task requires");
    if (error instanceof SyntaxError) return upstreamBadResponse(model.id, "malformed JSON");
    if (error instanceof InferenceClientHubApiError) return upstreamFailed(model.id, "the Hugging Face Hub has no usable inference provider mapping for it");
    if (error instanceof InferenceClientInputError || error instanceof InferenceClientRoutingError) {
      return upstreamFailed(model.id, "the Hugging Face client refused the call; check the model's provider, task and endpoint configuration");
    }
    if (error instanceof InferenceClientProviderApiError) return upstreamFailed(model.id, "the upstream server reported an error");
    if (error instanceof Error && error.name === "AbortError") return upstreamTimeout(model.id, model.timeoutMs);
    return upstreamFailed(model.id, "the call failed unexpectedly");
  }

  private settle(model: HfModelConfig, error: unknown | undefined): void {
    if (error === undefined) {
      this.breaker.success(model.id);
      this.loadingUntil.delete(model.id);
      return;
    }
    if (error instanceof GatewayError && error.code === "model_unavailable" && error.retryAfterSeconds !== undefined) {
      // Circuit-open refusals never get here (they are raised before a call starts): this is "loading".
      this.loadingUntil.set(model.id, this.now() + error.retryAfterSeconds * 1000);
    }
    if (countsAsModelFailure(error)) this.breaker.failure(model.id);
    else this.breaker.release(model.id);
  }

  private admit(model: HfModelConfig, context: HfCallContext): number {
    if (context.signal?.aborted) throw new CallCancelledError();
    const timeoutMs = this.budget(model, context);
    if (timeoutMs <= 0) throw upstreamTimeout(model.id, model.timeoutMs);
    const ticket = this.breaker.acquire(model.id);
    if (!ticket.allowed) throw circuitOpen(model.id, Math.max(1, Math.ceil(ticket.retryAfterMs / 1000)));
    return timeoutMs;
  }

  /** Runs one non-streaming call under the model's circuit, budget and error mapping. */
  private async guard<T>(model: HfModelConfig, expect: ExpectedBody, context: HfCallContext, run: (call: TaskCall) => Promise<T>): Promise<T> {
    const timeoutMs = this.admit(model, context);
    try {
      const result = await run(this.makeCall(model, expect, timeoutMs, context));
      this.settle(model, undefined);
      return result;
    } catch (error) {
      const mapped = this.mapError(error, model, context);
      this.settle(model, mapped);
      throw mapped;
    }
  }

  /**
   * Runs a task on a model (catalog id or alias) and returns the task's
   * output, checked against its schema. Throws GatewayErrors (400 for bad
   * inputs, 502/503/504 for upstream trouble) or CallCancelledError.
   */
  async runTask<T extends TaskName>(id: string, task: T, inputs: TaskInputs<T>, parameters: TaskParameters<T> | undefined, context: HfCallContext = {}): Promise<TaskOutput<T>> {
    const model = this.require(id, task);
    const runner = TASK_RUNNERS[task] as (call: TaskCall, inputs: TaskInputs<T>, parameters: TaskParameters<T> | undefined) => Promise<unknown>;
    return this.guard(model, TASK_RESPONSE_BODY[task], context, async (call) => {
      const output = await runner(call, inputs, parameters);
      const schema = TaskOutputSchemas[task];
      if (!Value.Check(schema, output)) {
        const first = [...Value.Errors(schema, output)][0];
        (context.logger ?? this.logger).warn({ model: model.id, task, path: first?.instancePath, problem: first?.message }, "upstream output does not match the task schema");
        throw upstreamBadResponse(model.id, `the answer does not have the shape ${task} requires`);
      }
      return output as TaskOutput<T>;
    });
  }

  /** One chat completion, not streamed. */
  async chatCompletion(id: string, request: HfChatRequest, context: HfCallContext = {}): Promise<HfChatOutput> {
    const model = this.require(id, "conversational");
    return this.guard(model, "json", context, async (call) => {
      const output = await call.client.chatCompletion({ ...call.args, ...request } as Parameters<InferenceClient["chatCompletion"]>[0], call.options);
      if (!output || !Array.isArray(output.choices) || output.choices.length === 0 || !output.choices.every((choice) => choice && typeof choice.message === "object")) {
        throw upstreamBadResponse(model.id, "a chat completion without choices");
      }
      return output;
    });
  }

  /**
   * A streamed chat completion. Upstream errors before the first chunk are
   * thrown from the first `next()`, so callers can still answer them as plain
   * HTTP errors.
   */
  async *chatCompletionStream(id: string, request: HfChatRequest, context: HfCallContext = {}): AsyncGenerator<HfChatChunk> {
    for await (const batch of this.chatCompletionBatches(id, request, context)) yield* batch;
  }

  /**
   * A streamed chat completion in batches: the chunks the client parsed from
   * the same network read come together (a fast upstream sends many to a
   * packet; a model that writes token by token gives batches of one, with no
   * wait). Each event that crosses the job layers costs the same however
   * much text it carries, so this is the cheap way to pass a stream on. Same
   * errors as {@link chatCompletionStream}.
   */
  async *chatCompletionBatches(id: string, request: HfChatRequest, context: HfCallContext = {}): AsyncGenerator<HfChatChunk[]> {
    const model = this.require(id, "conversational");
    const timeoutMs = this.admit(model, context);
    // Our own stop, for a consumer that leaves early without its signal firing.
    const stop = new AbortController();
    const signal = context.signal ? AbortSignal.any([context.signal, stop.signal]) : stop.signal;
    const batches = new ChunkBatches<HfChatChunk>();
    const call = this.makeCall(model, "stream", timeoutMs, { ...context, signal }, () => batches.cut());
    let failure: unknown;
    let finished = false;
    // The client runs ahead in its own loop; a batch is cut whenever it asks the network for more.
    const pump = (async () => {
      const stream = call.client.chatCompletionStream({ ...call.args, ...request } as Parameters<InferenceClient["chatCompletionStream"]>[0], call.options);
      let sawFinish = false;
      for await (const chunk of stream) {
        if (!chunk || typeof chunk !== "object" || !Array.isArray(chunk.choices)) throw upstreamBadResponse(model.id, "a stream event that is not a chat completion chunk");
        if (chunk.choices.some((choice) => choice?.finish_reason)) sawFinish = true;
        batches.push(chunk);
        await batches.room();
      }
      // The client drops a cut-off last event silently; a stream must end with a finish reason.
      if (!sawFinish) throw upstreamBadResponse(model.id, "the stream ended before the answer was finished");
    })().then(
      () => batches.end(),
      (error: unknown) => batches.fail(error),
    );
    try {
      for (;;) {
        const batch = await batches.take();
        if (batch === undefined) break;
        yield batch;
      }
      finished = true;
    } catch (error) {
      failure = this.mapError(error, model, { ...context, signal });
      throw failure;
    } finally {
      if (!finished && failure === undefined) stop.abort();
      void pump;
      // A consumer that stops early settles nothing about the model's health.
      if (failure !== undefined) this.settle(model, failure);
      else if (finished) this.settle(model, undefined);
      else this.breaker.release(model.id);
    }
  }

  /** Embeddings, one vector per text (feature extraction; TEI's `[[...]]` for one text is handled). */
  async featureExtraction(id: string, texts: string[], context: HfCallContext = {}): Promise<number[][]> {
    const model = this.require(id, "feature-extraction");
    return this.guard(model, "json", context, async (call) => {
      const output = await call.client.featureExtraction({ ...call.args, inputs: texts } as Parameters<InferenceClient["featureExtraction"]>[0], call.options);
      return normalizeEmbeddings(call, output, texts.length);
    });
  }
}

/**
 * Chunks handed from a producer loop to a consumer in batches: `push` adds to
 * the open batch, `cut` closes it (the producer is about to wait on the
 * network), `take` gives the next closed batch or waits for one. The
 * producer waits (`room`) while several batches are unread.
 */
class ChunkBatches<T> {
  #open: T[] = [];
  readonly #ready: T[][] = [];
  #done = false;
  #error: { error: unknown } | undefined;
  #wake: (() => void) | undefined;
  #roomWaiter: (() => void) | undefined;

  push(item: T): void {
    this.#open.push(item);
  }

  cut(): void {
    if (this.#open.length === 0) return;
    this.#ready.push(this.#open);
    this.#open = [];
    this.#wake?.();
  }

  end(): void {
    this.cut();
    this.#done = true;
    this.#wake?.();
  }

  fail(error: unknown): void {
    this.cut();
    this.#error = { error };
    this.#done = true;
    this.#wake?.();
  }

  /** Resolves at once unless several batches wait to be read. */
  room(): Promise<void> | undefined {
    if (this.#ready.length < 8) return undefined;
    return new Promise((resolve) => (this.#roomWaiter = resolve));
  }

  async take(): Promise<T[] | undefined> {
    for (;;) {
      const batch = this.#ready.shift();
      if (batch) {
        this.#roomWaiter?.();
        this.#roomWaiter = undefined;
        return batch;
      }
      // Events delivered before a failure still go out first; then the failure.
      if (this.#error) throw this.#error.error;
      if (this.#done) return undefined;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }
}

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
  lazyChild,
  silentLogger,
  toAbortSignal,
  type JobSignal,
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
import { ChunkReader } from "./chunk-reader.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import { buildsEndpointChat, endpointChatBody, endpointChatHeaders, endpointChatUrl } from "./endpoint-chat.js";
import { EventStreamParser } from "./event-stream.js";
import type { HfUpstreamMetrics } from "./hf-metrics.js";
import { HUGGING_FACE_HUB_URL, type HfModelConfig, type HuggingFaceSettings } from "./hf-settings.js";
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
import { UpstreamFetch, type ExpectedBody, type UpstreamCall } from "./upstream-fetch.js";
import type { ChunkSource } from "./upstream-network.js";
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
  signal?: JobSignal;
  logger?: Logger;
  /** Epoch milliseconds; the call's budget is cut to fit. */
  deadlineAt?: number;
}

/** The client's Hub lookups (provider mappings) go through the owned fetch; its other request is the inference call. */
const HUB_API_PREFIX = `${HUGGING_FACE_HUB_URL}/api/`;

/** Thrown through the client once it has handed over the request it built. */
const REQUEST_BUILT: unique symbol = Symbol("request built");

/**
 * A chat completion from an endpoint model, as the client would make it
 * (endpoint-chat.ts). The owned fetch has refused errors and unusable
 * bodies; like the client, only an `application/json` answer is read as JSON
 * (anything else would reach the caller's check as a Blob: no choices).
 */
async function endpointChatCompletion(call: TaskCall, args: HfCallArgs & { endpointUrl: string }, request: HfChatRequest): Promise<HfChatOutput> {
  // The call's signal is the owned fetch's already.
  const response = await call.options.fetch(endpointChatUrl(args.endpointUrl), { method: "POST", headers: endpointChatHeaders(args), body: endpointChatBody(args, request, false) });
  if (!response.headers.get("content-type")?.startsWith("application/json")) return {} as HfChatOutput;
  return (await response.json()) as HfChatOutput;
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
  /** Per model entry: its call arguments, fixed by the configuration. */
  private readonly argsByModel = new WeakMap<HfModelConfig, HfCallArgs>();

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
    let args = this.argsByModel.get(model);
    if (!args) {
      const sendToken = model.sendToken ?? (!model.endpointUrl || isHuggingFaceEndpoint(model.endpointUrl));
      args = Object.freeze({
        model: model.model,
        ...(model.endpointUrl ? { endpointUrl: model.endpointUrl } : { provider: model.provider ?? "hf-inference" }),
        ...(sendToken && this.options.settings.token ? { accessToken: this.options.settings.token } : {}),
      });
      this.argsByModel.set(model, args);
    }
    return args;
  }

  private budget(model: HfModelConfig, context: HfCallContext): number {
    const left = context.deadlineAt === undefined ? Infinity : context.deadlineAt - this.now();
    return Math.min(model.timeoutMs, left);
  }

  private upstreamCall(model: HfModelConfig, expect: ExpectedBody, timeoutMs: number, context: HfCallContext): UpstreamCall {
    return {
      model: model.id,
      ...(model.endpointUrl ? { endpointUrl: model.endpointUrl } : {}),
      timeoutMs,
      ...(context.signal ? { signal: context.signal } : {}),
      expect,
      logger: lazyChild(context.logger ?? this.logger, { model: model.id, backend: "hf" }),
      provider: model.endpointUrl ? "endpoint" : (model.provider ?? "hf-inference"),
    };
  }

  private makeCall(model: HfModelConfig, expect: ExpectedBody, timeoutMs: number, context: HfCallContext): TaskCall {
    const fetch = this.upstream.forCall(this.upstreamCall(model, expect, timeoutMs, context));
    const args = this.callArgs(model);
    const userUrls = this.options.settings.userUrls;
    const signal = context.signal;
    return {
      client: this.client,
      args,
      // The client's own signal (a real AbortSignal) is made only for the calls the client makes itself.
      options: signal
        ? {
            fetch,
            retry_on_error: false,
            get signal() {
              return toAbortSignal(signal);
            },
          }
        : { fetch, retry_on_error: false },
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
          ...(signal ? { signal: toAbortSignal(signal) } : {}),
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
      const output = buildsEndpointChat(call.args, request)
        ? await endpointChatCompletion(call, call.args, request)
        : await call.client.chatCompletion({ ...call.args, ...request } as Parameters<InferenceClient["chatCompletion"]>[0], call.options);
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
   * A streamed chat completion in batches: the chunks of one network read
   * come together (a fast upstream sends many to a packet; a model that
   * writes token by token gives batches of one, with no wait). Each event
   * that crosses the job layers costs the same however much text it
   * carries, so this is the cheap way to pass a stream on. The request is
   * the client's (see {@link openChatStream}); the engine sends it through
   * the owned fetch and reads the event stream itself (event-stream.ts), by
   * the client's rules. Same errors as {@link chatCompletionStream}.
   */
  async *chatCompletionBatches(id: string, request: HfChatRequest, context: HfCallContext = {}): AsyncGenerator<HfChatChunk[]> {
    const model = this.require(id, "conversational");
    const timeoutMs = this.admit(model, context);
    let body: ChunkSource | undefined;
    let failure: unknown;
    let finished = false;
    try {
      body = await this.openChatStream(model, request, timeoutMs, context);
      const events = new EventStreamParser();
      const chunks = new ChunkReader();
      let sawFinish = false;
      let done = false;
      while (!done) {
        const read = await body.next();
        if (read === undefined) break;
        const batch: HfChatChunk[] = [];
        let broken: unknown;
        try {
          for (const data of events.pushAll(read)) {
            if (data === "[DONE]") {
              done = true;
              break;
            }
            const chunk = this.streamChunk(model, data, chunks, context);
            if (!sawFinish && chunk.choices.some((choice) => choice?.finish_reason)) sawFinish = true;
            batch.push(chunk);
          }
        } catch (error) {
          broken = error;
        }
        // Events read before a failure still go out first; then the failure.
        if (batch.length > 0) yield batch;
        if (broken !== undefined) throw broken;
      }
      // The rest after [DONE] is read in the background, so the connection goes back to the pool.
      if (done) body.release();
      // The client's parser drops a cut-off last event silently; a stream must end with a finish reason.
      if (!sawFinish) throw upstreamBadResponse(model.id, "the stream ended before the answer was finished");
      finished = true;
    } catch (error) {
      failure = this.mapError(error, model, context);
      throw failure;
    } finally {
      // A consumer that stops early: drop the upstream stream.
      if (!finished) body?.cancel();
      // A consumer that stops early settles nothing about the model's health.
      if (failure !== undefined) this.settle(model, failure);
      else if (finished) this.settle(model, undefined);
      else this.breaker.release(model.id);
    }
  }

  /**
   * Opens a chat stream through the owned fetch. An endpoint model's request
   * is built here by the client's rules (endpoint-chat.ts); any other is
   * built by the client itself (with its Hub lookups), taken from it at the
   * point where it would send it.
   */
  private async openChatStream(model: HfModelConfig, request: HfChatRequest, timeoutMs: number, context: HfCallContext): Promise<ChunkSource> {
    const upstream = this.upstream.forStream(this.upstreamCall(model, "stream", timeoutMs, context));
    const args = this.callArgs(model);
    if (buildsEndpointChat(args, request)) {
      // The call's signal is the owned fetch's already.
      return upstream.open(endpointChatUrl(args.endpointUrl), { method: "POST", headers: endpointChatHeaders(args), body: endpointChatBody(args, request, true) });
    }
    let built: { url: string; init: RequestInit } | undefined;
    const capture = ((input: string | URL | Request, init?: RequestInit) => {
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      if (url.startsWith(HUB_API_PREFIX)) return upstream.fetch(input, init);
      built = { url, init: init ?? {} };
      throw REQUEST_BUILT;
    }) as typeof fetch;
    const options = { fetch: capture, retry_on_error: false as const, ...(context.signal ? { signal: toAbortSignal(context.signal) } : {}) };
    try {
      await this.client.chatCompletionStream({ ...args, ...request } as Parameters<InferenceClient["chatCompletionStream"]>[0], options).next();
    } catch (error) {
      if (error !== REQUEST_BUILT) throw error;
    }
    if (!built) throw upstreamFailed(model.id, "the Hugging Face client built no request");
    return upstream.open(built.url, built.init);
  }

  /** One event of a chat stream, as the client would have handed it on, checked. */
  private streamChunk(model: HfModelConfig, data: string, chunks: ChunkReader, context: HfCallContext): HfChatChunk {
    let chunk: unknown;
    try {
      chunk = chunks.read(data);
    } catch {
      (context.logger ?? this.logger).warn({ model: model.id, backend: "hf", error: "SyntaxError", bytes: data.length }, "malformed JSON in the upstream event stream");
      throw upstreamBadResponse(model.id, "malformed JSON");
    }
    if (typeof chunk === "object" && chunk !== null && "error" in chunk) {
      // An error event: its text can quote the request, so it is logged (redacted), never put in the message.
      const reported = (chunk as { error: unknown }).error;
      const text = typeof reported === "string" ? reported : typeof (reported as { message?: unknown })?.message === "string" ? (reported as { message: string }).message : JSON.stringify(reported);
      const detail = redactSecrets(String(text), [this.options.settings.token]).slice(0, 500);
      (context.logger ?? this.logger).warn({ model: model.id, backend: "hf", error: "stream error event", detail }, "upstream error in the event stream");
      throw upstreamFailed(model.id, "the upstream server reported an error");
    }
    if (!chunk || typeof chunk !== "object" || !Array.isArray((chunk as { choices?: unknown }).choices)) {
      throw upstreamBadResponse(model.id, "a stream event that is not a chat completion chunk");
    }
    return chunk as HfChatChunk;
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

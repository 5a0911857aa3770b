/**
 * The Hugging Face engine behind the one {@link Backend} interface: chat,
 * completion and embedding jobs for remote models, and task jobs. Failures
 * before any output are a single `error` event; `accepted` is sent only once
 * the upstream has answered (or, for streams, sent its first chunk), so
 * upstream errors stay plain HTTP errors in every transport.
 */
import type { ArtifactStore } from "@switchboard/artifacts";
import {
  GatewayError,
  JobAbortController,
  asGatewayError,
  invalidRequest,
  mapBinaryOutputs,
  lazyChild,
  modelNotFound,
  silentLogger,
  type Backend,
  type ChatJob,
  type CompletionJob,
  type EmbeddingJob,
  type FinishReason,
  type Job,
  type JobContext,
  type JobEvent,
  type JobSignal,
  type Logger,
  type ModelState,
  type TaskJob,
  type TaskJobEvent,
  type TaskName,
  type TaskOutput,
  type TaskResultEvent,
  type TokenLogprob,
  type TopLogprob,
} from "@switchboard/protocol";
import type { ArtifactResolver } from "./binary-data.js";
import { HfEngine, type HfCallContext, type HfChatRequest, type HfEngineOptions } from "./hf-engine.js";
import { CallCancelledError } from "./upstream-errors.js";

export interface HfBackendOptions extends HfEngineOptions {
  /** Name of this worker, for `accepted` events and logs. */
  worker?: string;
  /**
   * Where binary outputs go and `{type: "artifact"}` inputs come from. With
   * a store, task results carry `artifact` references instead of inline
   * base64 (jobs and events stay small across the queue); without one they
   * carry base64 and artifact inputs are refused.
   */
  artifacts?: ArtifactStore;
}

/** Artifact inputs read from a store; a missing or expired one is the client's 400. */
export function artifactResolver(store: ArtifactStore): ArtifactResolver {
  return async (id) => {
    const artifact = await store.get(id);
    if (!artifact) {
      throw invalidRequest(`The artifact '${id.slice(0, 80)}' does not exist or has expired.`, "inputs", "artifact_not_found");
    }
    return { bytes: artifact.data, mimeType: artifact.mimeType };
  };
}

const FINISH_REASONS: Record<string, FinishReason> = {
  stop: "stop",
  eos_token: "stop",
  stop_sequence: "stop",
  length: "length",
  tool_calls: "tool_calls",
  content_filter: "content_filter",
};

const finishReason = (value: unknown): FinishReason => (typeof value === "string" ? FINISH_REASONS[value] : undefined) ?? "stop";

/** A chat job in the OpenAI-compatible request shape the client sends. */
export function chatRequestFromJob(job: ChatJob): HfChatRequest {
  const messages = job.messages.map((message) => {
    if (message.role === "assistant" && message.toolCalls?.length) {
      // The chat-completion spec's message body is content XOR tool_calls.
      return {
        role: "assistant",
        tool_calls: message.toolCalls.map((call) => ({ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } })),
      };
    }
    return {
      role: message.role,
      content: message.content,
      ...(message.name ? { name: message.name } : {}),
      ...(message.toolCallId ? { tool_call_id: message.toolCallId } : {}),
    };
  });
  const request: Record<string, unknown> = { messages, max_tokens: job.maxTokens };
  const { sampling } = job;
  if (sampling.temperature !== undefined) request.temperature = sampling.temperature;
  if (sampling.topP !== undefined) request.top_p = sampling.topP;
  if (sampling.seed !== undefined) request.seed = sampling.seed;
  if (sampling.presencePenalty !== undefined) request.presence_penalty = sampling.presencePenalty;
  if (sampling.frequencyPenalty !== undefined) request.frequency_penalty = sampling.frequencyPenalty;
  if (job.stop.length) request.stop = job.stop;
  if (job.logprobs !== undefined) {
    request.logprobs = true;
    if (job.logprobs > 0) request.top_logprobs = job.logprobs;
  }
  if (job.responseFormat && job.responseFormat.type !== "text") {
    request.response_format =
      job.responseFormat.type === "json_schema"
        ? {
            type: "json_schema",
            json_schema: { name: job.responseFormat.name, schema: job.responseFormat.schema, ...(job.responseFormat.strict === undefined ? {} : { strict: job.responseFormat.strict }) },
          }
        : { type: "json_object" };
  }
  if (job.tools?.length) {
    request.tools = job.tools.map((tool) => ({
      type: "function",
      function: { name: tool.name, ...(tool.description ? { description: tool.description } : {}), ...(tool.parameters ? { parameters: tool.parameters } : {}) },
    }));
  }
  if (job.toolChoice) request.tool_choice = typeof job.toolChoice === "string" ? job.toolChoice : { function: { name: job.toolChoice.name } };
  return request as unknown as HfChatRequest;
}

/**
 * A choice's `logprobs.content` from upstream, in OpenAI's shape: servers that
 * follow Hugging Face's spec (TGI) send no `bytes`, so they are the token's
 * UTF-8 bytes. Undefined when the choice has none or they are malformed.
 */
export function tokenLogprobs(logprobs: unknown): TokenLogprob[] | undefined {
  const content = (logprobs as { content?: unknown } | null | undefined)?.content;
  if (!Array.isArray(content) || content.length === 0) return undefined;
  const tokens: TokenLogprob[] = [];
  for (const entry of content) {
    const token = topLogprob(entry);
    if (token === undefined) return undefined;
    const alternatives = (entry as { top_logprobs?: unknown }).top_logprobs;
    const top: TopLogprob[] = [];
    if (Array.isArray(alternatives)) {
      for (const alternative of alternatives) {
        const read = topLogprob(alternative);
        if (read === undefined) return undefined;
        top.push(read);
      }
    }
    tokens.push({ ...token, top_logprobs: top });
  }
  return tokens;
}

function topLogprob(entry: unknown): TopLogprob | undefined {
  const { token, logprob, bytes } = (entry ?? {}) as { token?: unknown; logprob?: unknown; bytes?: unknown };
  if (typeof token !== "string" || typeof logprob !== "number") return undefined;
  const ownBytes = Array.isArray(bytes) && bytes.every((byte) => Number.isInteger(byte)) ? (bytes as number[]) : [...Buffer.from(token, "utf8")];
  return { token, logprob, bytes: ownBytes };
}

/** Marks a failure of the artifact store, so it is not taken for the model's. */
class StoreFailure extends Error {
  constructor(override readonly cause: unknown) {
    super("artifact store failure");
  }
}

const errorEvent = (error: unknown): { type: "error"; error: ReturnType<GatewayError["toPayload"]> } => ({ type: "error", error: asGatewayError(error).toPayload() });

export class HfBackend implements Backend {
  readonly name = "hf";
  readonly engine: HfEngine;
  private readonly logger: Logger;
  private readonly worker: string | undefined;
  private readonly artifacts: ArtifactStore | undefined;
  private closed = false;

  constructor(options: HfBackendOptions) {
    const resolveArtifact = options.resolveArtifact ?? (options.artifacts ? artifactResolver(options.artifacts) : undefined);
    this.engine = new HfEngine({ ...options, ...(resolveArtifact ? { resolveArtifact } : {}) });
    this.logger = options.logger ?? silentLogger;
    this.worker = options.worker;
    this.artifacts = options.artifacts;
  }

  models(): string[] {
    return this.engine.models().map((model) => model.id);
  }

  /**
   * A remote model that is warming up upstream still counts as `ready` here:
   * this process can serve it (requests get 503 with Retry-After, or a
   * fallback) and `/ready` must not take the gateway out of rotation for it.
   * Only an open circuit makes it `failed`.
   */
  modelStates(): ModelState[] {
    return this.engine.models().map((model) => {
      const state = this.engine.modelState(model.id);
      return state.state === "loading" ? { id: state.id, state: "ready" } : state;
    });
  }

  run(job: Job, context: JobContext): AsyncIterable<JobEvent> {
    return this.events(job, context);
  }

  /** New jobs are refused after this; in-flight calls finish (or end with their jobs' signals), then the upstream connections close. */
  async close(): Promise<void> {
    this.closed = true;
    await this.engine.close();
  }

  private async *events(job: Job | TaskJob, context: JobContext): AsyncGenerator<JobEvent | TaskJobEvent> {
    const logger = lazyChild(context.logger ?? this.logger, { jobId: job.id, requestId: job.requestId, model: job.model, backend: "hf" });
    const call: HfCallContext = { signal: context.signal, logger, ...(job.deadlineAt === undefined ? {} : { deadlineAt: job.deadlineAt }) };
    try {
      if (this.closed) {
        yield errorEvent(new GatewayError("The Hugging Face backend is shutting down.", { status: 503, type: "service_unavailable_error", code: "backend_closed", retryAfterSeconds: 1 }));
        return;
      }
      if (!this.engine.model(job.model)) {
        yield errorEvent(modelNotFound(job.model));
        return;
      }
      switch (job.kind) {
        case "chat":
          yield* this.chat(job, call);
          return;
        case "completion":
          yield* this.completion(job, call);
          return;
        case "embedding":
          yield* this.embedding(job, call);
          return;
        case "task":
          yield* this.task(job, call);
          return;
      }
    } catch (error) {
      // The client went away: nobody reads further events.
      if (error instanceof CallCancelledError || context.signal.aborted) return;
      if (!(error instanceof GatewayError)) logger.error({ error: error instanceof Error ? error.name : typeof error }, "unexpected failure in the hf backend");
      yield errorEvent(error);
    }
  }

  private accepted(job: { id: string }, model: string, promptTokens = 0) {
    return { type: "accepted" as const, jobId: job.id, model, promptTokens, ...(this.worker ? { worker: this.worker } : {}) };
  }

  private async *chat(job: ChatJob, call: HfCallContext): AsyncGenerator<JobEvent> {
    if (job.n !== undefined && job.n > 1) {
      yield* this.chatChoices(job, job.n, call);
      return;
    }
    if (job.stream === false) {
      yield* this.chatInOnePiece(job, call);
      return;
    }
    const request = { ...chatRequestFromJob(job), stream_options: { include_usage: true } } as HfChatRequest;
    let accepted = false;
    let completionTokens: number | undefined;
    let promptTokens: number | undefined;
    let deltas = 0;
    let reason: FinishReason | undefined;
    const toolCallIds = new Map<number, string>();
    // One event per run of deltas in a batch: every event costs the same on its way to the client.
    for await (const batch of this.engine.chatCompletionBatches(job.model, request, call)) {
      if (!accepted) {
        // Upstream usage arrives last; prompt tokens come with the finish event.
        yield this.accepted(job, job.model);
        accepted = true;
      }
      let pending: JobEvent | undefined;
      for (const chunk of batch) {
        if (chunk.usage) {
          completionTokens = chunk.usage.completion_tokens;
          promptTokens = chunk.usage.prompt_tokens;
        }
        for (const choice of chunk.choices) {
          const delta = choice.delta as { content?: unknown; tool_calls?: Array<{ index?: number; id?: string; function?: { name?: string | null; arguments?: string } }> } | undefined;
          const logprobs = job.logprobs === undefined ? undefined : tokenLogprobs(choice.logprobs);
          const text = typeof delta?.content === "string" ? delta.content : "";
          if (text.length > 0 || logprobs !== undefined) {
            if (text.length > 0) deltas += 1;
            if (pending?.type === "text-delta") {
              pending.text += text;
              if (logprobs !== undefined) (pending.logprobs ??= []).push(...logprobs);
            } else {
              if (pending) yield pending;
              // No spread on the per-chunk path: the plain delta is a literal of its own.
              pending = logprobs === undefined ? { type: "text-delta", index: 0, text } : { type: "text-delta", index: 0, text, logprobs };
            }
          }
          for (const toolCall of delta?.tool_calls ?? []) {
            const toolCallIndex = toolCall.index ?? 0;
            const first = !toolCallIds.has(toolCallIndex);
            if (first) toolCallIds.set(toolCallIndex, toolCall.id || `call_${job.id}_${toolCallIndex}`);
            deltas += 1;
            const argumentsDelta = toolCall.function?.arguments ?? "";
            if (!first && pending?.type === "tool-call-delta" && pending.toolCallIndex === toolCallIndex) {
              pending.argumentsDelta += argumentsDelta;
              continue;
            }
            if (pending) yield pending;
            pending = {
              type: "tool-call-delta",
              index: 0,
              toolCallIndex,
              ...(first ? { id: toolCallIds.get(toolCallIndex)!, ...(toolCall.function?.name ? { name: toolCall.function.name } : {}) } : {}),
              argumentsDelta,
            };
          }
          if (choice.finish_reason) reason = finishReason(choice.finish_reason);
        }
      }
      if (pending) yield pending;
    }
    if (!accepted) yield this.accepted(job, job.model);
    yield {
      type: "finish",
      index: 0,
      finishReason: reason ?? "stop",
      completionTokens: completionTokens ?? deltas,
      // Usage comes last upstream, so the prompt count rides on the finish event.
      ...(typeof promptTokens === "number" ? { promptTokens } : {}),
    };
  }

  /**
   * `n` choices of one chat job: one upstream call per choice, at the same
   * time (choice `i` samples with `seed + i` when a seed is set), since not
   * every server honours `n`. The job is accepted once every call has been;
   * a call refused before that refuses the job, and one that fails later
   * ends it. Choices stream as their calls produce them, each with its index.
   */
  private async *chatChoices(job: ChatJob, n: number, call: HfCallContext): AsyncGenerator<JobEvent> {
    // The choices' own signal: when one fails, or the client goes, the others' calls end too.
    const choices = callGroup(call.signal);
    const choiceCall: HfCallContext = { ...call, signal: choices.signal };
    const seed = job.sampling.seed;
    const runs = Array.from({ length: n }, (_, index) => {
      // Its own id too: tool-call ids made for calls the upstream left unnamed stay unique across choices.
      const one: ChatJob = { ...job, id: `${job.id}_${index}`, sampling: seed === undefined ? job.sampling : { ...job.sampling, seed: seed + index } };
      delete one.n;
      return this.chat(one, choiceCall)[Symbol.asyncIterator]();
    });
    const pending = new Map<number, Promise<{ index: number; result: IteratorResult<JobEvent> }>>();
    try {
      // Each call's first event is its `accepted` (a refusal throws, and refuses the job).
      const [first] = await Promise.all(runs.map((run) => run.next()));
      // Prompt tokens are counted once, as OpenAI counts them for `n` choices (streamed calls report them at the end).
      yield this.accepted(job, job.model, first && !first.done && first.value.type === "accepted" ? first.value.promptTokens : 0);
      const pull = (index: number) => pending.set(index, runs[index]!.next().then((result) => ({ index, result })));
      runs.forEach((_, index) => pull(index));
      while (pending.size > 0) {
        const { index, result } = await Promise.race(pending.values());
        if (result.done) {
          pending.delete(index);
          continue;
        }
        const event = result.value;
        if (event.type === "text-delta" || event.type === "tool-call-delta" || event.type === "finish") yield { ...event, index };
        pull(index);
      }
    } finally {
      choices.end();
      // Reads still in flight end with the abort; nobody waits for them but the generators' return.
      for (const read of pending.values()) read.catch(() => undefined);
      await Promise.allSettled(runs.map((run) => run.return(undefined)));
    }
  }

  /** A chat job whose client does not stream: one upstream call without server-sent events, the same events. */
  private async *chatInOnePiece(job: ChatJob, call: HfCallContext): AsyncGenerator<JobEvent> {
    const output = await this.engine.chatCompletion(job.model, chatRequestFromJob(job), call);
    const choice = output.choices[0]!;
    const message = choice.message as { content?: unknown; tool_calls?: Array<{ id?: string; function?: { name?: string; arguments?: string } }> };
    const usage = output.usage as { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined;
    const promptTokens = typeof usage?.prompt_tokens === "number" ? usage.prompt_tokens : 0;
    yield this.accepted(job, job.model, promptTokens);
    const text = typeof message.content === "string" ? message.content : "";
    const logprobs = job.logprobs === undefined ? undefined : tokenLogprobs(choice.logprobs);
    if (text || logprobs !== undefined) yield { type: "text-delta", index: 0, text, ...(logprobs === undefined ? {} : { logprobs }) };
    for (const [toolCallIndex, toolCall] of (message.tool_calls ?? []).entries()) {
      yield {
        type: "tool-call-delta",
        index: 0,
        toolCallIndex,
        id: toolCall.id || `call_${job.id}_${toolCallIndex}`,
        ...(toolCall.function?.name ? { name: toolCall.function.name } : {}),
        argumentsDelta: toolCall.function?.arguments ?? "",
      };
    }
    // Without upstream usage the count is unknown: 0 rather than a guess.
    const completionTokens = typeof usage?.completion_tokens === "number" ? usage.completion_tokens : 0;
    yield { type: "finish", index: 0, finishReason: finishReason(choice.finish_reason), completionTokens };
  }

  /**
   * Text completions: prompt after prompt, each prompt's `n` choices as
   * `n` upstream calls at the same time (choice `i` samples with `seed + i`
   * when a seed is set), in OpenAI's order (every choice of the first
   * prompt, then of the next). A call that fails ends the others.
   */
  private async *completion(job: CompletionJob, call: HfCallContext): AsyncGenerator<JobEvent> {
    const perPrompt = job.n ?? 1;
    const { temperature, topP, seed } = job.sampling;
    const parameters = {
      max_new_tokens: job.maxTokens,
      ...(temperature ? { temperature } : {}),
      ...(topP !== undefined ? { top_p: topP } : {}),
      ...(job.stop.length ? { stop: job.stop.slice(0, 4) } : {}),
    };
    const calls = callGroup(call.signal);
    const choiceCall: HfCallContext = { ...call, signal: calls.signal };
    const outputs: string[] = [];
    try {
      for (const prompt of job.prompts) {
        const texts = await Promise.all(
          Array.from({ length: perPrompt }, async (_, choice) => {
            const choiceParameters = seed === undefined ? parameters : { ...parameters, seed: seed + choice };
            return (await this.engine.runTask(job.model, "text-generation", prompt, choiceParameters, choiceCall)).generated_text;
          }),
        );
        outputs.push(...texts);
      }
    } finally {
      calls.end();
    }
    yield this.accepted(job, job.model);
    for (const [index, text] of outputs.entries()) {
      if (text) yield { type: "text-delta", index, text };
      yield { type: "finish", index, finishReason: "stop", completionTokens: 0 };
    }
  }

  private async *embedding(job: EmbeddingJob, call: HfCallContext): AsyncGenerator<JobEvent> {
    const vectors = await this.engine.featureExtraction(job.model, job.input, call);
    yield this.accepted(job, job.model);
    yield { type: "embeddings", vectors };
  }

  /** Replaces inline binary outputs by artifacts when a store is configured. */
  private async storeBinaries<T>(output: T): Promise<T> {
    const store = this.artifacts;
    if (!store) return output;
    return mapBinaryOutputs(output, async (binary) => {
      if (binary.type !== "base64") return binary;
      const info = await store.put(Buffer.from(binary.data, "base64"), binary.mimeType);
      return { type: "artifact", id: info.id, sha256: info.sha256, mimeType: info.mimeType, bytes: info.bytes, expiresAt: info.expiresAt };
    });
  }

  /** Runs the task on the job's model, then on each fallback while the failure is the model's (503/502/504). */
  private async *task(job: TaskJob, call: HfCallContext): AsyncGenerator<TaskJobEvent> {
    const candidates = [job.model, ...(job.fallbackModels ?? [])];
    let lastError: unknown;
    for (const [position, model] of candidates.entries()) {
      if (position > 0 && !this.engine.model(model)) continue;
      try {
        const raw = await this.engine.runTask(model, job.task, job.inputs as never, job.parameters as never, call);
        // Outside the fallback rules: a store failure is not the model's fault.
        const output = await this.storeBinaries(raw).catch((error: unknown) => {
          throw new StoreFailure(error);
        });
        yield this.accepted(job, model);
        yield { type: "task-result", task: job.task, model, output } as TaskResultEvent;
        return;
      } catch (error) {
        if (error instanceof StoreFailure) throw error.cause;
        lastError = error;
        const modelsFault = error instanceof GatewayError && [502, 503, 504].includes(error.status);
        if (!modelsFault || position === candidates.length - 1) throw error;
        call.logger?.info({ model, next: candidates[position + 1], code: (error as GatewayError).code }, "falling back to the next candidate");
      }
    }
    throw lastError;
  }
}

/** The output type of a task result, for callers that narrow on `task`. */
export type HfTaskOutput<T extends TaskName> = TaskOutput<T>;

/**
 * A signal for a group of upstream calls: aborted with `parent`, and by
 * `end()`, which the group calls when it is done (one call failed, or all
 * are over), so calls still running stop.
 */
function callGroup(parent: JobSignal | undefined): { signal: JobSignal; end: () => void } {
  const group = new JobAbortController();
  const abort = () => group.abort(parent?.reason);
  parent?.addEventListener("abort", abort, { once: true });
  if (parent?.aborted) abort();
  return {
    signal: group.signal,
    end: () => {
      parent?.removeEventListener("abort", abort);
      if (!group.signal.aborted) group.abort();
    },
  };
}

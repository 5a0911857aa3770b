/**
 * The Hugging Face engine behind the one {@link Backend} interface: chat,
 * completion and embedding jobs for remote models, and task jobs. Failures
 * before any output are a single `error` event; `accepted` is sent only once
 * the upstream has answered (or, for streams, sent its first chunk), so
 * upstream errors stay plain HTTP errors in every transport.
 */
import {
  GatewayError,
  asGatewayError,
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
  type Logger,
  type ModelState,
  type TaskJob,
  type TaskJobEvent,
  type TaskName,
  type TaskOutput,
  type TaskResultEvent,
} from "@switchboard/protocol";
import { HfEngine, type HfCallContext, type HfChatRequest, type HfEngineOptions } from "./hf-engine.js";
import { CallCancelledError } from "./upstream-errors.js";

export interface HfBackendOptions extends HfEngineOptions {
  /** Name of this worker, for `accepted` events and logs. */
  worker?: string;
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

const errorEvent = (error: unknown): { type: "error"; error: ReturnType<GatewayError["toPayload"]> } => ({ type: "error", error: asGatewayError(error).toPayload() });

export class HfBackend implements Backend {
  readonly name = "hf";
  readonly engine: HfEngine;
  private readonly logger: Logger;
  private readonly worker: string | undefined;
  private closed = false;

  constructor(options: HfBackendOptions) {
    this.engine = new HfEngine(options);
    this.logger = options.logger ?? silentLogger;
    this.worker = options.worker;
  }

  models(): string[] {
    return this.engine.models().map((model) => model.id);
  }

  modelStates(): ModelState[] {
    return this.engine.models().map((model) => this.engine.modelState(model.id));
  }

  run(job: Job, context: JobContext): AsyncIterable<JobEvent> {
    return this.events(job, context);
  }

  /** Nothing is pooled: in-flight calls end with their jobs' signals. New jobs are refused after this. */
  async close(): Promise<void> {
    this.closed = true;
  }

  private async *events(job: Job | TaskJob, context: JobContext): AsyncGenerator<JobEvent | TaskJobEvent> {
    const logger = (context.logger ?? this.logger).child({ jobId: job.id, requestId: job.requestId, model: job.model, backend: "hf" });
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
    const request = { ...chatRequestFromJob(job), stream_options: { include_usage: true } } as HfChatRequest;
    let accepted = false;
    let completionTokens: number | undefined;
    let deltas = 0;
    let reason: FinishReason | undefined;
    const toolCallIds = new Map<number, string>();
    for await (const chunk of this.engine.chatCompletionStream(job.model, request, call)) {
      if (!accepted) {
        // Upstream usage arrives last; prompt tokens are not known yet (see the report: usage on finish).
        yield this.accepted(job, job.model);
        accepted = true;
      }
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
      for (const choice of chunk.choices) {
        const delta = choice.delta as { content?: unknown; tool_calls?: Array<{ index?: number; id?: string; function?: { name?: string | null; arguments?: string } }> } | undefined;
        if (typeof delta?.content === "string" && delta.content.length > 0) {
          deltas += 1;
          yield { type: "text-delta", index: 0, text: delta.content };
        }
        for (const toolCall of delta?.tool_calls ?? []) {
          const toolCallIndex = toolCall.index ?? 0;
          const first = !toolCallIds.has(toolCallIndex);
          if (first) toolCallIds.set(toolCallIndex, toolCall.id || `call_${job.id}_${toolCallIndex}`);
          deltas += 1;
          yield {
            type: "tool-call-delta",
            index: 0,
            toolCallIndex,
            ...(first ? { id: toolCallIds.get(toolCallIndex)!, ...(toolCall.function?.name ? { name: toolCall.function.name } : {}) } : {}),
            argumentsDelta: toolCall.function?.arguments ?? "",
          };
        }
        if (choice.finish_reason) reason = finishReason(choice.finish_reason);
      }
    }
    if (!accepted) yield this.accepted(job, job.model);
    yield { type: "finish", index: 0, finishReason: reason ?? "stop", completionTokens: completionTokens ?? deltas };
  }

  private async *completion(job: CompletionJob, call: HfCallContext): AsyncGenerator<JobEvent> {
    const outputs: string[] = [];
    for (const prompt of job.prompts) {
      const parameters = {
        max_new_tokens: job.maxTokens,
        ...(job.sampling.temperature ? { temperature: job.sampling.temperature } : {}),
        ...(job.sampling.topP !== undefined ? { top_p: job.sampling.topP } : {}),
        ...(job.sampling.seed !== undefined ? { seed: job.sampling.seed } : {}),
        ...(job.stop.length ? { stop: job.stop.slice(0, 4) } : {}),
      };
      const output = await this.engine.runTask(job.model, "text-generation", prompt, parameters, call);
      outputs.push(output.generated_text);
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

  /** Runs the task on the job's model, then on each fallback while the failure is the model's (503/502/504). */
  private async *task(job: TaskJob, call: HfCallContext): AsyncGenerator<TaskJobEvent> {
    const candidates = [job.model, ...(job.fallbackModels ?? [])];
    let lastError: unknown;
    for (const [position, model] of candidates.entries()) {
      if (position > 0 && !this.engine.model(model)) continue;
      try {
        const output = await this.engine.runTask(model, job.task, job.inputs as never, job.parameters as never, call);
        yield this.accepted(job, model);
        yield { type: "task-result", task: job.task, model, output } as TaskResultEvent;
        return;
      } catch (error) {
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

/**
 * Chat jobs: the model's chat wrapper renders the conversation, `LlamaChat`
 * generates on a pooled sequence, and output is constrained by a grammar for
 * JSON modes and forced tool calls.
 */
import { LlamaChat, type ChatModelFunctions, type LLamaChatGenerateResponseOptions, type LlamaContextSequence, type LlamaGrammar } from "node-llama-cpp";
import { GatewayError, contextLengthExceeded, invalidRequest, type ChatJob, type FinishReason, type JobEvent, type JobTool } from "@switchboard/protocol";
import { toChatHistory } from "./chat-history.js";
import { keepCommonPrefix, prefixAffinity, resetSequence, type JobPlan } from "./job-plan.js";
import { UnsupportedSchemaError, jsonSchemaToGbnf, limitsForSchema, toolCallGbnf } from "./json-schema-grammar.js";
import type { ModelRuntime } from "./model-runtime.js";
import { samplingOptions, stopTriggers, type SamplingOptions } from "./sampling.js";
import { ForcedToolCallStream, forcedToolCallInstructions, newToolCallId, toChatModelFunctions } from "./tool-calls.js";

type ToolMode = { kind: "none" } | { kind: "auto"; functions: ChatModelFunctions } | { kind: "forced"; tools: JobTool[] };

/**
 * Checks a chat job and prepares it: tool mode, history, exact prompt tokens,
 * the grammar. Throws a GatewayError for anything that must fail before
 * generation.
 */
export async function planChat(job: ChatJob, runtime: ModelRuntime): Promise<JobPlan<LlamaContextSequence>> {
  // node-llama-cpp reads maxTokens 0 as "no limit".
  if (!(job.maxTokens >= 1)) throw invalidRequest("'max_tokens' must be at least 1.", "max_tokens");
  const toolMode = resolveToolMode(job);
  const jsonFormat = job.responseFormat?.type === "json_object" || job.responseFormat?.type === "json_schema";
  // LlamaChat cannot combine a grammar with function calling: a requested JSON format wins over optional tools.
  const effectiveToolMode: ToolMode = toolMode.kind === "auto" && jsonFormat ? { kind: "none" } : toolMode;
  if (job.responseFormat?.type === "json_schema") validateSchema(job.responseFormat.schema, "response_format");

  const history = toChatHistory(job.messages, effectiveToolMode.kind === "forced" ? forcedToolCallInstructions(effectiveToolMode.tools) : undefined);
  const functions = effectiveToolMode.kind === "auto" ? effectiveToolMode.functions : undefined;
  // The tokens LlamaChat will evaluate: they size the prompt and find a sequence already holding their start.
  const prompt = runtime.chatWrapper
    .generateContextState({ chatHistory: history, availableFunctions: functions, documentFunctionParams: true })
    .contextText.tokenize(runtime.model.tokenizer);
  const promptTokens = prompt.length;

  // One cell stays free: LlamaChat shifts (drops) history rather than use the last one.
  const room = runtime.contextSize - promptTokens - 1;
  // Only a prompt that leaves no room fails; a max_tokens that does not fit is shortened instead.
  if (room < 1) throw contextLengthExceeded(promptTokens, runtime.contextSize);
  const maxTokens = Math.min(job.maxTokens, room);

  const grammar = await chatGrammar(job, effectiveToolMode, maxTokens, runtime);
  const sampling = samplingOptions(job.sampling, runtime.model);
  const customStopTriggers = stopTriggers(job.stop);

  const choices = job.n ?? 1;

  return {
    choices,
    promptTokens,
    pool: runtime.sequences,
    affinity: prefixAffinity(prompt),
    reset: resetSequence,
    async execute(sequence, emit, signal, usage) {
      // Choices run one after another on this sequence: each later one erases back to the evaluated
      // prompt (keeping all of it but the last token), so the prompt is evaluated once.
      for (let index = 0; index < choices; index++) {
        if (signal.aborted) return;
        const reused = await keepCommonPrefix(sequence, prompt);
        if (index === 0) usage.reusedPromptTokens += reused;
        if (!(await generateChoice(sequence, index, samplingForChoice(sampling, index), emit, signal))) return;
      }
    },
  };

  /** Generates choice `index`; false when the job was aborted (no `finish` sent). */
  async function generateChoice(
    sequence: LlamaContextSequence,
    index: number,
    choiceSampling: SamplingOptions,
    emit: (event: JobEvent) => void,
    signal: AbortSignal,
  ): Promise<boolean> {
    const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: runtime.chatWrapper, autoDisposeSequence: false });
    const meterBefore = sequence.tokenMeter.getState();
    const forced = effectiveToolMode.kind === "forced" ? new ForcedToolCallStream(index) : undefined;
    const autoCalls = new Map<number, { id: string; name: string; text: string }>();
    const options: LLamaChatGenerateResponseOptions<ChatModelFunctions> = {
      ...choiceSampling,
      maxTokens,
      signal,
      stopOnAbortSignal: true,
      onTextChunk(text) {
        if (text.length === 0) return;
        if (forced) for (const event of forced.push(text)) emit(event);
        else emit({ type: "text-delta", index, text });
      },
    };
    if (customStopTriggers) options.customStopTriggers = customStopTriggers;
    if (grammar) options.grammar = grammar;
    if (functions) {
      options.functions = functions;
      options.documentFunctionParams = true;
      options.onFunctionCallParamsChunk = (chunk) => {
        let call = autoCalls.get(chunk.callIndex);
        if (!call) {
          call = { id: newToolCallId(), name: chunk.functionName, text: "" };
          autoCalls.set(chunk.callIndex, call);
          emit({ type: "tool-call-delta", index, toolCallIndex: chunk.callIndex, id: call.id, name: call.name, argumentsDelta: chunk.paramsChunk });
        } else if (chunk.paramsChunk.length > 0) {
          emit({ type: "tool-call-delta", index, toolCallIndex: chunk.callIndex, argumentsDelta: chunk.paramsChunk });
        }
        call.text += chunk.paramsChunk;
      };
    }
    let stopReason: string;
    try {
      const result = await chat.generateResponse(history, options);
      stopReason = result.metadata.stopReason;
      // Calls whose parameters never streamed (no parameters) still need their id, name and "{}".
      for (const [callIndex, call] of (result.functionCalls ?? []).entries()) {
        const streamed = autoCalls.get(callIndex);
        if (!streamed) {
          const argumentsText = call.params === undefined ? "{}" : JSON.stringify(call.params);
          emit({ type: "tool-call-delta", index, toolCallIndex: callIndex, id: newToolCallId(), name: call.functionName, argumentsDelta: argumentsText });
        } else if (streamed.text.trim().length === 0) {
          emit({ type: "tool-call-delta", index, toolCallIndex: callIndex, argumentsDelta: "{}" });
        }
      }
    } catch (error) {
      // With stopOnAbortSignal an abort before the first token still throws the abort reason.
      if (signal.aborted) return false;
      throw error;
    } finally {
      chat.dispose();
    }
    if (signal.aborted || stopReason === "abort") return false;

    let finishReason: FinishReason = stopReason === "maxTokens" ? "length" : "stop";
    if (forced) {
      for (const event of forced.finish(finishReason !== "length")) emit(event);
      if (forced.started && finishReason !== "length") finishReason = "tool_calls";
    } else if (stopReason === "functionCalls" || autoCalls.size > 0) {
      finishReason = "tool_calls";
    }
    emit({ type: "finish", index, finishReason, completionTokens: completionTokens(sequence, meterBefore, stopReason) });
    return true;
  }
}

/**
 * Sampling for choice `index`: with a seed, choice i uses seed + i, so the
 * choices differ yet the whole answer repeats; without one each samples anew.
 */
export function samplingForChoice(sampling: SamplingOptions, index: number): SamplingOptions {
  return sampling.seed === undefined || index === 0 ? sampling : { ...sampling, seed: sampling.seed + index };
}

/**
 * Tokens sampled for this reply. The meter counts one per sampling step; an
 * end-of-generation token that only ended the reply is not part of it.
 */
export function completionTokens(
  sequence: LlamaContextSequence,
  before: { usedInputTokens: number; usedOutputTokens: number },
  stopReason: string,
): number {
  const sampled = sequence.tokenMeter.diff(before).usedOutputTokens;
  return Math.max(0, stopReason === "eogToken" ? sampled - 1 : sampled);
}

function resolveToolMode(job: ChatJob): ToolMode {
  const tools = job.tools ?? [];
  const choice = job.toolChoice ?? (tools.length > 0 ? "auto" : "none");
  if (choice === "none") return { kind: "none" };
  if (tools.length === 0) {
    if (choice === "auto") return { kind: "none" };
    throw invalidRequest("'tool_choice' requires 'tools' to be set.", "tool_choice");
  }
  const names = new Set<string>();
  for (const [index, tool] of tools.entries()) {
    if (names.has(tool.name)) throw invalidRequest(`Duplicate function name '${tool.name}' in 'tools'.`, `tools[${index}].function.name`);
    names.add(tool.name);
    if (tool.parameters !== undefined) validateSchema(tool.parameters, "tools", `tools[${index}].function.parameters`);
  }
  if (typeof choice === "object") {
    const tool = tools.find((candidate) => candidate.name === choice.name);
    if (!tool) throw invalidRequest(`'tool_choice' names the function '${choice.name}', which is not in 'tools'.`, "tool_choice");
    return { kind: "forced", tools: [tool] };
  }
  if (choice === "required") return { kind: "forced", tools };
  try {
    return { kind: "auto", functions: toChatModelFunctions(tools) };
  } catch (error) {
    throw schemaError(error, "tools");
  }
}

async function chatGrammar(job: ChatJob, toolMode: ToolMode, maxTokens: number, runtime: ModelRuntime): Promise<LlamaGrammar | undefined> {
  let gbnf: string;
  let param: string;
  if (toolMode.kind === "forced") {
    // The budget goes to the arguments of whichever tool is called: size it for the largest.
    const limits = toolMode.tools
      .map((tool) => limitsForSchema(tool.parameters ?? {}, maxTokens))
      .reduce((smallest, next) => (next.maxStringLength < smallest.maxStringLength ? next : smallest));
    gbnf = catchSchemaError(() => toolCallGbnf(toolMode.tools, limits), "tools");
    param = "tools";
  } else if (job.responseFormat?.type === "json_object") {
    // Our free-form object grammar rather than llama.cpp's json.gbnf: compact, with strings, entries
    // and nesting capped by the token budget, so the object can close before max_tokens.
    const schema = { type: "object" };
    gbnf = jsonSchemaToGbnf(schema, limitsForSchema(schema, maxTokens));
    param = "response_format";
  } else if (job.responseFormat?.type === "json_schema") {
    const schema = job.responseFormat.schema;
    gbnf = catchSchemaError(() => jsonSchemaToGbnf(schema, limitsForSchema(schema, maxTokens)), "response_format");
    param = "response_format";
  } else {
    return undefined;
  }
  try {
    return await runtime.grammar(gbnf, () => runtime.llama.createGrammar({ grammar: gbnf }));
  } catch (error) {
    // Our converter made a grammar llama.cpp rejects: a bug, but the request still gets a clear answer.
    throw new GatewayError("The schema could not be turned into a grammar for structured output.", {
      status: 400,
      type: "invalid_request_error",
      param,
      code: "invalid_json_schema",
      cause: error,
    });
  }
}

function validateSchema(schema: unknown, param: string, path?: string): void {
  try {
    jsonSchemaToGbnf(schema, limitsForSchema(schema, 256));
  } catch (error) {
    throw schemaError(error, param, path);
  }
}

function catchSchemaError<T>(build: () => T, param: string): T {
  try {
    return build();
  } catch (error) {
    throw schemaError(error, param);
  }
}

function schemaError(error: unknown, param: string, path?: string): GatewayError {
  if (error instanceof UnsupportedSchemaError) {
    const where = path ? `${path}: ` : "";
    return new GatewayError(`Invalid schema for ${param === "tools" ? "a function" : "response_format"}: ${where}${error.message}.`, {
      status: 400,
      type: "invalid_request_error",
      param,
      code: "invalid_json_schema",
    });
  }
  if (error instanceof GatewayError) return error;
  return new GatewayError(`Invalid schema for ${param}.`, { status: 400, type: "invalid_request_error", param, code: "invalid_json_schema", cause: error });
}

/**
 * Validated OpenAI request bodies → jobs. This is where the gateway applies
 * per-model defaults and limits, normalises OpenAI's many input shapes into
 * the job's one shape, and refuses what no engine serves, each with a 400
 * that names the field. Nothing here touches an engine.
 */
import { servesTask, type ModelConfig } from "@switchboard/catalog";
import {
  invalidRequest,
  type ChatCompletionRequest,
  type ChatContentPart,
  type ChatJob,
  type ChatMessage,
  type CompletionJob,
  type CompletionRequest,
  type EmbeddingJob,
  type EmbeddingRequest,
  type JobChatMessage,
  type JobResponseFormat,
  type JobSampling,
  type JobTool,
  type JobToolChoice,
  type TaskName,
} from "@switchboard/protocol";

/**
 * `max_tokens` for a remote model when the request leaves it out: remote
 * models have no configured default, and an unbounded generation is never
 * what a client that forgot the field wants.
 */
export const DEFAULT_REMOTE_MAX_TOKENS = 1024;

/**
 * Most choices (`n`) one request may ask of a local model: the choices run
 * one after another on one sequence, so a request holds it n times as long
 * as a single answer, and the client waits for all of them.
 */
export const MAX_CHOICES = 8;

/** Most `logit_bias` entries one request may carry (OpenAI's limit). */
export const MAX_LOGIT_BIAS = 300;

/** Ids the gateway made for this request. */
export interface JobIdentity {
  id: string;
  requestId: string;
}

type SamplingRequest = Pick<
  ChatCompletionRequest,
  "temperature" | "top_p" | "seed" | "presence_penalty" | "frequency_penalty" | "stop" | "n" | "logit_bias"
>;

export function buildChatJob(body: ChatCompletionRequest, model: ModelConfig, identity: JobIdentity): ChatJob {
  requireRemoteTask(model, "conversational", "chat completions");
  const choices = choiceCount(body.n, model);
  const logprobs = logprobsWanted(body, model);
  if (body.functions !== undefined && body.functions !== null)
    throw invalidRequest("'functions' is deprecated and not supported: declare them in 'tools' instead.", "functions");

  const tools = chatTools(body);
  const job: ChatJob = {
    kind: "chat",
    id: identity.id,
    requestId: identity.requestId,
    model: model.id,
    messages: body.messages.map(chatMessage),
    maxTokens: maxTokens(body.max_completion_tokens ?? body.max_tokens, model),
    sampling: sampling(body, model),
    stop: stopSequences(body.stop),
    stream: body.stream === true,
  };
  if (choices > 1) job.n = choices;
  if (logprobs !== undefined) job.logprobs = logprobs;
  const responseFormat = chatResponseFormat(body.response_format);
  if (responseFormat !== undefined) job.responseFormat = responseFormat;
  if (tools !== undefined) {
    job.tools = tools;
    job.toolChoice = chatToolChoice(body.tool_choice, tools);
  } else if (body.tool_choice !== undefined && body.tool_choice !== null && body.tool_choice !== "none" && body.tool_choice !== "auto") {
    throw invalidRequest("'tool_choice' names or requires a tool, but no 'tools' were given.", "tool_choice");
  }
  return job;
}

export function buildCompletionJob(body: CompletionRequest, model: ModelConfig, identity: JobIdentity): CompletionJob {
  requireRemoteTask(model, "text-generation", "text completions");
  const choices = choiceCount(body.n, model);
  if (body.echo === true) throw invalidRequest("'echo' is not supported: leave it out or set it to false.", "echo");
  if (body.suffix !== undefined && body.suffix !== null && body.suffix !== "")
    throw invalidRequest("'suffix' (fill-in-the-middle) is not supported: leave it out.", "suffix");
  if (body.best_of !== undefined && body.best_of !== null && body.best_of > 1)
    throw invalidRequest("'best_of' must be 1: this gateway generates one candidate per prompt.", "best_of");
  if (body.logprobs !== undefined && body.logprobs !== null) throw invalidRequest("Log probabilities are not supported: leave out 'logprobs'.", "logprobs");
  const job: CompletionJob = {
    kind: "completion",
    id: identity.id,
    requestId: identity.requestId,
    model: model.id,
    prompts: textInputs(body.prompt, "prompt", "Token-array prompts are not supported: send the prompt as text (a string or a list of strings)."),
    maxTokens: maxTokens(body.max_tokens, model),
    sampling: sampling(body, model),
    stop: stopSequences(body.stop),
  };
  if (choices > 1) job.n = choices;
  return job;
}

export function buildEmbeddingJob(body: EmbeddingRequest, model: ModelConfig, identity: JobIdentity): EmbeddingJob {
  requireRemoteTask(model, "feature-extraction", "embeddings");
  if (model.backend === "llama" && !model.embeddings)
    throw invalidRequest(
      `The model '${model.id}' does not serve embeddings (they are disabled for it in the configuration). Choose a model with embeddings enabled.`,
      "model",
      "model_not_supported",
    );
  const input = textInputs(body.input, "input", "Token-array inputs are not supported: send the input as text (a string or a list of strings).");
  input.forEach((text, index) => {
    if (text === "") throw invalidRequest("Input texts must not be empty.", typeof body.input === "string" ? "input" : `input[${index}]`);
  });
  return { kind: "embedding", id: identity.id, requestId: identity.requestId, model: model.id, input };
}

// ---------------------------------------------------------------------------

/** A remote model answers only the OpenAI routes of its task; local models answer them all. */
function requireRemoteTask(model: ModelConfig, task: TaskName, what: string): void {
  if (model.backend !== "hf" || servesTask(model, task)) return;
  throw invalidRequest(
    `The model '${model.id}' serves ${model.task}, not ${what}. Call POST /v1/tasks/${model.task} for it, or choose a ${task} model.`,
    "model",
    "model_not_supported",
  );
}

/**
 * Choices the request asks for (OpenAI `n`, default 1, at most 8): a local
 * model generates them one after another; a remote model makes one upstream
 * call per choice (not every server honours `n`).
 */
function choiceCount(n: number | null | undefined, model: ModelConfig): number {
  if (n === undefined || n === null || n === 1) return 1;
  if (!Number.isInteger(n) || n < 1 || n > MAX_CHOICES)
    throw invalidRequest(
      `'n' must be an integer from 1 to ${MAX_CHOICES} (got ${n}): ${model.backend === "hf" ? "each choice is one call to the remote model" : "the choices are generated one after another"}.`,
      "n",
    );
  return n;
}

/**
 * How many alternatives per token a chat request wants with its log
 * probabilities (OpenAI `top_logprobs`, default 0), or undefined when it
 * wants none. A remote model's server computes them; llama.cpp's chat
 * generation here does not report them, so a local model refuses.
 */
function logprobsWanted(body: Pick<ChatCompletionRequest, "logprobs" | "top_logprobs">, model: ModelConfig): number | undefined {
  const top = body.top_logprobs ?? undefined;
  if (body.logprobs !== true) {
    // 0 asks for nothing; more without `logprobs` is a request that cannot be met as written.
    if (top !== undefined && top > 0) throw invalidRequest("'top_logprobs' needs 'logprobs': true. Set 'logprobs' to true, or leave out 'top_logprobs'.", "top_logprobs");
    return undefined;
  }
  if (model.backend !== "hf")
    throw invalidRequest(
      `The model '${model.id}' does not report log probabilities (it is a local model): leave out 'logprobs', or choose a remote model.`,
      "logprobs",
    );
  return top ?? 0;
}

/**
 * OpenAI `logit_bias`, checked for shape: token-id keys, biases in
 * [-100, 100], at most MAX_LOGIT_BIAS entries. Undefined when empty. Whether
 * each id is in the model's vocabulary is the engine's check.
 */
function logitBias(bias: SamplingRequest["logit_bias"], model: ModelConfig): Record<string, number> | undefined {
  if (bias === undefined || bias === null) return undefined;
  const entries = Object.entries(bias);
  if (entries.length === 0) return undefined;
  // A remote provider may not take it, or read the ids with another tokenizer: refused rather than passed on.
  if (model.backend === "hf")
    throw invalidRequest(`The model '${model.id}' does not take 'logit_bias' (it is a remote model): leave it out, or choose a local model.`, "logit_bias");
  if (entries.length > MAX_LOGIT_BIAS)
    throw invalidRequest(`'logit_bias' may hold at most ${MAX_LOGIT_BIAS} entries (got ${entries.length}): drop the least important ones.`, "logit_bias");
  const result: Record<string, number> = {};
  for (const [key, value] of entries) {
    const param = `logit_bias.${key}`;
    if (!/^(0|[1-9]\d*)$/.test(key) || !Number.isSafeInteger(Number(key)))
      throw invalidRequest(`Invalid key in 'logit_bias': '${key}'. Keys must be token ids, written as non-negative integers without leading zeros ("15339").`, param);
    if (typeof value !== "number" || !Number.isFinite(value))
      throw invalidRequest(`Invalid type for '${param}': expected a number from -100 to 100, but got ${JSON.stringify(value)} instead.`, param);
    if (value < -100 || value > 100)
      throw invalidRequest(`Invalid '${param}': the bias must be from -100 to 100 (-100 bans the token, 100 all but forces it), but got ${value} instead.`, param);
    result[key] = value;
  }
  return result;
}

/** The requested output limit, defaulted and capped by the model's configuration. */
function maxTokens(requested: number | null | undefined, model: ModelConfig): number {
  // Remote models enforce their own limits; the gateway only fills in a default.
  if (model.backend === "hf") return requested ?? DEFAULT_REMOTE_MAX_TOKENS;
  return Math.min(requested ?? model.defaultMaxTokens, model.maxTokens);
}

function sampling(body: SamplingRequest, model: ModelConfig): JobSampling {
  const result: JobSampling = model.backend === "llama" ? { ...model.sampling } : {};
  if (body.temperature !== undefined && body.temperature !== null) result.temperature = body.temperature;
  if (body.top_p !== undefined && body.top_p !== null) result.topP = body.top_p;
  if (body.seed !== undefined && body.seed !== null) result.seed = body.seed;
  if (body.presence_penalty !== undefined && body.presence_penalty !== null) result.presencePenalty = body.presence_penalty;
  if (body.frequency_penalty !== undefined && body.frequency_penalty !== null) result.frequencyPenalty = body.frequency_penalty;
  const bias = logitBias(body.logit_bias, model);
  if (bias !== undefined) result.logitBias = bias;
  return result;
}

function stopSequences(stop: SamplingRequest["stop"]): string[] {
  if (stop === undefined || stop === null) return [];
  // An empty stop sequence would end every generation at once.
  return (typeof stop === "string" ? [stop] : stop).filter((sequence) => sequence !== "");
}

/** A string or list of strings; token arrays (lists of integers) are refused with `message`. */
function textInputs(value: string | string[] | number[] | number[][], param: string, message: string): string[] {
  if (typeof value === "string") return [value];
  if (value.some((item) => typeof item !== "string")) throw invalidRequest(message, param, "unsupported_input");
  return value as string[];
}

// ---------------------------------------------------------------------------
// Chat

function chatMessage(message: ChatMessage, index: number): JobChatMessage {
  const param = `messages[${index}]`;
  switch (message.role) {
    case "system":
    case "developer":
      return withName({ role: "system", content: contentText(message.content, param) }, message.name);
    case "user":
      return withName({ role: "user", content: contentText(message.content, param) }, message.name);
    case "assistant": {
      const result: JobChatMessage = { role: "assistant", content: message.content == null ? "" : contentText(message.content, param) };
      if (message.tool_calls != null && message.tool_calls.length > 0)
        result.toolCalls = message.tool_calls.map((call) => ({ id: call.id, name: call.function.name, arguments: call.function.arguments }));
      return withName(result, message.name);
    }
    case "tool":
      return { role: "tool", content: contentText(message.content, param), toolCallId: message.tool_call_id };
  }
}

function withName(message: JobChatMessage, name: string | undefined): JobChatMessage {
  if (name !== undefined) message.name = name;
  return message;
}

/** Text of a message: a string as is, text parts joined with newlines; other parts are refused. */
function contentText(content: string | ChatContentPart[], param: string): string {
  if (typeof content === "string") return content;
  const texts: string[] = [];
  content.forEach((part, partIndex) => {
    const partParam = `${param}.content[${partIndex}]`;
    if (part.type === "text") {
      if (typeof part.text !== "string") throw invalidRequest(`Missing required parameter: '${partParam}.text'.`, `${partParam}.text`);
      texts.push(part.text);
    } else if (part.type === "refusal") {
      // An earlier refusal carries no content the model needs to see again.
    } else {
      throw invalidRequest(
        `Content parts of type '${part.type}' are not supported: the models served here read text only. Send a string or parts of type 'text'.`,
        `${partParam}.type`,
        "unsupported_content_type",
      );
    }
  });
  return texts.join("\n");
}

function chatTools(body: ChatCompletionRequest): JobTool[] | undefined {
  if (body.tools == null || body.tools.length === 0) return undefined;
  const seen = new Set<string>();
  return body.tools.map((tool, index) => {
    const name = tool.function.name;
    if (seen.has(name)) throw invalidRequest(`Tool names must be unique: '${name}' is declared twice.`, `tools[${index}].function.name`);
    seen.add(name);
    const result: JobTool = { name };
    if (tool.function.description !== undefined) result.description = tool.function.description;
    if (tool.function.parameters !== undefined) result.parameters = tool.function.parameters;
    return result;
  });
}

function chatToolChoice(choice: ChatCompletionRequest["tool_choice"], tools: JobTool[]): JobToolChoice {
  if (choice === undefined || choice === null) return "auto";
  if (typeof choice === "string") return choice;
  const name = choice.function.name;
  if (!tools.some((tool) => tool.name === name))
    throw invalidRequest(`'tool_choice' names the function '${name}', which is not among the declared 'tools'.`, "tool_choice.function.name");
  return { name };
}

function chatResponseFormat(format: ChatCompletionRequest["response_format"]): JobResponseFormat | undefined {
  if (format === undefined || format === null || format.type === "text") return undefined;
  if (format.type === "json_object") return { type: "json_object" };
  const { name, schema, strict } = format.json_schema;
  // A json_schema without a schema constrains the output no more than json_object.
  if (schema === undefined) return { type: "json_object" };
  const result: JobResponseFormat = { type: "json_schema", name, schema };
  if (strict !== undefined && strict !== null) result.strict = strict;
  return result;
}

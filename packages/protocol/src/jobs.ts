/**
 * Jobs and job events: the plain-JSON contract between the gateway and the
 * engines. A job carries no functions, grammars or signals, so the same value
 * can run in-process or travel through Redis to a worker on another machine.
 */
import type { ErrorPayload } from "./errors.js";
import type { TaskJob, TaskResultEvent } from "./tasks.js";

/** A chat message after the gateway has normalised OpenAI's many input shapes. */
export interface JobChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  /** Text content; content parts are joined by the gateway. */
  content: string;
  /** Function name of a `tool` message or a message author name. */
  name?: string;
  /** Tool calls an assistant message made earlier in the conversation. */
  toolCalls?: JobToolCall[];
  /** The call a `tool` message answers. */
  toolCallId?: string;
}

export interface JobToolCall {
  id: string;
  name: string;
  /** JSON text, exactly as the model produced it. */
  arguments: string;
}

/** A function the model may call (OpenAI `tools[].function`). */
export interface JobTool {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters?: Record<string, unknown>;
}

/** OpenAI `tool_choice`, normalised: a named function becomes `{ name }`. */
export type JobToolChoice = "auto" | "none" | "required" | { name: string };

/** Output constraint; the engine enforces it with a grammar. */
export type JobResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; name: string; schema: Record<string, unknown>; strict?: boolean };

/** One alternative for an output token, as OpenAI writes it (`bytes`: the token's UTF-8 bytes). */
export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

/** One output token with its log probability and the most likely alternatives (OpenAI `ChatCompletionTokenLogprob`). */
export interface TokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

/** Sampling settings after per-model defaults are applied. */
export interface JobSampling {
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /**
   * OpenAI `logit_bias`: token id (of the model's own tokenizer, as a decimal
   * string) → bias from -100 to 100 added to that token's logit. The gateway
   * checks the shape; the engine checks the ids against the vocabulary.
   */
  logitBias?: Record<string, number>;
}

interface JobBase {
  /** Made by the gateway; never taken from a client. */
  id: string;
  /** The client's `x-request-id` (or one the gateway made), for logs. */
  requestId: string;
  /** Catalog id of the model (aliases already resolved). */
  model: string;
  /** Epoch milliseconds after which the job is worthless. */
  deadlineAt?: number;
}

export interface ChatJob extends JobBase {
  kind: "chat";
  /**
   * Whether the client reads the answer as a stream. The events are the same
   * either way; with `false` an engine may produce them in one piece (a
   * remote model: one upstream call without server-sent events). Absent:
   * the engine chooses.
   */
  stream?: boolean;
  messages: JobChatMessage[];
  /** Output token limit, already defaulted and capped by the gateway. */
  maxTokens: number;
  sampling: JobSampling;
  stop: string[];
  responseFormat?: JobResponseFormat;
  tools?: JobTool[];
  toolChoice?: JobToolChoice;
  /**
   * Choices to generate (OpenAI `n`); absent: 1. Choice `i` samples with
   * `sampling.seed + i` when a seed is set, so the answer is reproducible.
   */
  n?: number;
  /**
   * Log probabilities of the output tokens (OpenAI `logprobs: true`): present
   * asks for them, the number is how many most likely alternatives to list
   * per token (OpenAI `top_logprobs`, 0-20). Remote models only.
   */
  logprobs?: number;
}

export interface CompletionJob extends JobBase {
  kind: "completion";
  /** `n` choices per prompt, in order: choice `i` of prompt `p` has index `p * n + i`. */
  prompts: string[];
  maxTokens: number;
  sampling: JobSampling;
  stop: string[];
  /** Choices per prompt (OpenAI `n`); absent: 1. Seeds as for chat: `sampling.seed + i`. */
  n?: number;
}

export interface EmbeddingJob extends JobBase {
  kind: "embedding";
  input: string[];
}

/**
 * A chat message as a client sent it to the router: content parts are kept
 * (`image_url` and `input_audio` parts become the run's inputs).
 */
export interface OrchestrationJobMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string | ({ type: string } & Record<string, unknown>)[] | null;
  name?: string;
}

/**
 * A router run (the HuggingGPT loop): plan, select, execute, respond. Its
 * events are `progress` for each stage, `text-delta` for the answer, one
 * `run` with the run record, then `finish` (with the run's LLM token usage).
 */
export interface OrchestrationJob extends JobBase {
  kind: "orchestration";
  messages: OrchestrationJobMessage[];
  /** Plan and select only. */
  dryRun?: boolean;
  /** A plan the client supplies; validated by the router (a 400 naming the bad node). */
  plan?: unknown;
}

/** Every job kind; `task` jobs (remote specialists) are defined in `tasks.ts`. */
export type Job = ChatJob | CompletionJob | EmbeddingJob | TaskJob | OrchestrationJob;
export type JobKind = Job["kind"];

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter";

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/**
 * What an engine streams back for a job. A well-formed stream is either a
 * single `error`, or `accepted` followed by deltas/results and one `finish`
 * per choice, possibly ended early by an `error`.
 */
export type JobEvent =
  | {
      /** The job passed every check that can fail before generation. */
      type: "accepted";
      jobId: string;
      model: string;
      /** Prompt tokens counted by the model's own tokenizer (all choices). */
      promptTokens: number;
      /** Which worker took the job, for logs. */
      worker?: string;
    }
  | {
      type: "text-delta";
      index: number;
      text: string;
      /** The log probabilities of this text's tokens, in order, when the job asked for them. */
      logprobs?: TokenLogprob[];
    }
  | {
      type: "tool-call-delta";
      index: number;
      /** Position of the call within the choice's `tool_calls`. */
      toolCallIndex: number;
      /** Present on the first delta of each call. */
      id?: string;
      name?: string;
      argumentsDelta: string;
    }
  | {
      /** Embedding vectors, one per input, in order. */
      type: "embeddings";
      vectors: number[][];
    }
  | {
      type: "finish";
      index: number;
      finishReason: FinishReason;
      /** Tokens of this choice; prompt tokens are counted once, in `accepted`. */
      completionTokens: number;
      /**
       * Prompt tokens, when the engine learns them only at the end (remote
       * models report usage last): replaces the count sent in `accepted`.
       */
      promptTokens?: number;
    }
  /** The output of a `task` job. */
  | TaskResultEvent
  /** A router run's progress (plan made, model chosen, task started or finished), as the planner reports it. */
  | {
      type: "progress";
      progress: RouterProgress;
      /** The same report as one line of text, for chat clients. */
      text: string;
    }
  /** A router run's record, sent once before its `finish` (or its in-band `error`). */
  | { type: "run"; record: RouterRunRecord }
  | { type: "error"; error: ErrorPayload };

export type JobEventType = JobEvent["type"];

export type TextDeltaEvent = Extract<JobEvent, { type: "text-delta" }>;

/** Two text deltas of one choice as one (transports join deltas that wait): text and log probabilities in order. */
export function joinTextDeltas(first: TextDeltaEvent, second: TextDeltaEvent): TextDeltaEvent {
  const joined: TextDeltaEvent = { ...first, text: first.text + second.text };
  if (second.logprobs !== undefined) joined.logprobs = first.logprobs === undefined ? second.logprobs : [...first.logprobs, ...second.logprobs];
  return joined;
}

/** One progress report of a router run; its shape is the planner's `ProgressEvent`. */
export interface RouterProgress {
  type: string;
  runId: string;
  [field: string]: unknown;
}

/** A router run's record; its full shape is the planner's `RunRecord` (plain JSON). */
export interface RouterRunRecord {
  id: string;
  status: string;
  createdAt: number;
}

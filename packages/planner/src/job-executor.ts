/**
 * The default executor: each task becomes a job submitted through an
 * injected `submit` (the gateway binds it to its Dispatcher). Remote
 * specialists get a `TaskJob`; a local chat model asked for a text task
 * (`conversational`, `text-generation`) gets a `ChatJob`. Arguments map onto
 * the task's request shape here, in one place.
 */
import {
  GatewayError,
  invalidRequest,
  type BinaryInput,
  type ChatJob,
  type JobEvent,
  type TaskJob,
  type TaskJobPayload,
  type TaskName,
} from "@switchboard/protocol";
import type { ResolvedArgument, TaskExecution, TaskExecutionResult, TaskExecutor } from "./types.js";

const text = (args: Record<string, ResolvedArgument>, name: string): string => {
  const value = args[name];
  if (typeof value !== "string") throw invalidRequest(`'${name}' must be text.`, `args.${name}`, "invalid_task_argument");
  return value;
};

const binary = (args: Record<string, ResolvedArgument>, name: string): BinaryInput => {
  const value = args[name];
  if (value === undefined || (Array.isArray(value) && typeof value[0] !== "string")) throw invalidRequest(`'${name}' must be binary data.`, `args.${name}`, "invalid_task_argument");
  return value as BinaryInput;
};

/** A table given as text: JSON columns (`{"col": [...]}`) or CSV with a header row. */
export function parseTable(source: string): Record<string, (string | number)[]> {
  const trimmed = source.trim();
  if (trimmed.startsWith("{")) {
    const value: unknown = JSON.parse(trimmed);
    if (typeof value === "object" && value !== null && Object.values(value).every(Array.isArray)) return value as Record<string, (string | number)[]>;
    throw invalidRequest("A table in JSON must map column names to arrays.", "args.table", "invalid_task_argument");
  }
  const rows = trimmed
    .split(/\r?\n/)
    .filter((line) => line.trim().length > 0)
    .map((line) => line.split(",").map((cell) => cell.trim()));
  const header = rows.shift();
  if (!header || rows.length === 0) throw invalidRequest("A table needs a header row and at least one data row.", "args.table", "invalid_task_argument");
  const cell = (value: string | undefined) => (value !== undefined && value !== "" && Number.isFinite(Number(value)) ? Number(value) : (value ?? ""));
  return Object.fromEntries(header.map((name, column) => [name, rows.map((row) => cell(row[column]))]));
}

/** The `{task, inputs, parameters}` of a task job, from a plan task's resolved arguments. */
export function taskJobPayload(task: string, args: Record<string, ResolvedArgument>): TaskJobPayload {
  switch (task as TaskName) {
    case "question-answering":
      return { task: "question-answering", inputs: { question: text(args, "question"), context: text(args, "context") } };
    case "sentence-similarity":
      return { task: "sentence-similarity", inputs: { source_sentence: text(args, "source_sentence"), sentences: [text(args, "sentence")] } };
    case "tabular-classification":
      return { task: "tabular-classification", inputs: { data: parseTable(text(args, "table")) } };
    case "visual-question-answering":
    case "document-question-answering":
      return { task: task as "visual-question-answering", inputs: { image: binary(args, "image"), question: text(args, "text") } };
    case "image-to-image": {
      const prompt = args.text;
      return { task: "image-to-image", inputs: binary(args, "image"), ...(typeof prompt === "string" ? { parameters: { prompt } } : {}) };
    }
    case "object-detection":
    case "image-classification":
    case "image-to-text":
    case "image-segmentation":
    case "depth-estimation":
      return { task, inputs: binary(args, "image") } as TaskJobPayload;
    case "automatic-speech-recognition":
    case "audio-to-audio":
    case "audio-classification":
      return { task, inputs: binary(args, "audio") } as TaskJobPayload;
    case "token-classification":
    case "translation":
    case "summarization":
    case "conversational":
    case "text-generation":
    case "text-to-image":
    case "text-to-video":
    case "text-to-speech":
    case "text-classification":
    case "feature-extraction":
      return { task, inputs: text(args, "text") } as TaskJobPayload;
    default:
      throw invalidRequest(`The router cannot run the task '${task}'.`, "task", "unknown_task");
  }
}

/** `Dispatcher.submit`, narrowed to the jobs the router runs. */
export type JobSubmit = (job: TaskJob | ChatJob, options: { signal: AbortSignal }) => AsyncIterable<JobEvent>;

export interface JobExecutorOptions {
  /** Submits a job and streams its events: the gateway passes `Dispatcher.submit`. */
  submit: JobSubmit;
  /** `max_tokens` of chat jobs for text tasks on local models. */
  chatMaxTokens?: number;
  /** Backends whose models take chat jobs rather than task jobs; `["llama"]` by default. */
  chatBackends?: readonly string[];
}

const CHAT_TASKS = new Set(["conversational", "text-generation"]);

/** An executor that runs each task as a job through `submit`. */
export function createJobExecutor(options: JobExecutorOptions): TaskExecutor {
  const chatBackends = new Set(options.chatBackends ?? ["llama"]);
  return {
    async run(execution: TaskExecution, signal: AbortSignal): Promise<TaskExecutionResult> {
      const id = `${execution.runId}-task-${execution.taskId}`;
      const deadline = execution.deadlineAt === undefined ? {} : { deadlineAt: execution.deadlineAt };
      if (chatBackends.has(execution.backend)) {
        if (!CHAT_TASKS.has(execution.task)) throw invalidRequest(`The local model '${execution.model}' cannot run '${execution.task}'.`, "task", "unsupported_task");
        const job: ChatJob = {
          kind: "chat",
          id,
          requestId: execution.requestId,
          model: execution.model,
          messages: [{ role: "user", content: text(execution.args, "text") }],
          maxTokens: options.chatMaxTokens ?? 256,
          sampling: {},
          stop: [],
          ...deadline,
        };
        let generated = "";
        for await (const event of options.submit(job, { signal })) {
          if (event.type === "text-delta") generated += event.text;
          else if (event.type === "error") throw GatewayError.fromPayload(event.error);
        }
        return { output: { generated_text: generated }, model: execution.model };
      }
      const job = {
        kind: "task",
        id,
        requestId: execution.requestId,
        model: execution.model,
        ...(execution.fallbackModels.length > 0 ? { fallbackModels: execution.fallbackModels } : {}),
        ...deadline,
        ...taskJobPayload(execution.task, execution.args),
      } as TaskJob;
      for await (const event of options.submit(job, { signal })) {
        if (event.type === "task-result") return { output: event.output, model: event.model };
        if (event.type === "error") throw GatewayError.fromPayload(event.error);
      }
      throw new GatewayError(`The job for task ${execution.taskId} ended without a result.`, { status: 502, type: "server_error", code: "no_task_result" });
    },
  };
}

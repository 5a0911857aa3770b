/**
 * The router's contract: plans, the injected edges (LLM, executor, catalog
 * view, observer), progress events and the run record. Everything a run
 * produces is plain JSON, so the gateway can store it, stream it, or send it
 * across the queue as it is.
 */
import type { BinaryInput, ChatJob, ErrorPayload, JobEvent, Modality } from "@switchboard/protocol";

// ---------------------------------------------------------------------------
// Plans

/**
 * One task of a plan, in HuggingGPT's format. `id` is the task's position;
 * `dep` is `[-1]` or the ids of earlier tasks whose outputs it uses; `args`
 * maps each input name of the task to a literal string or a reference:
 * `<GENERATED>-k` (an output of task `k`, which must be in `dep`) or
 * `<INPUT>-n` (the run's n-th input, see {@link RunInput}).
 */
export interface PlanTask {
  id: number;
  task: string;
  dep: number[];
  args: Record<string, string>;
}

/** A plan: tasks in order, at most the configured number (8 by default). */
export type Plan = PlanTask[];

/** One input of a task: its argument name and the kind of data it takes. */
export interface TaskInputSpec {
  name: string;
  modality: Modality;
  /** Optional inputs may be left out of `args`. */
  optional?: boolean;
  description?: string;
}

/** What a task takes and produces; the planner's grammar and the validator are built from these. */
export interface TaskSignature {
  task: string;
  inputs: TaskInputSpec[];
  outputs: Modality[];
  /** One line for the planner's prompt. */
  description?: string;
}

/** A problem found in a plan; `param` names the bad node (`plan[2].args.image`). */
export interface PlanProblem {
  param: string;
  code: PlanProblemCode;
  message: string;
}

export type PlanProblemCode =
  | "invalid_plan"
  | "too_many_tasks"
  | "invalid_task"
  | "bad_id"
  | "unknown_task"
  | "invalid_dep"
  | "cycle"
  | "forward_dependency"
  | "dangling_dependency"
  | "dependency_without_reference"
  | "invalid_args"
  | "unknown_argument"
  | "missing_argument"
  | "invalid_argument"
  | "malformed_reference"
  | "dangling_reference"
  | "forward_reference"
  | "reference_not_in_dep"
  | "wrong_modality";

// ---------------------------------------------------------------------------
// Inputs

/**
 * A file the user attached to the request, which tasks take as an argument
 * with `<INPUT>-n` (`n` is its position in the run's inputs). Chat content
 * parts `image_url` and `input_audio` become inputs in message order; a
 * request may add more explicitly.
 */
export interface RunInput {
  /** The reference tasks use: `<INPUT>-n`. */
  id: string;
  modality: "image" | "audio" | "video";
  /** The data: a data URL, an http(s) URL (fetched by the engine under its SSRF rules), base64, or a tagged object. */
  value: BinaryInput;
  mimeType?: string;
  /** Where it came from, for the run record. */
  source: "image_url" | "input_audio" | "inputs";
}

/** OpenAI chat content parts the router understands; other part types are kept as text when they carry any. */
export type OrchestrationContentPart =
  | { type: "text"; text: string }
  | { type: "image_url"; image_url: { url: string; detail?: string } }
  | { type: "input_audio"; input_audio: { data: string; format: string } }
  | { type: string; [key: string]: unknown };

/** A chat message as a client sends it to the router. */
export interface OrchestrationMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content: string | OrchestrationContentPart[] | null;
  name?: string;
}

// ---------------------------------------------------------------------------
// Injected edges

/**
 * A chat model the router talks to (planner, selector, responder). `submit`
 * runs one chat job and streams its events, exactly as `Dispatcher.submit`
 * does, so the gateway binds it to the dispatcher.
 */
export interface ChatLlm {
  /** Catalog id of the model; jobs carry it. */
  model: string;
  /**
   * True when the engine enforces `response_format: json_schema` with a
   * grammar, so output is valid by construction (local llama models). False
   * for remote models: their output is validated, and re-planned when wrong.
   */
  grammarEnforced: boolean;
  submit(job: ChatJob, options: { signal: AbortSignal }): AsyncIterable<JobEvent>;
}

/** The LLMs of one run; the selector and the responder default to the planner. */
export interface RouterLlms {
  planner: ChatLlm;
  selector?: ChatLlm;
  responder?: ChatLlm;
}

/** Health of a model as the gateway's circuit breaker sees it. */
export type CircuitState = "closed" | "open" | "half-open";

/** A model that can serve a task, with what the router ranks it by. */
export interface CatalogCandidate {
  /** Catalog id. */
  id: string;
  task: string;
  /** Which engine serves it: `llama`, `hf`. */
  backend: string;
  /** Runs on this gateway's hardware. */
  local: boolean;
  description?: string;
  /** Popularity on the Hub. */
  downloads?: number;
  likes?: number;
  /** Latency measured by this gateway (a recent median), milliseconds. */
  latencyMs?: number;
  /** Share of recent calls that failed, 0..1. */
  errorRate?: number;
  circuit?: CircuitState;
}

/** The part of the catalog the router reads; the gateway fills it from the config and live measurements. */
export interface CatalogView {
  /** Every model that serves `task`, circuit state included (the router drops open circuits). */
  candidates(task: string): CatalogCandidate[];
}

/** A resolved argument value handed to the executor. */
export type ResolvedArgument = string | BinaryInput | number[][];

/** One task to run, with its arguments resolved from literals, inputs and earlier outputs. */
export interface TaskExecution {
  runId: string;
  requestId: string;
  taskId: number;
  task: string;
  /** The chosen model (catalog id) and its backend. */
  model: string;
  backend: string;
  /** Next candidates to try when the chosen model is unavailable. */
  fallbackModels: string[];
  args: Record<string, ResolvedArgument>;
  /** Epoch milliseconds: the run's deadline. */
  deadlineAt?: number;
}

/** What a task produced; `model` is the one that answered (a fallback may have). */
export interface TaskExecutionResult {
  output: unknown;
  model?: string;
}

/**
 * Runs one task as a job (a `TaskJob`, or a `ChatJob` for local chat
 * models). Throws a `GatewayError` (or anything) when the task fails; must
 * stop promptly when `signal` aborts.
 */
export interface TaskExecutor {
  run(execution: TaskExecution, signal: AbortSignal): Promise<TaskExecutionResult>;
}

/** Stages of a run, for timings, progress and metrics. */
export type Stage = "plan" | "select" | "execute" | "respond";

/**
 * Metrics hooks; every method optional. The gateway binds them to its
 * prom-client registry. Durations are seconds.
 */
export interface OrchestrationObserver {
  stageFinished?(info: { stage: Stage; seconds: number; outcome: "ok" | "error" | "cancelled" }): void;
  planMade?(info: { tasks: number; replans: number; source: PlanSource; fallback: boolean }): void;
  taskFinished?(info: { task: string; backend: string; status: TaskStatus; seconds: number }): void;
  runFinished?(info: { status: RunStatus; seconds: number; overheadSeconds: number }): void;
}

// ---------------------------------------------------------------------------
// Configuration

/** Settings of one LLM role. */
export interface LlmRoleSettings {
  maxTokens: number;
  temperature?: number;
  seed?: number;
}

export interface OrchestrationConfig {
  /** Most tasks in a plan. */
  maxTasks: number;
  /** Candidates the selector LLM chooses among. */
  topK: number;
  /** Run deadline for plan, select and execute, milliseconds; the answer is still written after it. */
  deadlineMs: number;
  /** Most tasks one run may start; the rest are skipped. */
  taskBudget: number;
  /** Re-plans a remote planner gets after an invalid plan. */
  maxReplans: number;
  /** Longest literal string a local planner may write for an argument. */
  literalMaxLength: number;
  /** Longest reason the selector may give. */
  reasonMaxLength: number;
  /**
   * Offer file names the request mentions (`example.jpg`) as literal
   * arguments of their modality. Off in the product (such names resolve to
   * nothing); on for benchmarks written that way, such as TaskBench.
   */
  fileNameMentions: boolean;
  planner: LlmRoleSettings;
  selector: LlmRoleSettings;
  responder: LlmRoleSettings;
}

// ---------------------------------------------------------------------------
// Progress and the run record

export type PlanSource = "local" | "remote" | "client";

export type TaskStatus = "pending" | "running" | "succeeded" | "failed" | "skipped" | "cancelled";

/**
 * `planned`: a dry run ended after select. `completed`: the answer is
 * written (some tasks may have failed; see `tasks`). `cancelled`: the signal
 * aborted the run. `failed`: no answer could be written (`error` says why).
 */
export type RunStatus = "running" | "planned" | "completed" | "cancelled" | "failed";

/** The model chosen for one task, and why. */
export interface SelectionRecord {
  taskId: number;
  task: string;
  /** Catalog id; null when no model could serve the task. */
  model: string | null;
  backend: string | null;
  reason: string;
  /** Whether the selector LLM chose (false: one candidate, no candidate, or its answer was unusable). */
  byLlm: boolean;
  /** The ranked candidates shown (top k), best first. */
  candidates: { id: string; score: number }[];
  fallbackModels: string[];
}

/** A binary output of a task, by reference (never its bytes). */
export interface ArtifactRecord {
  /** Where in the output it is, as a JSON path (`image`, `[0].mask`). */
  path: string;
  type: "base64" | "artifact";
  mimeType: string;
  bytes: number;
  /** Artifact id and URL when the output is a stored artifact. */
  id?: string;
  url?: string;
}

export interface TaskRecord {
  id: number;
  task: string;
  model: string | null;
  backend: string | null;
  status: TaskStatus;
  /** Arguments as given to the executor; binary data is described, not copied. */
  inputs?: Record<string, unknown>;
  output?: unknown;
  artifacts: ArtifactRecord[];
  startedAt?: number;
  finishedAt?: number;
  durationMs?: number;
  error?: ErrorPayload;
  /** Why the task did not run (skipped or cancelled). */
  reason?: string;
}

/** How the plan was made. */
export interface PlannerRecord {
  source: PlanSource;
  model: string | null;
  /** LLM calls the planner made (one per step for a local planner). */
  calls: number;
  /** Plans a remote planner wrote that failed validation, with their problems. */
  rejected: { attempt: number; problems: PlanProblem[] }[];
  /** Steps a local planner wrote that the grammar should have prevented (expected 0; kept as a check). */
  rejectedSteps: number;
  /** Local steps cut off by `max_tokens` (the plan ends there). */
  truncatedSteps: number;
  /** Literal arguments that spelled a reference and were neutralised (see the README). */
  neutralisedLiterals: number;
  /** Why the router answered as plain chat instead of running a plan. */
  fallbackReason?: string;
  /** Why planning stopped early (an LLM error, the deadline). */
  note?: string;
}

export interface StageTimings {
  planMs?: number;
  selectMs?: number;
  executeMs?: number;
  respondMs?: number;
  totalMs?: number;
  /** Time some model call (LLM or task) was in flight. */
  modelMs?: number;
  /** The loop's own time: total minus model time. */
  overheadMs?: number;
}

/** Everything a run did; served as `GET /v1/orchestrations/{id}`. */
export interface RunRecord {
  id: string;
  requestId: string;
  status: RunStatus;
  createdAt: number;
  finishedAt?: number;
  dryRun: boolean;
  /** The request's files; `artifactId` when the bytes were stored as an artifact (tasks get the reference). */
  inputs: { id: string; modality: string; mimeType?: string; source: RunInput["source"]; artifactId?: string; bytes?: number }[];
  plan: Plan;
  planner: PlannerRecord;
  /** Re-plans made (remote planners). */
  replans: number;
  selections: SelectionRecord[];
  tasks: TaskRecord[];
  answer: string;
  timings: StageTimings;
  error?: ErrorPayload;
}

/** What a run streams as it goes, for the gateway to relay. */
export type ProgressEvent =
  | { type: "run-started"; runId: string }
  | { type: "plan"; runId: string; plan: Plan; source: PlanSource; replans: number; fallbackReason?: string }
  | { type: "selection"; runId: string; selection: SelectionRecord }
  | { type: "task-started"; runId: string; taskId: number; task: string; model: string }
  | {
      type: "task-finished";
      runId: string;
      taskId: number;
      task: string;
      status: TaskStatus;
      durationMs?: number;
      error?: ErrorPayload;
      reason?: string;
    }
  | { type: "answer-delta"; runId: string; text: string }
  | { type: "run-finished"; runId: string; status: RunStatus };

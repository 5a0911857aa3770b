/**
 * One router run: plan, select, execute, respond, with every stage recorded
 * and streamed as progress. Plain functions over injected edges; the gateway
 * adds HTTP, storage of the record and metrics bindings.
 */
import { randomUUID } from "node:crypto";
import { TASK_NAMES, asGatewayError, type BinaryInput } from "@switchboard/protocol";
import { ModelClock } from "./llm-call.js";
import { DEFAULT_MAX_TASKS, assertValidPlan } from "./plan-validation.js";
import { makePlan } from "./planner.js";
import { respond, resultsText } from "./responder.js";
import { findMentions, prepareConversation } from "./run-inputs.js";
import { executePlan } from "./scheduler.js";
import { rankCandidates, selectModels } from "./selector.js";
import { taskSignatures } from "./task-signatures.js";
import type {
  CatalogView,
  OrchestrationConfig,
  OrchestrationMessage,
  OrchestrationObserver,
  ProgressEvent,
  RouterLlms,
  RunInput,
  RunRecord,
  Stage,
  TaskExecutor,
  TaskSignature,
} from "./types.js";

/** Defaults for every setting of a run. */
export const DEFAULT_ORCHESTRATION_CONFIG: Readonly<OrchestrationConfig> = Object.freeze({
  maxTasks: DEFAULT_MAX_TASKS,
  topK: 5,
  deadlineMs: 120_000,
  taskBudget: DEFAULT_MAX_TASKS,
  maxReplans: 2,
  literalMaxLength: 160,
  reasonMaxLength: 120,
  fileNameMentions: false,
  planner: { maxTokens: 1024, temperature: 0 },
  selector: { maxTokens: 256, temperature: 0 },
  responder: { maxTokens: 512 },
});

/** Fills in defaults; nested role settings merge field by field. */
export function orchestrationConfig(overrides: Partial<OrchestrationConfig> = {}): OrchestrationConfig {
  const base = DEFAULT_ORCHESTRATION_CONFIG;
  return {
    ...base,
    ...overrides,
    planner: { ...base.planner, ...overrides.planner },
    selector: { ...base.selector, ...overrides.selector },
    responder: { ...base.responder, ...overrides.responder },
  };
}

/** Tasks that have at least one model without an open circuit now, with their signatures. */
export function availableTasks(catalogView: CatalogView, tasks: Iterable<string> = TASK_NAMES): TaskSignature[] {
  return taskSignatures([...tasks].filter((task) => rankCandidates(catalogView.candidates(task)).length > 0));
}

export interface OrchestrationOptions {
  messages: OrchestrationMessage[];
  /** Files given besides the messages' content parts; numbered after them. */
  inputs?: { modality: RunInput["modality"]; value: BinaryInput; mimeType?: string }[];
  /** Plan and select only. */
  dryRun?: boolean;
  /** A plan the client supplies: validated (a 400 naming the bad node), then used instead of planning. */
  plan?: unknown;
  /** Aborting it cancels the whole run (the client went away). */
  signal: AbortSignal;
  llm: RouterLlms;
  executor: TaskExecutor;
  catalogView: CatalogView;
  config?: Partial<OrchestrationConfig>;
  /** The tasks plans may use; by default every task the catalog view has a model for. */
  availableTasks?: readonly TaskSignature[];
  onProgress?: (event: ProgressEvent) => void;
  observer?: OrchestrationObserver;
  /**
   * Stores a file of the request (data URL or base64; http(s) URLs are left
   * for the engines to fetch) and returns its artifact id, so every task
   * gets a reference instead of a copy of the bytes.
   */
  storeInput?: (data: Uint8Array, mimeType: string) => Promise<string>;
  runId?: string;
  requestId?: string;
}

/**
 * Runs the router loop and resolves with the run record (also when tasks
 * failed or the run was cancelled). Throws only for a client plan that does
 * not validate (a 400 `GatewayError` whose `param` names the bad node),
 * before any progress is reported.
 */
export async function runOrchestration(options: OrchestrationOptions): Promise<RunRecord> {
  const config = orchestrationConfig(options.config);
  const startedAt = performance.now();
  const runId = options.runId ?? `run_${randomUUID().replaceAll("-", "")}`;
  const requestId = options.requestId ?? runId;
  const prepared = prepareConversation(options.messages, options.inputs);
  const available = options.availableTasks ?? availableTasks(options.catalogView);
  const clientPlan = options.plan === undefined ? undefined : assertValidPlan(options.plan, available, { maxTasks: config.maxTasks, inputs: prepared.inputs });

  const emit = (event: ProgressEvent) => options.onProgress?.(event);
  const observer = options.observer;
  const clock = new ModelClock();
  const planner = options.llm.planner;
  const selector = options.llm.selector ?? planner;
  const responder = options.llm.responder ?? planner;
  const createdAt = Date.now();
  const deadlineAt = createdAt + config.deadlineMs;
  const record: RunRecord = {
    id: runId,
    requestId,
    status: "running",
    createdAt,
    dryRun: options.dryRun === true,
    inputs: prepared.inputs.map((input) => ({ id: input.id, modality: input.modality, source: input.source, ...(input.mimeType ? { mimeType: input.mimeType } : {}) })),
    plan: [],
    planner: { source: clientPlan ? "client" : planner.grammarEnforced ? "local" : "remote", model: clientPlan ? null : planner.model, calls: 0, rejected: [], rejectedSteps: 0, truncatedSteps: 0, neutralisedLiterals: 0 },
    replans: 0,
    selections: [],
    tasks: [],
    answer: "",
    timings: {},
  };
  emit({ type: "run-started", runId });

  // Plan, select and execute stop at the deadline; the answer is still written.
  const deadline = new AbortController();
  const deadlineTimer = setTimeout(() => deadline.abort(new Error("run deadline")), config.deadlineMs);
  const stageSignal = AbortSignal.any([options.signal, deadline.signal]);
  let stage: Stage = "plan";
  let stageStart = performance.now();
  const endStage = (outcome: "ok" | "error" | "cancelled"): number => {
    const seconds = (performance.now() - stageStart) / 1000;
    observer?.stageFinished?.({ stage, seconds, outcome });
    return Math.round(seconds * 1000 * 1000) / 1000;
  };
  const beginStage = (next: Stage) => {
    stage = next;
    stageStart = performance.now();
  };

  try {
    if (options.storeInput) await storeInputs(prepared.inputs, record, options.storeInput);

    // Plan
    if (clientPlan) record.plan = clientPlan;
    else if (available.length === 0) record.planner.note = "no task has a live model now";
    else {
      const result = await makePlan({
        llm: planner,
        available,
        conversation: prepared.messages,
        inputs: prepared.inputs,
        mentions: findMentions(lastUserText(prepared.messages), { fileNames: config.fileNameMentions }),
        config,
        runId,
        requestId,
        signal: stageSignal,
        runSignal: options.signal,
        deadlineAt,
        clock,
      });
      record.plan = result.plan;
      record.planner = result.record;
      // Every call of a remote planner after the first is a re-plan; a local planner's calls are its steps.
      record.replans = planner.grammarEnforced ? 0 : Math.max(0, result.record.calls - 1);
    }
    record.timings.planMs = endStage("ok");
    observer?.planMade?.({ tasks: record.plan.length, replans: record.replans, source: record.planner.source, fallback: record.planner.fallbackReason !== undefined });
    emit({
      type: "plan",
      runId,
      plan: record.plan,
      source: record.planner.source,
      replans: record.replans,
      ...(record.planner.fallbackReason ? { fallbackReason: record.planner.fallbackReason } : {}),
    });

    // Select
    beginStage("select");
    record.selections = await selectModels(
      { plan: record.plan, catalogView: options.catalogView, llm: selector, conversation: prepared.messages, config, runId, requestId, signal: stageSignal, runSignal: options.signal, deadlineAt, clock },
      (selection) => emit({ type: "selection", runId, selection }),
    );
    record.timings.selectMs = endStage("ok");
    if (record.dryRun) {
      record.status = "planned";
      return record;
    }

    // Execute
    beginStage("execute");
    record.tasks = await executePlan({
      runId,
      requestId,
      plan: record.plan,
      selections: record.selections,
      available,
      inputs: prepared.inputs,
      executor: options.executor,
      signal: options.signal,
      deadlineAt,
      taskBudget: config.taskBudget,
      clock,
      onProgress: emit,
      ...(observer ? { observer } : {}),
    });
    if (options.signal.aborted) throw options.signal.reason ?? new Error("cancelled");
    record.timings.executeMs = endStage("ok");

    // Respond
    beginStage("respond");
    record.answer = await respond({
      llm: responder,
      conversation: prepared.messages,
      results: record.plan.length > 0 ? (maxCharsPerTask) => resultsText(record.plan, record.selections, record.tasks, maxCharsPerTask) : undefined,
      settings: config.responder,
      runId,
      requestId,
      signal: options.signal,
      clock,
      onDelta: (text) => emit({ type: "answer-delta", runId, text }),
    });
    record.timings.respondMs = endStage("ok");
    record.status = "completed";
    return record;
  } catch (error) {
    if (options.signal.aborted) {
      record.status = "cancelled";
      endStage("cancelled");
    } else {
      record.status = "failed";
      record.error = asGatewayError(error).toPayload();
      endStage("error");
    }
    return record;
  } finally {
    clearTimeout(deadlineTimer);
    record.finishedAt = Date.now();
    const totalMs = performance.now() - startedAt;
    const modelMs = clock.busyMs();
    record.timings.totalMs = round(totalMs);
    record.timings.modelMs = round(modelMs);
    record.timings.overheadMs = round(Math.max(0, totalMs - modelMs));
    emit({ type: "run-finished", runId, status: record.status });
    observer?.runFinished?.({ status: record.status, seconds: totalMs / 1000, overheadSeconds: Math.max(0, totalMs - modelMs) / 1000 });
  }
}

/** Turns the request's inline files into artifacts: the inputs then carry references, the record their ids. */
async function storeInputs(inputs: RunInput[], record: RunRecord, store: (data: Uint8Array, mimeType: string) => Promise<string>): Promise<void> {
  for (const [index, input] of inputs.entries()) {
    const inline = inlineBytes(input.value, input.mimeType);
    if (!inline) continue;
    const id = await store(inline.data, inline.mimeType);
    input.value = { type: "artifact", id };
    Object.assign(record.inputs[index]!, { artifactId: id, bytes: inline.data.byteLength });
  }
}

/** The bytes of a data URL or tagged base64 value; undefined for URLs and references. */
function inlineBytes(value: BinaryInput, mimeType: string | undefined): { data: Uint8Array; mimeType: string } | undefined {
  if (typeof value === "string") {
    const match = /^data:([^;,]+)?((?:;[^;,]*)*?);base64,(.*)$/s.exec(value);
    return match ? { data: Buffer.from(match[3]!, "base64"), mimeType: match[1] ?? mimeType ?? "application/octet-stream" } : undefined;
  }
  if (value.type === "base64") return { data: Buffer.from(value.data, "base64"), mimeType: value.mimeType ?? mimeType ?? "application/octet-stream" };
  return undefined;
}

const round = (milliseconds: number) => Math.round(milliseconds * 1000) / 1000;

function lastUserText(messages: readonly { role: string; content: string }[]): string {
  for (let index = messages.length - 1; index >= 0; index--) if (messages[index]!.role === "user") return messages[index]!.content;
  return "";
}

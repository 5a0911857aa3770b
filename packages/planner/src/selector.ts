/**
 * The select stage: for each task of the plan, the catalog's candidates
 * without open circuits, ranked by popularity and by the latency and error
 * rate this gateway measured; the selector LLM picks among the top k under a
 * grammar (`{model: enum, reason: bounded string}`) and says why. One
 * candidate needs no LLM call. Tasks of the same name share one choice.
 */
import { asGatewayError, type JobChatMessage } from "@switchboard/protocol";
import { callLlm, type ModelClock } from "./llm-call.js";
import { selectMessages } from "./prompts.js";
import type { CatalogCandidate, CatalogView, ChatLlm, OrchestrationConfig, Plan, PlanTask, SelectionRecord } from "./types.js";

export interface RankedCandidate {
  candidate: CatalogCandidate;
  score: number;
}

/**
 * Score = log10(1 + downloads) + ½·log10(1 + likes)
 *       − 2·log10(1 + latency in seconds) − 10·error rate − (1 when half-open).
 * Popularity counts in orders of magnitude; a model that takes 1 s more or
 * fails 10% of calls loses about what ten times the downloads gains.
 * Unmeasured latency and error rate cost nothing. Open circuits are dropped.
 */
export function scoreCandidate(candidate: CatalogCandidate): number {
  const popularity = Math.log10(1 + Math.max(0, candidate.downloads ?? 0)) + 0.5 * Math.log10(1 + Math.max(0, candidate.likes ?? 0));
  const latency = candidate.latencyMs === undefined ? 0 : 2 * Math.log10(1 + Math.max(0, candidate.latencyMs) / 1000);
  const errors = 10 * Math.min(1, Math.max(0, candidate.errorRate ?? 0));
  const probing = candidate.circuit === "half-open" ? 1 : 0;
  return Math.round((popularity - latency - errors - probing) * 1000) / 1000;
}

/** Candidates without open circuits, best first (ties by id, so the order is stable). */
export function rankCandidates(candidates: readonly CatalogCandidate[]): RankedCandidate[] {
  return candidates
    .filter((candidate) => candidate.circuit !== "open")
    .map((candidate) => ({ candidate, score: scoreCandidate(candidate) }))
    .sort((a, b) => b.score - a.score || a.candidate.id.localeCompare(b.candidate.id));
}

/** The selector's answer schema: one of the shown ids and a short reason. */
export function selectionSchema(ids: readonly string[], reasonMaxLength: number): Record<string, unknown> {
  return {
    type: "object",
    properties: { model: { enum: [...ids] }, reason: { type: "string", minLength: 1, maxLength: reasonMaxLength } },
    required: ["model", "reason"],
    additionalProperties: false,
  };
}

export interface SelectStageOptions {
  plan: Plan;
  catalogView: CatalogView;
  llm: ChatLlm;
  conversation: readonly JobChatMessage[];
  config: OrchestrationConfig;
  runId: string;
  requestId: string;
  signal: AbortSignal;
  runSignal?: AbortSignal;
  deadlineAt?: number;
  clock?: ModelClock;
}

type Choice = Omit<SelectionRecord, "taskId" | "task">;

async function chooseFor(task: PlanTask, options: SelectStageOptions): Promise<Choice> {
  const ranked = rankCandidates(options.catalogView.candidates(task.task));
  const top = ranked.slice(0, Math.max(1, options.config.topK));
  const candidates = top.map((entry) => ({ id: entry.candidate.id, score: entry.score }));
  const choice = (entry: RankedCandidate, reason: string, byLlm: boolean): Choice => ({
    model: entry.candidate.id,
    backend: entry.candidate.backend,
    reason,
    byLlm,
    candidates,
    fallbackModels: top.filter((other) => other !== entry).map((other) => other.candidate.id),
  });
  const best = top[0];
  if (!best) return { model: null, backend: null, reason: `no model with a closed circuit serves '${task.task}' now`, byLlm: false, candidates, fallbackModels: [] };
  if (top.length === 1) return choice(best, "the only available model for this task", false);
  if (options.signal.aborted) return choice(best, "the run deadline passed: took the top-ranked model", false);
  try {
    const { text } = await callLlm({
      llm: options.llm,
      id: `${options.runId}-select-${task.id}`,
      requestId: options.requestId,
      messages: selectMessages({ conversation: options.conversation, task, candidates: top.map((entry) => entry.candidate) }),
      // Room for the longest id and a reason of escapes or multi-byte characters, so the JSON can close.
      settings: { ...options.config.selector, maxTokens: Math.max(options.config.selector.maxTokens, 48 + 4 * Math.max(...candidates.map((entry) => entry.id.length)) + 4 * options.config.reasonMaxLength) },
      responseFormat: { type: "json_schema", name: "model_choice", schema: selectionSchema(candidates.map((entry) => entry.id), options.config.reasonMaxLength) },
      signal: options.signal,
      ...(options.deadlineAt === undefined ? {} : { deadlineAt: options.deadlineAt }),
      ...(options.clock ? { clock: options.clock } : {}),
    });
    const answer: unknown = JSON.parse(text);
    const model = typeof answer === "object" && answer !== null ? (answer as Record<string, unknown>).model : undefined;
    const reason = typeof answer === "object" && answer !== null ? (answer as Record<string, unknown>).reason : undefined;
    const picked = top.find((entry) => entry.candidate.id === model);
    if (!picked) return choice(best, "the selector's answer named no candidate: took the top-ranked model", false);
    return choice(picked, typeof reason === "string" && reason.trim().length > 0 ? reason.slice(0, options.config.reasonMaxLength) : "chosen by the selector", true);
  } catch (error) {
    if (options.runSignal?.aborted) throw error;
    const why = options.signal.aborted ? "the run deadline passed" : error instanceof SyntaxError ? "the selector's answer was not JSON" : `the selector failed (${asGatewayError(error).message})`;
    return choice(best, `${why}: took the top-ranked model`, false);
  }
}

/** Chooses a model for every task of the plan; the records are in plan order. */
export async function selectModels(options: SelectStageOptions, onSelection?: (selection: SelectionRecord) => void): Promise<SelectionRecord[]> {
  const byTask = new Map<string, Promise<Choice>>();
  for (const task of options.plan) if (!byTask.has(task.task)) byTask.set(task.task, chooseFor(task, options));
  // Every choice is awaited together, so one failure cannot leave the others' rejections unhandled.
  await Promise.all(byTask.values());
  const records: SelectionRecord[] = [];
  for (const task of options.plan) {
    const choice = await byTask.get(task.task)!;
    const record = { taskId: task.id, task: task.task, ...choice };
    records.push(record);
    onSelection?.(record);
  }
  return records;
}

/**
 * The plan stage. A local planner (grammar-enforced) decodes one task per
 * call under a schema built from the tasks already chosen, so every prefix
 * it produces is a valid plan whatever the model's weights. A remote planner
 * writes the whole plan under `response_format`; its answer is validated and
 * re-planned a bounded number of times, then the run falls back to a
 * plain-chat answer with the reason recorded.
 */
import { asGatewayError, type JobChatMessage } from "@switchboard/protocol";
import { callLlm, type ModelClock } from "./llm-call.js";
import { DONE, buildPlanSchema, buildStepSchema, stepMaxTokens, type StepContext, type StepSchema } from "./plan-schema.js";
import { containsReferenceMarker, deriveDep, validatePlan } from "./plan-validation.js";
import { planMessages, stepMessages } from "./prompts.js";
import type { Mention } from "./run-inputs.js";
import type { ChatLlm, OrchestrationConfig, Plan, PlannerRecord, PlanProblem, PlanTask, RunInput, TaskSignature } from "./types.js";

export interface PlanStageOptions {
  llm: ChatLlm;
  available: readonly TaskSignature[];
  conversation: readonly JobChatMessage[];
  inputs: readonly RunInput[];
  mentions: readonly Mention[];
  config: OrchestrationConfig;
  runId: string;
  requestId: string;
  /** Aborts on cancellation and at the deadline. */
  signal: AbortSignal;
  /** The run's own signal: only its abort is a cancellation (the other is the deadline). */
  runSignal?: AbortSignal;
  deadlineAt?: number;
  clock?: ModelClock;
  /** Called after each step a local planner adds. */
  onStep?: (task: PlanTask) => void;
}

export interface PlanStageResult {
  plan: Plan;
  record: PlannerRecord;
}

/** Makes a plan with the planner LLM: step by step under grammars when local, validated and re-planned when remote. */
export function makePlan(options: PlanStageOptions): Promise<PlanStageResult> {
  return options.llm.grammarEnforced ? planLocally(options) : planRemotely(options);
}

type StepReading = { kind: "done" } | { kind: "task"; task: PlanTask; neutralised: number } | { kind: "invalid"; reason: string };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Reads one decoded step back into a plan task. References and mentions are
 * kept when they are among the argument's choices; other strings are
 * literals, and a literal that happens to contain a reference marker is
 * neutralised (`<GENERATED>-3` → `GENERATED-3`), since JSON Schema as the
 * engine supports it cannot exclude a substring.
 */
export function readStep(value: unknown, position: number, step: StepSchema): StepReading {
  if (!isObject(value) || typeof value.task !== "string") return { kind: "invalid", reason: "the step is not an object with a task" };
  if (value.task === DONE) return { kind: "done" };
  const choices = step.choices.get(value.task);
  if (!choices) return { kind: "invalid", reason: `'${value.task}' was not offered` };
  if (!isObject(value.args)) return { kind: "invalid", reason: "args is not an object" };
  const args: Record<string, string> = {};
  let neutralised = 0;
  for (const [name, raw] of Object.entries(value.args)) {
    const choice = choices.get(name);
    if (!choice || typeof raw !== "string" || raw.length === 0) return { kind: "invalid", reason: `argument '${name}' is not allowed` };
    if (choice.sources.has(raw)) args[name] = raw;
    else if (!choice.literal) return { kind: "invalid", reason: `argument '${name}' is not one of its sources` };
    else if (containsReferenceMarker(raw)) {
      args[name] = raw.replace(/<(GENERATED|INPUT)>/g, "$1");
      neutralised += 1;
    } else args[name] = raw;
  }
  return { kind: "task", task: { id: position, task: value.task, dep: deriveDep(args), args }, neutralised };
}

function emptyRecord(options: PlanStageOptions, source: "local" | "remote"): PlannerRecord {
  return { source, model: options.llm.model, calls: 0, rejected: [], rejectedSteps: 0, truncatedSteps: 0, neutralisedLiterals: 0 };
}

/** Whether an error means the run itself was cancelled (as opposed to the deadline or a model error). */
function cancelled(options: PlanStageOptions): boolean {
  return options.runSignal?.aborted ?? options.signal.aborted;
}

async function planLocally(options: PlanStageOptions): Promise<PlanStageResult> {
  const { config } = options;
  const record = emptyRecord(options, "local");
  const chosen: PlanTask[] = [];
  const signatures = new Map(options.available.map((signature) => [signature.task, signature]));
  for (let position = 0; position < config.maxTasks; position++) {
    const context: StepContext = {
      available: options.available,
      chosen,
      inputs: options.inputs,
      mentions: options.mentions,
      literalMaxLength: config.literalMaxLength,
    };
    const step = buildStepSchema(context);
    if (step.offered.length === 0) {
      if (position === 0) record.note = "no available task can take this request's inputs";
      break;
    }
    // The prompt lists only the tasks this step can choose: shorter, and nothing the grammar would refuse.
    const offered = step.offered.map((task) => signatures.get(task)!);
    const messages = stepMessages({ ...context, available: offered, conversation: options.conversation, maxTasks: config.maxTasks });
    const maxTokens = stepMaxTokens(context, offered);
    let text: string;
    let finishReason: string | undefined;
    try {
      record.calls += 1;
      ({ text, finishReason } = await callLlm({
        llm: options.llm,
        id: `${options.runId}-plan-${position}`,
        requestId: options.requestId,
        messages,
        settings: { ...config.planner, maxTokens },
        responseFormat: { type: "json_schema", name: "plan_step", schema: step.schema },
        signal: options.signal,
        ...(options.deadlineAt === undefined ? {} : { deadlineAt: options.deadlineAt }),
        ...(options.clock ? { clock: options.clock } : {}),
      }));
    } catch (error) {
      if (cancelled(options)) throw error;
      // The plan so far is valid: keep it and say why planning stopped.
      record.note = options.signal.aborted ? "the run deadline passed while planning" : `the planner failed: ${asGatewayError(error).message}`;
      if (position === 0 && !options.signal.aborted) record.fallbackReason = record.note;
      break;
    }
    if (finishReason === "length") {
      record.truncatedSteps += 1;
      break;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      record.rejectedSteps += 1;
      break;
    }
    const reading = readStep(value, position, step);
    if (reading.kind === "done") break;
    if (reading.kind === "invalid") {
      record.rejectedSteps += 1;
      record.note = `a step was rejected: ${reading.reason}`;
      break;
    }
    // Safety net: the grammar should make this impossible.
    if (validatePlan([...chosen, reading.task], options.available, { maxTasks: config.maxTasks, inputs: options.inputs }).length > 0) {
      record.rejectedSteps += 1;
      record.note = "a step failed validation";
      break;
    }
    record.neutralisedLiterals += reading.neutralised;
    chosen.push(reading.task);
    options.onStep?.(reading.task);
  }
  return { plan: chosen, record };
}

function problemsText(problems: readonly PlanProblem[]): string {
  return problems
    .slice(0, 8)
    .map((problem) => `${problem.param}: ${problem.message}`)
    .join("\n");
}

async function planRemotely(options: PlanStageOptions): Promise<PlanStageResult> {
  const { config } = options;
  const record = emptyRecord(options, "remote");
  const schema = buildPlanSchema(options.available, config.maxTasks);
  let messages = planMessages({ ...options, maxTasks: config.maxTasks });
  for (let attempt = 0; attempt <= config.maxReplans; attempt++) {
    let text: string;
    try {
      record.calls += 1;
      ({ text } = await callLlm({
        llm: options.llm,
        id: `${options.runId}-plan-${attempt}`,
        requestId: options.requestId,
        messages,
        settings: config.planner,
        responseFormat: { type: "json_schema", name: "plan", schema },
        signal: options.signal,
        ...(options.deadlineAt === undefined ? {} : { deadlineAt: options.deadlineAt }),
        ...(options.clock ? { clock: options.clock } : {}),
      }));
    } catch (error) {
      if (cancelled(options)) throw error;
      record.fallbackReason = options.signal.aborted ? "the run deadline passed while planning" : `the planner failed: ${asGatewayError(error).message}`;
      return { plan: [], record };
    }
    let plan: unknown;
    let problems: PlanProblem[];
    try {
      const value: unknown = JSON.parse(text);
      plan = Array.isArray(value) ? value : isObject(value) ? value.tasks : undefined;
      problems = validatePlan(plan, options.available, { maxTasks: config.maxTasks, inputs: options.inputs });
    } catch {
      problems = [{ param: "plan", code: "invalid_plan", message: "The answer is not JSON." }];
    }
    if (problems.length === 0) return { plan: plan as Plan, record };
    record.rejected.push({ attempt, problems });
    messages = [
      ...messages,
      { role: "assistant", content: text.slice(0, 4000) },
      { role: "user", content: `That plan is invalid:\n${problemsText(problems)}\nAnswer with a corrected plan.` },
    ];
  }
  const last = record.rejected.at(-1)?.problems[0];
  record.fallbackReason = `the planner's plan failed validation ${record.rejected.length} times (last: ${last ? `${last.param}: ${last.message}` : "unknown"})`;
  return { plan: [], record };
}


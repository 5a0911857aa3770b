/**
 * The respond stage: the LLM writes the answer from the request, the plan,
 * the chosen models and compact summaries of the results (binary outputs as
 * references, never their bytes), streamed as text deltas.
 */
import { GatewayError, type JobChatMessage } from "@switchboard/protocol";
import { callLlm, type ModelClock } from "./llm-call.js";
import { generatedReference } from "./plan-validation.js";
import { respondMessages } from "./prompts.js";
import { summarizeOutput } from "./results.js";
import type { ChatLlm, LlmRoleSettings, Plan, SelectionRecord, TaskRecord } from "./types.js";

/** Characters of each task's output the responder reads at first; less when its context is too small. */
export const RESULT_CHARS_PER_TASK = 600;

/** The plan and its results as the responder reads them: one block per task. */
export function resultsText(plan: Plan, selections: readonly SelectionRecord[], tasks: readonly TaskRecord[], maxCharsPerTask = RESULT_CHARS_PER_TASK): string {
  return plan
    .map((task) => {
      const record = tasks.find((candidate) => candidate.id === task.id);
      const selection = selections.find((candidate) => candidate.taskId === task.id);
      const head = `#${task.id} ${task.task} ${JSON.stringify(task.args).slice(0, Math.min(200, maxCharsPerTask))} via ${record?.model ?? selection?.model ?? "no model"}`;
      if (!record) return `${head}: not run`;
      switch (record.status) {
        case "succeeded": {
          const files = record.artifacts.map((artifact) => `${generatedReference(task.id)} (${artifact.mimeType}, ${artifact.bytes} bytes)`);
          return `${head}: done -> ${summarizeOutput(record.output, maxCharsPerTask)}${files.length > 0 ? ` files: ${files.join(", ")}` : ""}`;
        }
        case "failed":
          return `${head}: failed: ${record.error?.message ?? "unknown error"}`;
        default:
          return `${head}: ${record.status}${record.reason ? `: ${record.reason}` : ""}`;
      }
    })
    .join("\n");
}

export interface RespondStageOptions {
  llm: ChatLlm;
  conversation: readonly JobChatMessage[];
  /** The results block with at most this many characters per task, or undefined to answer as plain chat. */
  results: ((maxCharsPerTask: number) => string) | undefined;
  settings: LlmRoleSettings;
  runId: string;
  requestId: string;
  signal: AbortSignal;
  clock?: ModelClock;
  onDelta?: (text: string) => void;
}

/** Tries with results cut shorter after a context overflow, the last with statuses only, before giving up. */
const SHORTER_RESULTS_TRIES = 3;

/**
 * Streams the answer through `onDelta` and returns it whole. When the
 * results do not fit the responder's context (an overflow is found before
 * generation, so nothing has streamed), each task's part is cut in the
 * proportion the error reports, and the call made again.
 */
export async function respond(options: RespondStageOptions): Promise<string> {
  let chars = RESULT_CHARS_PER_TASK;
  for (let attempt = 0; ; attempt++) {
    try {
      const { text } = await callLlm({
        llm: options.llm,
        id: attempt === 0 ? `${options.runId}-respond` : `${options.runId}-respond-${attempt}`,
        requestId: options.requestId,
        messages: respondMessages({ conversation: options.conversation, results: options.results?.(chars) }),
        settings: options.settings,
        signal: options.signal,
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.onDelta ? { onDelta: options.onDelta } : {}),
      });
      return text;
    } catch (error) {
      const fit = options.results && chars > 0 ? overflowRatio(error) : undefined;
      if (fit === undefined) throw error;
      // The fixed part of the prompt does not shrink, so cut harder than the ratio; the last try keeps each task's status only.
      chars = attempt + 1 >= SHORTER_RESULTS_TRIES ? 0 : Math.floor(chars * Math.min(0.5, fit * 0.6));
    }
  }
}

/** For a context-length error: the context size over what the request needed; otherwise undefined. */
function overflowRatio(error: unknown): number | undefined {
  if (!(error instanceof GatewayError) || error.code !== "context_length_exceeded") return undefined;
  const context = /maximum context length is (\d+)/.exec(error.message);
  const needed = /\((\d+) with max_tokens\)/.exec(error.message) ?? /resulted in (\d+) tokens/.exec(error.message);
  if (!context || !needed) return 0.5;
  return Number(context[1]) / Number(needed[1]);
}

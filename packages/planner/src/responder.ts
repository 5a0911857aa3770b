/**
 * The respond stage: the LLM writes the answer from the request, the plan,
 * the chosen models and compact summaries of the results (binary outputs as
 * references, never their bytes), streamed as text deltas.
 */
import type { JobChatMessage } from "@switchboard/protocol";
import { callLlm, type ModelClock } from "./llm-call.js";
import { generatedReference } from "./plan-validation.js";
import { respondMessages } from "./prompts.js";
import { summarizeOutput } from "./results.js";
import type { ChatLlm, LlmRoleSettings, Plan, SelectionRecord, TaskRecord } from "./types.js";

/** The plan and its results as the responder reads them: one block per task. */
export function resultsText(plan: Plan, selections: readonly SelectionRecord[], tasks: readonly TaskRecord[], maxCharsPerTask = 600): string {
  return plan
    .map((task) => {
      const record = tasks.find((candidate) => candidate.id === task.id);
      const selection = selections.find((candidate) => candidate.taskId === task.id);
      const head = `#${task.id} ${task.task} ${JSON.stringify(task.args).slice(0, 200)} via ${record?.model ?? selection?.model ?? "no model"}`;
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
  /** The results block, or undefined to answer as plain chat. */
  results: string | undefined;
  settings: LlmRoleSettings;
  runId: string;
  requestId: string;
  signal: AbortSignal;
  clock?: ModelClock;
  onDelta?: (text: string) => void;
}

/** Streams the answer through `onDelta` and returns it whole. */
export async function respond(options: RespondStageOptions): Promise<string> {
  const { text } = await callLlm({
    llm: options.llm,
    id: `${options.runId}-respond`,
    requestId: options.requestId,
    messages: respondMessages({ conversation: options.conversation, results: options.results }),
    settings: options.settings,
    signal: options.signal,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.onDelta ? { onDelta: options.onDelta } : {}),
  });
  return text;
}

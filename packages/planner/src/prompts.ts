/**
 * The text the router's LLMs read. Kept short: byte-level vocabularies make
 * every character a token, and the grammar, not the prompt, keeps the output
 * valid.
 */
import type { JobChatMessage } from "@switchboard/protocol";
import type { Mention } from "./run-inputs.js";
import type { CatalogCandidate, PlanTask, RunInput, TaskSignature } from "./types.js";

const REFERENCE_RULES =
  'An argument is a short literal text or a reference: "<GENERATED>-k" is the output of task k, "<INPUT>-n" is the n-th file the user attached. Chain tasks with references.';

/** One line per task: `name(inputs)->outputs: description`; an input named after its modality is written once. */
function taskLines(available: readonly TaskSignature[]): string {
  return available
    .map((signature) => {
      const inputs = signature.inputs.map((input) => `${input.name === input.modality ? input.name : `${input.name}:${input.modality}`}${input.optional ? "?" : ""}`).join(",");
      return `${signature.task}(${inputs})->${signature.outputs.join(",") || "nothing"}${signature.description ? `: ${signature.description}` : ""}`;
    })
    .join("\n");
}

/** The conversation as plain text, the latest part kept when it is long. */
export function conversationText(messages: readonly JobChatMessage[], maxChars = 2000): string {
  const turns = messages.filter((message) => message.role !== "system" && message.content.length > 0);
  const last = turns.at(-1);
  if (turns.length === 1 && last) return last.content.slice(-maxChars);
  const text = turns.map((message) => `${message.role}: ${message.content}`).join("\n");
  return text.length <= maxChars ? text : text.slice(-maxChars);
}

function resourcesText(inputs: readonly Pick<RunInput, "id" | "modality">[], mentions: readonly Mention[]): string {
  const lines: string[] = [];
  if (inputs.length > 0) lines.push(`Attached files: ${inputs.map((input) => `${input.id} (${input.modality})`).join(", ")}`);
  if (mentions.length > 0) lines.push(`Mentioned files: ${mentions.map((mention) => `${mention.value} (${mention.modality})`).join(", ")}`);
  return lines.join("\n");
}

/**
 * A chosen task as the next step's prompt shows it: long literals shortened.
 * The planner needs to know what each task does and produces, not every
 * character it wrote, and the prompt is re-read at every step.
 */
function compactTask(task: PlanTask): PlanTask {
  const args = Object.fromEntries(Object.entries(task.args).map(([name, value]) => [name, value.length > 40 ? `${value.slice(0, 37)}...` : value]));
  return { ...task, args };
}

/** Messages for one step of a local planner. */
export function stepMessages(options: {
  available: readonly TaskSignature[];
  conversation: readonly JobChatMessage[];
  inputs: readonly Pick<RunInput, "id" | "modality">[];
  mentions: readonly Mention[];
  chosen: readonly PlanTask[];
  maxTasks: number;
}): JobChatMessage[] {
  const system = [
    "You plan work for specialist models. Break the user's request into tasks, one task per answer, as JSON.",
    REFERENCE_RULES,
    `Answer {"task":"done"} when the tasks so far cover the request, or at once when no task is needed. At most ${options.maxTasks} tasks.`,
    "Tasks, name(inputs)->outputs:",
    taskLines(options.available),
  ].join("\n");
  const plan = options.chosen.length === 0 ? "none yet" : options.chosen.map((task) => JSON.stringify(compactTask(task))).join("\n");
  const user = [
    `Request: ${conversationText(options.conversation)}`,
    resourcesText(options.inputs, options.mentions),
    `Plan so far: ${plan}`,
    `Task ${options.chosen.length}, or done:`,
  ]
    .filter((line) => line.length > 0)
    .join("\n");
  return [
    { role: "system", content: system },
    { role: "user", content: user },
  ];
}

/** Messages for a remote planner, which writes the whole plan at once. */
export function planMessages(options: {
  available: readonly TaskSignature[];
  conversation: readonly JobChatMessage[];
  inputs: readonly Pick<RunInput, "id" | "modality">[];
  mentions: readonly Mention[];
  maxTasks: number;
}): JobChatMessage[] {
  const system = [
    "You plan work for specialist models. Break the user's request into a list of tasks.",
    REFERENCE_RULES,
    'Answer with JSON {"tasks":[{"id":0,"task":"<name>","dep":[-1],"args":{...}}, ...]}. "id" is the task\'s position (0, 1, ...); "dep" is [-1] or exactly the ids whose outputs the args reference; a reference must point to an earlier task that produces that input\'s kind of data. ' +
      `At most ${options.maxTasks} tasks; {"tasks":[]} when no task is needed.`,
    'Example: {"tasks":[{"id":0,"task":"image-to-text","dep":[-1],"args":{"image":"<INPUT>-0"}},{"id":1,"task":"text-to-speech","dep":[0],"args":{"text":"<GENERATED>-0"}}]}',
    "Tasks, name(inputs)->outputs:",
    taskLines(options.available),
  ].join("\n");
  const user = [`Request: ${conversationText(options.conversation)}`, resourcesText(options.inputs, options.mentions)].filter((line) => line.length > 0).join("\n");
  return [
    { role: "system", content: system },
    { role: "user", content: user },
  ];
}

function candidateLine(candidate: CatalogCandidate): string {
  const facts = [candidate.backend, candidate.local ? "local" : "remote"];
  if (candidate.downloads !== undefined) facts.push(`${candidate.downloads} downloads`);
  if (candidate.likes !== undefined) facts.push(`${candidate.likes} likes`);
  if (candidate.latencyMs !== undefined) facts.push(`${Math.round(candidate.latencyMs)} ms`);
  if (candidate.errorRate !== undefined) facts.push(`${(candidate.errorRate * 100).toFixed(0)}% errors`);
  return `- ${candidate.id} (${facts.join(", ")})${candidate.description ? `: ${candidate.description.slice(0, 160)}` : ""}`;
}

/** Messages for the selector: one task, its top candidates. */
export function selectMessages(options: { conversation: readonly JobChatMessage[]; task: PlanTask; candidates: readonly CatalogCandidate[] }): JobChatMessage[] {
  const system =
    'You choose the model best suited to a task from a list of candidates, weighing fit, popularity, speed and reliability. Answer JSON {"model":"<id>","reason":"<one short sentence>"}.';
  const user = [
    `Request: ${conversationText(options.conversation, 800)}`,
    `Task: ${options.task.task} with ${JSON.stringify(options.task.args).slice(0, 300)}`,
    "Candidates:",
    ...options.candidates.map(candidateLine),
  ].join("\n");
  return [
    { role: "system", content: system },
    { role: "user", content: user },
  ];
}

/** Messages for the responder: the results first, then the conversation itself. */
export function respondMessages(options: { conversation: readonly JobChatMessage[]; results: string | undefined }): JobChatMessage[] {
  const system =
    options.results === undefined
      ? "You are a helpful assistant. Answer the user directly."
      : [
          "You are Switchboard's router. Specialist models ran tasks for the user's latest request; their results follow. Write the answer from these results: say what was done, give the results, and name files the tasks produced by their reference. Do not invent results; if a task failed or was skipped, say so.",
          "Plan and results:",
          options.results,
        ].join("\n");
  const conversation = options.conversation.filter((message) => message.role !== "tool");
  return [{ role: "system", content: system }, ...conversation];
}

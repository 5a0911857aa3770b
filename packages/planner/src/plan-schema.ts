/**
 * JSON Schemas for planning.
 *
 * Local planners decode one task at a time under {@link buildStepSchema},
 * rebuilt before every step from the tasks already chosen, so the grammar the
 * engine derives from it admits only steps that keep the plan valid:
 *
 * - `task` is one of the available tasks whose required inputs all have a
 *   source now, or `"done"`;
 * - each argument is, per the input's modality, a bounded literal string
 *   (text, table) or an `enum` of the references that fit: `<GENERATED>-k`
 *   for earlier tasks that produce that modality, `<INPUT>-n` for attached
 *   files of that modality, and URLs (or file names) the request mentions;
 * - `id` and `dep` are not decoded at all: the id is the position and `dep`
 *   is derived from the references, as HuggingGPT does.
 *
 * Only `anyOf`, `const`, `enum`, `properties`/`required`,
 * `additionalProperties: false` and `minLength`/`maxLength` are used: all
 * within what the llama engine's converter enforces.
 *
 * Remote planners get {@link buildPlanSchema}, the whole plan at once, as a
 * `response_format` hint; their answers are validated like any other plan.
 */
import type { Modality } from "@switchboard/protocol";
import { generatedReference } from "./plan-validation.js";
import type { Mention } from "./run-inputs.js";
import { literalAllowed } from "./task-signatures.js";
import type { PlanTask, RunInput, TaskSignature } from "./types.js";

/** The `task` value that ends a plan. */
export const DONE = "done";

export interface StepContext {
  available: readonly TaskSignature[];
  /** Tasks chosen so far, in order. */
  chosen: readonly PlanTask[];
  inputs: readonly Pick<RunInput, "id" | "modality">[];
  mentions: readonly Mention[];
  literalMaxLength: number;
}

/** What an argument of `modality` may be given, besides a literal where literals are allowed. */
export function sourcesFor(modality: Modality, context: StepContext): string[] {
  const signatures = new Map(context.available.map((signature) => [signature.task, signature]));
  const sources: string[] = [];
  for (const input of context.inputs) if (input.modality === modality) sources.push(input.id);
  for (const mention of context.mentions) if (mention.modality === modality) sources.push(mention.value);
  for (const task of context.chosen) {
    if (signatures.get(task.task)?.outputs.includes(modality)) sources.push(generatedReference(task.id));
  }
  return [...new Set(sources)];
}

/** The schema of one argument, or undefined when nothing can fill it now. */
export function argumentSchema(modality: Modality, context: StepContext): Record<string, unknown> | undefined {
  const sources = sourcesFor(modality, context);
  const literal = { type: "string", minLength: 1, maxLength: context.literalMaxLength };
  if (literalAllowed(modality)) return sources.length === 0 ? literal : { anyOf: [literal, { enum: sources }] };
  return sources.length === 0 ? undefined : { enum: sources };
}

export interface StepSchema {
  schema: Record<string, unknown>;
  /** Tasks the step may choose (their required inputs all have a source). */
  offered: string[];
  /** Allowed references and mentions per task and argument, for reading the answer back. */
  choices: Map<string, Map<string, { literal: boolean; sources: Set<string> }>>;
}

/** The schema of the next step: one available task with its arguments, or `{"task":"done"}`. */
export function buildStepSchema(context: StepContext): StepSchema {
  const alternatives: Record<string, unknown>[] = [
    { type: "object", properties: { task: { const: DONE } }, required: ["task"], additionalProperties: false },
  ];
  const offered: string[] = [];
  const choices: StepSchema["choices"] = new Map();
  for (const signature of context.available) {
    const properties: Record<string, unknown> = {};
    const required: string[] = [];
    const argumentChoices = new Map<string, { literal: boolean; sources: Set<string> }>();
    let satisfiable = true;
    for (const input of signature.inputs) {
      const schema = argumentSchema(input.modality, context);
      if (!schema) {
        if (!input.optional) satisfiable = false;
        continue;
      }
      properties[input.name] = schema;
      if (!input.optional) required.push(input.name);
      argumentChoices.set(input.name, { literal: literalAllowed(input.modality), sources: new Set(sourcesFor(input.modality, context)) });
    }
    if (!satisfiable) continue;
    offered.push(signature.task);
    choices.set(signature.task, argumentChoices);
    alternatives.push({
      type: "object",
      properties: {
        task: { const: signature.task },
        args: { type: "object", properties, required, additionalProperties: false },
      },
      required: ["task", "args"],
      additionalProperties: false,
    });
  }
  return { schema: { anyOf: alternatives }, offered, choices };
}

/**
 * Tokens a step may need: the JSON around the arguments, and per literal up
 * to four tokens a character (escapes and multi-byte characters on byte-level
 * vocabularies). A step cut off by `max_tokens` ends the plan.
 */
export function stepMaxTokens(context: StepContext, available: readonly TaskSignature[] = context.available): number {
  let widest = 0;
  for (const signature of available) {
    let tokens = 32 + signature.task.length;
    for (const input of signature.inputs) tokens += 16 + input.name.length + (literalAllowed(input.modality) ? 4 * context.literalMaxLength : 64);
    widest = Math.max(widest, tokens);
  }
  return Math.max(64, widest);
}

/** The whole plan as one JSON object `{"tasks": [...]}`, for remote planners' `response_format`. */
export function buildPlanSchema(available: readonly TaskSignature[], maxTasks: number): Record<string, unknown> {
  const alternatives = available.map((signature) => ({
    type: "object",
    properties: {
      id: { type: "integer" },
      task: { const: signature.task },
      dep: { type: "array", items: { type: "integer" } },
      args: {
        type: "object",
        properties: Object.fromEntries(signature.inputs.map((input) => [input.name, { type: "string" }])),
        required: signature.inputs.filter((input) => !input.optional).map((input) => input.name),
        additionalProperties: false,
      },
    },
    required: ["id", "task", "dep", "args"],
    additionalProperties: false,
  }));
  return {
    type: "object",
    properties: { tasks: { type: "array", maxItems: maxTasks, items: alternatives.length > 0 ? { anyOf: alternatives } : {} } },
    required: ["tasks"],
    additionalProperties: false,
  };
}

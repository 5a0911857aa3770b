/**
 * Plan rules, checked in one place for every plan: client plans, remote
 * planners' answers, and (as a safety net) each step a local planner decodes
 * under its grammar. Every problem names the bad node in `param`.
 */
import { invalidRequest, type GatewayError, type Modality } from "@switchboard/protocol";
import type { Plan, PlanProblem, PlanProblemCode, PlanTask, RunInput, TaskSignature } from "./types.js";

/** Default most tasks in a plan. */
export const DEFAULT_MAX_TASKS = 8;

const GENERATED = /^<GENERATED>-(0|[1-9][0-9]*)$/;
const INPUT = /^<INPUT>-(0|[1-9][0-9]*)$/;
const MARKER = /<(GENERATED|INPUT)>/;

export type Reference = { kind: "generated"; index: number } | { kind: "input"; index: number };

/** The reference a whole argument value spells, or undefined for a literal. */
export function parseReference(value: string): Reference | undefined {
  const generated = GENERATED.exec(value);
  if (generated) return { kind: "generated", index: Number(generated[1]) };
  const input = INPUT.exec(value);
  if (input) return { kind: "input", index: Number(input[1]) };
  return undefined;
}

export const generatedReference = (taskId: number) => `<GENERATED>-${taskId}`;
export const inputReference = (index: number) => `<INPUT>-${index}`;

/** Whether a literal contains a reference marker (ambiguous, so refused in plans). */
export function containsReferenceMarker(value: string): boolean {
  return MARKER.test(value);
}

/** `dep` as HuggingGPT derives it: the tasks the arguments reference, or `[-1]`. */
export function deriveDep(args: Record<string, string>): number[] {
  const ids = new Set<number>();
  for (const value of Object.values(args)) {
    const reference = parseReference(value);
    if (reference?.kind === "generated") ids.add(reference.index);
  }
  return ids.size === 0 ? [-1] : [...ids].sort((a, b) => a - b);
}

export interface ValidatePlanOptions {
  maxTasks?: number;
  /** The run's inputs, for `<INPUT>-n` references; none when absent. */
  inputs?: readonly Pick<RunInput, "modality">[];
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Every problem in `plan` against the available tasks (each with a live model
 * now). An empty list means the plan is valid: ids are positions, tasks are
 * available, arguments are exactly the task's inputs, references point to
 * earlier tasks (listed in `dep`) that produce the argument's modality or to
 * inputs of that modality, and `dep` lists exactly the referenced tasks.
 */
export function validatePlan(plan: unknown, availableTasks: readonly TaskSignature[], options: ValidatePlanOptions = {}): PlanProblem[] {
  const maxTasks = options.maxTasks ?? DEFAULT_MAX_TASKS;
  const inputs = options.inputs ?? [];
  const problems: PlanProblem[] = [];
  const add = (param: string, code: PlanProblemCode, message: string) => problems.push({ param, code, message });
  if (!Array.isArray(plan)) {
    add("plan", "invalid_plan", "The plan must be an array of tasks.");
    return problems;
  }
  if (plan.length > maxTasks) {
    add(`plan[${maxTasks}]`, "too_many_tasks", `A plan has at most ${maxTasks} tasks; this one has ${plan.length}.`);
    // A huge plan is not worth reading node by node (the cycle check is quadratic).
    if (plan.length > Math.max(64, maxTasks * 4)) return problems;
  }

  const signatures = new Map(availableTasks.map((signature) => [signature.task, signature]));
  const taskAt = (index: number): TaskSignature | undefined => {
    const node = plan[index];
    return isObject(node) && typeof node.task === "string" ? signatures.get(node.task) : undefined;
  };
  const depsOf = (index: number): number[] => {
    const node = plan[index];
    return isObject(node) && Array.isArray(node.dep) ? node.dep.filter((value): value is number => Number.isInteger(value)) : [];
  };
  // Whether `target` is reachable from `start` along deps: a dependency on a later task that leads back is a cycle.
  const reaches = (start: number, target: number): boolean => {
    const seen = new Set<number>();
    const stack = [start];
    while (stack.length > 0) {
      const current = stack.pop()!;
      if (current === target) return true;
      if (seen.has(current) || current < 0 || current >= plan.length) continue;
      seen.add(current);
      stack.push(...depsOf(current));
    }
    return false;
  };
  const laterProblem = (index: number, later: number): PlanProblemCode =>
    later >= plan.length ? "dangling_dependency" : later === index || reaches(later, index) ? "cycle" : "forward_dependency";

  for (const [index, node] of plan.entries()) {
    const at = `plan[${index}]`;
    if (!isObject(node)) {
      add(at, "invalid_task", "Each task must be an object {id, task, dep, args}.");
      continue;
    }
    for (const key of Object.keys(node)) {
      if (!["id", "task", "dep", "args"].includes(key)) add(`${at}.${key}`, "invalid_task", `Unknown field '${key}'; a task has id, task, dep and args.`);
    }
    if (node.id !== index) add(`${at}.id`, "bad_id", `The id of a task is its position: expected ${index}, got ${JSON.stringify(node.id) ?? "nothing"}.`);

    const signature = typeof node.task === "string" ? signatures.get(node.task) : undefined;
    if (typeof node.task !== "string") add(`${at}.task`, "unknown_task", "'task' must be a task name.");
    else if (!signature) add(`${at}.task`, "unknown_task", `'${node.task}' is not a task with a live model now.`);

    // dep: [-1] or earlier ids, and exactly the tasks the arguments reference.
    const dep: number[] = [];
    if (!Array.isArray(node.dep) || node.dep.length === 0) {
      add(`${at}.dep`, "invalid_dep", "'dep' must be [-1] or a list of earlier task ids.");
    } else {
      for (const [position, value] of node.dep.entries()) {
        const param = `${at}.dep[${position}]`;
        if (!Number.isInteger(value)) add(param, "invalid_dep", "Dependencies are task ids (integers).");
        else if (value === -1) {
          if (node.dep.length > 1) add(param, "invalid_dep", "-1 (no dependency) must stand alone.");
        } else if (value < -1) add(param, "invalid_dep", `${value} is not a task id.`);
        else if (value >= index) {
          const code = laterProblem(index, value);
          add(param, code, code === "cycle" ? `Depending on task ${value} makes a cycle.` : code === "dangling_dependency" ? `There is no task ${value}.` : `Task ${value} comes later; dependencies must be earlier tasks.`);
        } else if (dep.includes(value)) add(param, "invalid_dep", `Task ${value} is listed twice.`);
        else dep.push(value);
      }
    }

    const referenced = new Set<number>();
    if (!isObject(node.args)) {
      add(`${at}.args`, "invalid_args", "'args' must be an object keyed by input name.");
    } else {
      for (const [name, value] of Object.entries(node.args)) {
        const param = `${at}.args.${name}`;
        const spec = signature?.inputs.find((input) => input.name === name);
        if (signature && !spec) {
          add(param, "unknown_argument", `'${signature.task}' takes ${signature.inputs.map((input) => `'${input.name}'`).join(", ")}, not '${name}'.`);
          continue;
        }
        if (typeof value !== "string" || value.length === 0) {
          add(param, "invalid_argument", "An argument is a non-empty string: a literal value or a reference.");
          continue;
        }
        const modality: Modality | undefined = spec?.modality;
        const reference = parseReference(value);
        if (!reference) {
          if (containsReferenceMarker(value)) add(param, "malformed_reference", `'${value.slice(0, 40)}' is neither a reference (<GENERATED>-k, <INPUT>-n) nor a literal without one.`);
          else if (modality === "embedding") add(param, "invalid_argument", "An embedding argument must reference a task that produces embeddings.");
          continue;
        }
        if (reference.kind === "input") {
          const input = inputs[reference.index];
          if (!input) add(param, "dangling_reference", `There is no input ${reference.index}; the run has ${inputs.length}.`);
          else if (modality && input.modality !== modality) add(param, "wrong_modality", `Input ${reference.index} is ${input.modality}; '${name}' takes ${modality}.`);
          continue;
        }
        const producer = reference.index;
        if (producer >= index) {
          const code = laterProblem(index, producer);
          add(
            param,
            code === "dangling_dependency" ? "dangling_reference" : code === "cycle" ? "cycle" : "forward_reference",
            code === "dangling_dependency" ? `There is no task ${producer}.` : code === "cycle" ? `Using task ${producer}'s output here makes a cycle.` : `Task ${producer} comes later; only earlier outputs can be used.`,
          );
          continue;
        }
        referenced.add(producer);
        if (!dep.includes(producer)) add(param, "reference_not_in_dep", `Task ${producer} is referenced but not listed in 'dep'.`);
        const produced = taskAt(producer);
        if (produced && modality && !produced.outputs.includes(modality)) {
          add(param, "wrong_modality", `Task ${producer} (${produced.task}) produces ${produced.outputs.join(" and ") || "nothing"}; '${name}' takes ${modality}.`);
        }
      }
      if (signature) {
        for (const spec of signature.inputs) {
          if (!spec.optional && !Object.hasOwn(node.args, spec.name)) add(`${at}.args.${spec.name}`, "missing_argument", `'${signature.task}' needs '${spec.name}' (${spec.modality}).`);
        }
      }
    }
    if (Array.isArray(node.dep)) {
      for (const [position, value] of node.dep.entries()) {
        if (Number.isInteger(value) && value >= 0 && value < index && !referenced.has(value) && isObject(node.args)) {
          add(`${at}.dep[${position}]`, "dependency_without_reference", `Task ${value} is in 'dep' but no argument uses its output.`);
        }
      }
    }
  }
  return problems;
}

/** A 400 for an invalid plan: `param` names the first bad node, the message lists every problem (up to a few). */
export function invalidPlanError(problems: readonly PlanProblem[]): GatewayError {
  const shown = problems.slice(0, 5).map((problem) => `${problem.param}: ${problem.message}`);
  const more = problems.length > shown.length ? ` (and ${problems.length - shown.length} more)` : "";
  return invalidRequest(`The plan is invalid. ${shown.join(" ")}${more}`, problems[0]?.param ?? "plan", "invalid_plan");
}

/** Throws {@link invalidPlanError} unless `plan` is valid; returns it typed. */
export function assertValidPlan(plan: unknown, availableTasks: readonly TaskSignature[], options: ValidatePlanOptions = {}): Plan {
  const problems = validatePlan(plan, availableTasks, options);
  if (problems.length > 0) throw invalidPlanError(problems);
  return plan as PlanTask[];
}

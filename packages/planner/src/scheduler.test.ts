/**
 * The DAG scheduler driven by a SCRIPTED executor (no models): each task's
 * outcome and duration are scripted, and the executor records when each
 * task started and ended and what arguments it received.
 */
import { describe, expect, it } from "vitest";
import { GatewayError, TASK_NAMES } from "@switchboard/protocol";
import { executePlan } from "./scheduler.js";
import { taskSignatures } from "./task-signatures.js";
import type { Plan, ProgressEvent, ResolvedArgument, SelectionRecord, TaskExecutor } from "./types.js";

const available = taskSignatures(TASK_NAMES);

interface Script {
  ms: number;
  output?: unknown;
  fail?: string;
}

/** A scripted executor: answers each task after its scripted delay, honouring the abort signal. */
function scriptedExecutor(scripts: Record<number, Script>) {
  const calls: { taskId: number; start: number; end?: number; args: Record<string, ResolvedArgument>; aborted?: boolean }[] = [];
  const executor: TaskExecutor = {
    run(execution, signal) {
      const script = scripts[execution.taskId] ?? { ms: 1, output: { generated_text: `output of ${execution.taskId}` } };
      const call: (typeof calls)[number] = { taskId: execution.taskId, start: performance.now(), args: execution.args };
      calls.push(call);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          call.end = performance.now();
          if (script.fail) reject(new GatewayError(script.fail, { status: 502, type: "server_error", code: "upstream_error" }));
          else resolve({ output: script.output ?? { generated_text: `output of ${execution.taskId}` } });
        }, script.ms);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          call.aborted = true;
          reject(signal.reason);
        });
      });
    },
  };
  return { executor, calls };
}

const selectionsFor = (plan: Plan): SelectionRecord[] =>
  plan.map((task) => ({ taskId: task.id, task: task.task, model: `model-${task.task}`, backend: "hf", reason: "scripted", byLlm: false, candidates: [], fallbackModels: [] }));

function run(plan: Plan, executor: TaskExecutor, extra: { signal?: AbortSignal; deadlineAt?: number; taskBudget?: number; inputs?: Parameters<typeof executePlan>[0]["inputs"] } = {}) {
  const events: ProgressEvent[] = [];
  const done = executePlan({
    runId: "run",
    requestId: "request",
    plan,
    selections: selectionsFor(plan),
    available,
    inputs: extra.inputs ?? [],
    executor,
    signal: extra.signal ?? new AbortController().signal,
    ...(extra.deadlineAt === undefined ? {} : { deadlineAt: extra.deadlineAt }),
    ...(extra.taskBudget === undefined ? {} : { taskBudget: extra.taskBudget }),
    onProgress: (event) => events.push(event),
  });
  return { done, events };
}

const PNG = { type: "base64", mimeType: "image/png", data: "iVBORw0KGgo=", bytes: 8 };
// 0 and 1 are independent; 2 needs both.
const diamond: Plan = [
  { id: 0, task: "text-to-image", dep: [-1], args: { text: "a lighthouse" } },
  { id: 1, task: "summarization", dep: [-1], args: { text: "a long text" } },
  { id: 2, task: "visual-question-answering", dep: [0, 1], args: { image: "<GENERATED>-0", text: "<GENERATED>-1" } },
];

describe("executePlan with a scripted executor", () => {
  it("runs independent tasks at the same time while the dependant waits for both", async () => {
    const { executor, calls } = scriptedExecutor({ 0: { ms: 80, output: { image: PNG } }, 1: { ms: 80, output: { summary_text: "short" } }, 2: { ms: 5, output: [{ answer: "yes", score: 1 }] } });
    const { done } = run(diamond, executor);
    const records = await done;
    expect(records.map((record) => record.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    const [first, second, dependant] = [0, 1, 2].map((id) => calls.find((call) => call.taskId === id)!);
    // Overlap: each independent task started before the other ended.
    expect(first!.start).toBeLessThan(second!.end!);
    expect(second!.start).toBeLessThan(first!.end!);
    expect(dependant!.start).toBeGreaterThanOrEqual(Math.max(first!.end!, second!.end!));
    // References are filled from earlier outputs: the image by reference (same data, no text), the text as text.
    expect(dependant!.args).toEqual({ image: { type: "base64", data: PNG.data, mimeType: "image/png" }, text: "short" });
    expect(records[0]!.artifacts).toEqual([{ path: "image", type: "base64", mimeType: "image/png", bytes: 8 }]);
    expect(records[2]!.inputs).toEqual({ image: { reference: "<GENERATED>-0", value: { type: "base64", mimeType: "image/png", bytes: 8 } }, text: { reference: "<GENERATED>-1", value: "short" } });
  });

  it("skips the dependants of a failed task, with the reason, and runs the rest", async () => {
    const plan: Plan = [...diamond, { id: 3, task: "text-to-speech", dep: [2], args: { text: "<GENERATED>-2" } }, { id: 4, task: "translation", dep: [-1], args: { text: "hello" } }];
    const { executor, calls } = scriptedExecutor({ 0: { ms: 5, fail: "upstream broke" }, 1: { ms: 5, output: { summary_text: "s" } } });
    const { done, events } = run(plan, executor);
    const records = await done;
    expect(records.map((record) => record.status)).toEqual(["failed", "succeeded", "skipped", "skipped", "succeeded"]);
    expect(records[0]!.error).toMatchObject({ status: 502, message: "upstream broke" });
    expect(records[2]!.reason).toBe("task 0 failed");
    expect(records[3]!.reason).toBe("task 2 was skipped");
    expect(calls.map((call) => call.taskId).sort()).toEqual([0, 1, 4]);
    expect(events.filter((event) => event.type === "task-finished")).toHaveLength(5);
  });

  it("cancels the run on abort: running tasks are aborted, pending ones never start", async () => {
    const { executor, calls } = scriptedExecutor({ 0: { ms: 5_000 }, 1: { ms: 5_000 } });
    const controller = new AbortController();
    const { done, events } = run(diamond, executor, { signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    const started = performance.now();
    const records = await done;
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(records.map((record) => record.status)).toEqual(["cancelled", "cancelled", "cancelled"]);
    expect(records[2]!.startedAt).toBeUndefined();
    expect(calls.map((call) => call.aborted)).toEqual([true, true]);
    expect(events.filter((event) => event.type === "task-started")).toHaveLength(2);
  });

  it("stops at the run deadline: running tasks are aborted, pending ones skipped", async () => {
    const { executor, calls } = scriptedExecutor({ 0: { ms: 10, output: { image: PNG } }, 1: { ms: 5_000 } });
    const records = await run(diamond, executor, { deadlineAt: Date.now() + 100 }).done;
    expect(records.map((record) => record.status)).toEqual(["succeeded", "cancelled", "skipped"]);
    expect(records[1]!.reason).toBe("the run deadline passed");
    expect(records[2]!.reason).toBe("the run deadline passed");
    expect(calls.find((call) => call.taskId === 1)!.aborted).toBe(true);
  });

  it("skips tasks beyond the task budget", async () => {
    const plan: Plan = [0, 1, 2].map((id) => ({ id, task: "summarization", dep: [-1], args: { text: `text ${id}` } }));
    const { executor, calls } = scriptedExecutor({});
    const records = await run(plan, executor, { taskBudget: 2 }).done;
    expect(records.map((record) => record.status)).toEqual(["succeeded", "succeeded", "skipped"]);
    expect(records[2]!.reason).toMatch(/task budget \(2\)/);
    expect(calls).toHaveLength(2);
  });

  it("gives inputs to tasks by <INPUT>-n and fails a task whose producer has no output of the modality", async () => {
    const plan: Plan = [
      { id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } },
      { id: 1, task: "image-segmentation", dep: [-1], args: { image: "<INPUT>-0" } },
      { id: 2, task: "depth-estimation", dep: [1], args: { image: "<GENERATED>-1" } },
    ];
    const { executor, calls } = scriptedExecutor({ 1: { ms: 1, output: [] } });
    const records = await run(plan, executor, { inputs: [{ id: "<INPUT>-0", modality: "image", value: "data:image/png;base64,iVBORw0KGgo=", source: "image_url" }] }).done;
    expect(calls.find((call) => call.taskId === 0)!.args).toEqual({ image: "data:image/png;base64,iVBORw0KGgo=" });
    expect(records[2]).toMatchObject({ status: "failed", error: { code: "missing_task_output" } });
  });

  it("finishes at once for an empty plan", async () => {
    expect(await run([], scriptedExecutor({}).executor).done).toEqual([]);
  });
});

/**
 * The whole loop with SCRIPTED LLMs and a SCRIPTED executor: remote
 * re-planning and fallback, client plans, dry runs, progress events and the
 * metrics hooks. The same loop runs on real models in test/orchestration.e2e.test.ts.
 */
import { describe, expect, it } from "vitest";
import { GatewayError, contextLengthExceeded } from "@switchboard/protocol";
import { scriptedLlm } from "../test/scripted-llm.js";
import { runOrchestration, type OrchestrationOptions } from "./orchestration.js";
import type { CatalogCandidate, OrchestrationObserver, ProgressEvent, TaskExecutor } from "./types.js";

const candidates: CatalogCandidate[] = [
  { id: "captioner", task: "image-to-text", backend: "hf", local: false },
  { id: "voice", task: "text-to-speech", backend: "hf", local: false },
  { id: "summarizer", task: "summarization", backend: "hf", local: false },
];
const catalogView = { candidates: (task: string) => candidates.filter((candidate) => candidate.task === task) };
const PNG_URL = "data:image/png;base64,iVBORw0KGgo=";
const messages: OrchestrationOptions["messages"] = [
  { role: "user", content: [{ type: "text", text: "Describe this picture and read the description aloud." }, { type: "image_url", image_url: { url: PNG_URL } }] },
];

function scriptedExecutor() {
  const runs: string[] = [];
  const executor: TaskExecutor = {
    async run(execution) {
      runs.push(`${execution.taskId}:${execution.task}:${execution.model}`);
      if (execution.task === "image-to-text") return { output: { generated_text: "a grey square" } };
      if (execution.task === "text-to-speech") return { output: { audio: { type: "base64", mimeType: "audio/wav", data: "UklGRg==", bytes: 4 } } };
      return { output: { summary_text: "short" } };
    },
  };
  return { executor, runs };
}

const goodPlan = JSON.stringify({
  tasks: [
    { id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } },
    { id: 1, task: "text-to-speech", dep: [0], args: { text: "<GENERATED>-0" } },
  ],
});
const wrongModality = JSON.stringify({
  tasks: [
    { id: 0, task: "text-to-speech", dep: [-1], args: { text: "hello" } },
    { id: 1, task: "image-to-text", dep: [0], args: { image: "<GENERATED>-0" } },
  ],
});

describe("runOrchestration with scripted LLMs and executor", () => {
  it("cuts the results shorter when they overflow the responder's context, and still answers from them", async () => {
    const planner = scriptedLlm([goodPlan], { model: "remote-planner" });
    const overflow = contextLengthExceeded(5000, 2048).toPayload();
    const responder = scriptedLlm([{ error: overflow }, "From the caption: a grey square."], { model: "responder" });
    const longCaption = "a grey square ".repeat(200);
    const executor: TaskExecutor = {
      async run(execution) {
        if (execution.task === "image-to-text") return { output: { generated_text: longCaption } };
        return { output: { audio: { type: "base64", mimeType: "audio/wav", data: "UklGRg==", bytes: 4 } } };
      },
    };
    const record = await runOrchestration({ messages, signal: new AbortController().signal, llm: { planner, responder }, executor, catalogView });
    expect(record.status).toBe("completed");
    expect(record.answer).toBe("From the caption: a grey square.");
    const [first, second] = responder.jobs.map((job) => job.messages[0]!.content);
    // 2048 of 5000 tokens fit: the caption is cut to about a third of its 600 characters.
    expect(second!.split("a grey square").length).toBeLessThan(first!.split("a grey square").length / 2);
    expect(second).toContain("a grey square");
    expect(second).toContain("files: <GENERATED>-1");
  });

  it("re-plans a remote planner's invalid plan, then runs every stage and records it", async () => {
    const planner = scriptedLlm([wrongModality, goodPlan], { model: "remote-planner" });
    const responder = scriptedLlm(["Here is the caption, read aloud as <GENERATED>-1."], { model: "responder" });
    const { executor, runs } = scriptedExecutor();
    const events: ProgressEvent[] = [];
    const stages: string[] = [];
    const observer: OrchestrationObserver = {
      stageFinished: ({ stage, outcome }) => stages.push(`${stage}:${outcome}`),
      planMade: ({ tasks, replans, source }) => stages.push(`plan-made:${tasks}:${replans}:${source}`),
      taskFinished: ({ task, backend, status }) => stages.push(`task:${task}:${backend}:${status}`),
      runFinished: ({ status }) => stages.push(`run:${status}`),
    };
    const record = await runOrchestration({ messages, signal: new AbortController().signal, llm: { planner, responder }, executor, catalogView, onProgress: (event) => events.push(event), observer });

    expect(record.status).toBe("completed");
    expect(record.replans).toBe(1);
    expect(record.planner.rejected).toEqual([{ attempt: 0, problems: [expect.objectContaining({ param: "plan[1].args.image", code: "wrong_modality" })] }]);
    // The re-plan told the planner what was wrong.
    expect(planner.jobs[1]!.messages.at(-1)!.content).toMatch(/plan\[1\]\.args\.image: Task 0 \(text-to-speech\) produces audio/);
    expect(planner.jobs[0]!.responseFormat).toMatchObject({ type: "json_schema", name: "plan" });
    expect(record.plan.map((task) => task.task)).toEqual(["image-to-text", "text-to-speech"]);
    expect(record.selections.map((selection) => selection.model)).toEqual(["captioner", "voice"]);
    expect(runs).toEqual(["0:image-to-text:captioner", "1:text-to-speech:voice"]);
    expect(record.tasks[1]!.artifacts).toEqual([{ path: "audio", type: "base64", mimeType: "audio/wav", bytes: 4 }]);
    expect(record.inputs).toEqual([{ id: "<INPUT>-0", modality: "image", mimeType: "image/png", source: "image_url" }]);
    expect(record.answer).toBe("Here is the caption, read aloud as <GENERATED>-1.");
    // The responder saw the results, with the audio by reference and without its bytes.
    const responderPrompt = responder.jobs[0]!.messages[0]!.content;
    expect(responderPrompt).toMatch(/#0 image-to-text .* done -> \{"generated_text":"a grey square"\}/);
    expect(responderPrompt).toMatch(/files: <GENERATED>-1 \(audio\/wav, 4 bytes\)/);
    expect(responderPrompt).not.toContain("UklGRg==");

    expect(events.map((event) => event.type)).toEqual([
      "run-started",
      "plan",
      "selection",
      "selection",
      "task-started",
      "task-finished",
      "task-started",
      "task-finished",
      "answer-delta",
      "answer-delta",
      "run-finished",
    ]);
    expect(stages).toEqual([
      "plan:ok",
      "plan-made:2:1:remote",
      "select:ok",
      "task:image-to-text:hf:succeeded",
      "task:text-to-speech:hf:succeeded",
      "execute:ok",
      "respond:ok",
      "run:completed",
    ]);
    for (const key of ["planMs", "selectMs", "executeMs", "respondMs", "totalMs", "modelMs", "overheadMs"] as const) expect(record.timings[key]).toBeGreaterThanOrEqual(0);
  });

  it("falls back to a plain-chat answer after the re-plans run out, with the reason recorded", async () => {
    const planner = scriptedLlm(["not json", wrongModality, wrongModality], { model: "remote-planner" });
    const responder = scriptedLlm(["I can only answer in words."]);
    const { executor, runs } = scriptedExecutor();
    const record = await runOrchestration({ messages, signal: new AbortController().signal, llm: { planner, responder }, executor, catalogView, config: { maxReplans: 2 } });
    expect(planner.jobs).toHaveLength(3);
    expect(record).toMatchObject({ status: "completed", plan: [], replans: 2, answer: "I can only answer in words." });
    expect(record.planner.fallbackReason).toMatch(/failed validation 3 times \(last: plan\[1\]\.args\.image: /);
    expect(record.planner.rejected[0]!.problems[0]).toMatchObject({ param: "plan", message: "The answer is not JSON." });
    expect(runs).toEqual([]);
    expect(responder.jobs[0]!.messages[0]!.content).toBe("You are a helpful assistant. Answer the user directly.");
  });

  it("refuses an invalid client plan with a 400 naming the bad node, before any progress", async () => {
    const events: ProgressEvent[] = [];
    const plan = [
      { id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } },
      { id: 1, task: "image-to-text", dep: [0], args: { image: "<GENERATED>-0" } },
    ];
    const attempt = runOrchestration({ messages, plan, signal: new AbortController().signal, llm: { planner: scriptedLlm(["unused"]) }, executor: scriptedExecutor().executor, catalogView, onProgress: (event) => events.push(event) });
    await expect(attempt).rejects.toBeInstanceOf(GatewayError);
    await expect(attempt).rejects.toMatchObject({ status: 400, code: "invalid_plan", param: "plan[1].args.image" });
    expect(events).toEqual([]);
  });

  it("runs a valid client plan without the planner", async () => {
    const planner = scriptedLlm(["the answer"]);
    const { executor, runs } = scriptedExecutor();
    const record = await runOrchestration({ messages, plan: JSON.parse(goodPlan).tasks, signal: new AbortController().signal, llm: { planner }, executor, catalogView });
    expect(record.planner).toMatchObject({ source: "client", calls: 0 });
    expect(runs).toHaveLength(2);
    // Only the responder ran on the LLM (each task has one candidate: no selector call).
    expect(planner.jobs.map((job) => job.id)).toEqual([`${record.id}-respond`]);
  });

  it("plans and selects only on a dry run", async () => {
    const planner = scriptedLlm([goodPlan]);
    const { executor, runs } = scriptedExecutor();
    const events: ProgressEvent[] = [];
    const record = await runOrchestration({ messages, dryRun: true, signal: new AbortController().signal, llm: { planner }, executor, catalogView, onProgress: (event) => events.push(event) });
    expect(record).toMatchObject({ status: "planned", dryRun: true, tasks: [], answer: "" });
    expect(record.selections).toHaveLength(2);
    expect(runs).toEqual([]);
    expect(planner.jobs).toHaveLength(1);
    expect(events.map((event) => event.type)).toEqual(["run-started", "plan", "selection", "selection", "run-finished"]);
  });

  it("records a cancelled run when the signal aborts, and starts nothing more", async () => {
    const controller = new AbortController();
    const planner = scriptedLlm([goodPlan, "never"]);
    const runs: number[] = [];
    const executor: TaskExecutor = {
      run: (execution, signal) => {
        runs.push(execution.taskId);
        controller.abort();
        return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
      },
    };
    const record = await runOrchestration({ messages, signal: controller.signal, llm: { planner }, executor, catalogView });
    expect(record.status).toBe("cancelled");
    expect(record.tasks.map((task) => task.status)).toEqual(["cancelled", "cancelled"]);
    expect(runs).toEqual([0]);
    expect(record.answer).toBe("");
    expect(planner.jobs).toHaveLength(1);
  });

  it("answers as plain chat without planning when no task has a live model", async () => {
    const planner = scriptedLlm(["hello"]);
    const record = await runOrchestration({ messages: [{ role: "user", content: "hi" }], signal: new AbortController().signal, llm: { planner }, executor: scriptedExecutor().executor, catalogView: { candidates: () => [] } });
    expect(record).toMatchObject({ status: "completed", plan: [], answer: "hello", planner: { note: "no task has a live model now" } });
  });

  it("stops tasks at the run deadline and still writes the answer", async () => {
    const planner = scriptedLlm([goodPlan, "partial answer"]);
    const executor: TaskExecutor = { run: (_execution, signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))) };
    const record = await runOrchestration({ messages, signal: new AbortController().signal, llm: { planner }, executor, catalogView, config: { deadlineMs: 100 } });
    expect(record.status).toBe("completed");
    expect(record.tasks.map((task) => [task.status, task.reason])).toEqual([
      ["cancelled", "the run deadline passed"],
      ["skipped", "the run deadline passed"],
    ]);
    expect(record.answer).toBe("partial answer");
    expect(planner.jobs.at(-1)!.messages[0]!.content).toMatch(/#1 text-to-speech .*: skipped: the run deadline passed/);
  });
});


/**
 * End to end on real pieces: the generated tiny model (random weights) is the
 * planner, selector and responder through the real LlamaBackend; tasks run
 * as jobs on HfBackend against the local Hugging Face wire-format server,
 * which checks every request and answer against the @huggingface/tasks specs.
 * Both backends sit behind one InProcessDispatcher.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TEST_PNG } from "@switchboard/hf-wire-server";
import type { TaskName } from "@switchboard/protocol";
import { InProcessDispatcher } from "@switchboard/queue";
import {
  availableTasks,
  createJobExecutor,
  runOrchestration,
  validatePlan,
  type ChatLlm,
  type OrchestrationConfig,
  type OrchestrationMessage,
  type ProgressEvent,
} from "../src/index.js";
import { catalogOf, dispatcherSubmit, hfCandidates, startSpecialists, startTinyLlama, type Specialists, type TinyLlama } from "./support.js";

const TASKS: TaskName[] = ["image-to-text", "object-detection", "text-to-speech", "automatic-speech-recognition", "summarization", "text-to-image"];

let tiny: TinyLlama;
let specialists: Specialists;
let llm: ChatLlm;
let dispatcher: InProcessDispatcher;

beforeAll(async () => {
  [tiny, specialists] = await Promise.all([
    startTinyLlama({ sequences: 3 }),
    // Two models per task, so the selector LLM has a choice to make for every task.
    startSpecialists(TASKS.flatMap((task) => [{ id: `${task}-a`, task, downloads: 5_000, likes: 40 }, { id: `${task}-b`, task, downloads: 300 }])),
  ]);
  dispatcher = new InProcessDispatcher({ backends: [tiny.backend, specialists.backend] });
  llm = { model: "tiny", grammarEnforced: true, submit: (job, options) => dispatcher.submit(job, options) };
});
afterEach(() => specialists.server.reset());
afterAll(async () => {
  await tiny?.close();
  await specialists?.close();
});

const catalogView = () => catalogOf(hfCandidates(specialists.models));
const executor = () => createJobExecutor({ submit: dispatcherSubmit(dispatcher) });
const config: Partial<OrchestrationConfig> = { maxTasks: 3, literalMaxLength: 24, responder: { maxTokens: 48 } };
const PNG_URL = `data:image/png;base64,${TEST_PNG.toString("base64")}`;
const describeAndRead: OrchestrationMessage[] = [
  {
    role: "user",
    content: [
      { type: "text", text: "Describe this picture, find the objects in it, and read the description aloud." },
      { type: "image_url", image_url: { url: PNG_URL } },
    ],
  },
];

describe("the router loop on the tiny model and the wire server", () => {
  it("runs every stage for a multi-task request and the run record holds them", { timeout: 60_000 }, async () => {
    const events: ProgressEvent[] = [];
    const record = await runOrchestration({ messages: describeAndRead, signal: new AbortController().signal, llm: { planner: llm }, executor: executor(), catalogView: catalogView(), config, onProgress: (event) => events.push(event) });

    expect(record.status).toBe("completed");
    expect(record.planner).toMatchObject({ source: "local", model: "tiny", rejectedSteps: 0 });
    expect(record.plan.length).toBeGreaterThanOrEqual(2);
    expect(validatePlan(record.plan, availableTasks(catalogView()), { maxTasks: 3, inputs: [{ modality: "image" }] })).toEqual([]);

    // Select: every task got one of its two models, chosen by the LLM with a reason.
    expect(record.selections).toHaveLength(record.plan.length);
    for (const selection of record.selections) {
      expect(selection.model).toMatch(new RegExp(`^${selection.task}-[ab]$`));
      expect(selection.byLlm).toBe(true);
      expect(selection.reason.length).toBeGreaterThan(0);
    }

    // Execute: each task ran as a job on the wire server, with inputs, outputs and timings recorded.
    for (const task of record.tasks) {
      expect(task).toMatchObject({ status: "succeeded", backend: "hf" });
      expect(task.inputs).toBeDefined();
      expect(task.output).toBeDefined();
      expect(task.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(specialists.taskRequests()).toBe(record.plan.length);
    expect(specialists.server.violations()).toEqual([]);

    // Respond: streamed deltas make up the answer.
    const streamed = events.flatMap((event) => (event.type === "answer-delta" ? [event.text] : [])).join("");
    expect(record.answer.length).toBeGreaterThan(0);
    expect(streamed).toBe(record.answer);
    for (const key of ["planMs", "selectMs", "executeMs", "respondMs", "totalMs", "modelMs", "overheadMs"] as const) expect(record.timings[key]).toBeGreaterThanOrEqual(0);
    expect(events[0]).toEqual({ type: "run-started", runId: record.id });
    expect(events.at(-1)).toEqual({ type: "run-finished", runId: record.id, status: "completed" });
  });

  it("runs a client plan: references filled from outputs, audio passed on by reference", { timeout: 30_000 }, async () => {
    const plan = [
      { id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } },
      { id: 1, task: "object-detection", dep: [-1], args: { image: "<INPUT>-0" } },
      { id: 2, task: "text-to-speech", dep: [0], args: { text: "<GENERATED>-0" } },
      { id: 3, task: "automatic-speech-recognition", dep: [2], args: { audio: "<GENERATED>-2" } },
    ];
    const record = await runOrchestration({ messages: describeAndRead, plan, signal: new AbortController().signal, llm: { planner: llm }, executor: executor(), catalogView: catalogView(), config: { ...config, maxTasks: 4 } });
    expect(record.status).toBe("completed");
    expect(record.tasks.map((task) => task.status)).toEqual(["succeeded", "succeeded", "succeeded", "succeeded"]);
    expect(record.tasks[0]!.output).toEqual({ generated_text: "a tiny grey test image" });
    expect(record.tasks[2]!.inputs).toEqual({ text: { reference: "<GENERATED>-0", value: "a tiny grey test image" } });
    expect(record.tasks[2]!.artifacts).toEqual([expect.objectContaining({ path: "audio", type: "base64", mimeType: "audio/wav" })]);
    expect(record.tasks[3]!.inputs).toEqual({ audio: { reference: "<GENERATED>-2", value: expect.objectContaining({ type: "base64", mimeType: "audio/wav" }) } });
    expect(record.tasks[3]!.output).toEqual({ text: "hello switchboard" });
    // The independent tasks were both started before either finished.
    expect(record.tasks[1]!.startedAt!).toBeLessThanOrEqual(record.tasks[0]!.finishedAt!);
    expect(specialists.server.violations()).toEqual([]);
  });

  it("plans and selects on a dry run and executes nothing", { timeout: 30_000 }, async () => {
    const record = await runOrchestration({ messages: describeAndRead, dryRun: true, signal: new AbortController().signal, llm: { planner: llm }, executor: executor(), catalogView: catalogView(), config });
    expect(record.status).toBe("planned");
    expect(record.plan.length).toBeGreaterThan(0);
    expect(record.selections).toHaveLength(record.plan.length);
    expect(record.tasks).toEqual([]);
    expect(record.answer).toBe("");
    expect(specialists.server.requests).toEqual([]);
  });

  it("cancels the run when the client goes away: the running task is aborted, the rest never start", { timeout: 30_000 }, async () => {
    specialists.server.setBehaviour("acme/image-to-text-a", { fail: "slow", delayMs: 10_000 });
    specialists.server.setBehaviour("acme/image-to-text-b", { fail: "slow", delayMs: 10_000 });
    const plan = [
      { id: 0, task: "image-to-text", dep: [-1], args: { image: "<INPUT>-0" } },
      { id: 1, task: "text-to-speech", dep: [0], args: { text: "<GENERATED>-0" } },
    ];
    const client = new AbortController();
    const started = performance.now();
    const record = await runOrchestration({
      messages: describeAndRead,
      plan,
      signal: client.signal,
      llm: { planner: llm },
      executor: executor(),
      catalogView: catalogView(),
      config,
      onProgress: (event) => {
        if (event.type === "task-started") setTimeout(() => client.abort(), 50);
      },
    });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(record.status).toBe("cancelled");
    expect(record.tasks.map((task) => [task.status, task.reason])).toEqual([
      ["cancelled", "the run was cancelled"],
      ["cancelled", "the run was cancelled"],
    ]);
    expect(record.tasks[1]!.startedAt).toBeUndefined();
    expect(specialists.server.requests.filter((request) => request.model?.startsWith("acme/text-to-speech"))).toEqual([]);
  });
});

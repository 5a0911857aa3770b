import { describe, expect, it } from "vitest";
import { GatewayError, type ChatJob, type JobEvent, type TaskJob } from "@switchboard/protocol";
import { createJobExecutor, parseTable, taskJobPayload } from "./job-executor.js";
import type { TaskExecution } from "./types.js";

const execution = (extra: Partial<TaskExecution>): TaskExecution => ({
  runId: "run",
  requestId: "request",
  taskId: 2,
  task: "image-to-text",
  model: "captioner",
  backend: "hf",
  fallbackModels: ["captioner-2"],
  args: { image: "data:image/png;base64,iVBORw0KGgo=" },
  deadlineAt: 123,
  ...extra,
});

describe("taskJobPayload", () => {
  it("maps plan arguments onto each task's request shape", () => {
    expect(taskJobPayload("question-answering", { question: "Who?", context: "Ada wrote it" })).toEqual({ task: "question-answering", inputs: { question: "Who?", context: "Ada wrote it" } });
    expect(taskJobPayload("sentence-similarity", { source_sentence: "a cat", sentence: "a dog" })).toEqual({ task: "sentence-similarity", inputs: { source_sentence: "a cat", sentences: ["a dog"] } });
    const image = { type: "base64" as const, data: "iVBORw0KGgo=", mimeType: "image/png" };
    expect(taskJobPayload("visual-question-answering", { image, text: "Is it grey?" })).toEqual({ task: "visual-question-answering", inputs: { image, question: "Is it grey?" } });
    expect(taskJobPayload("image-to-image", { image, text: "make it blue" })).toEqual({ task: "image-to-image", inputs: image, parameters: { prompt: "make it blue" } });
    expect(taskJobPayload("image-to-image", { image })).toEqual({ task: "image-to-image", inputs: image });
    expect(taskJobPayload("text-to-speech", { text: "hello" })).toEqual({ task: "text-to-speech", inputs: "hello" });
    expect(taskJobPayload("tabular-classification", { table: "age,income\n31,1\n42,2" })).toEqual({ task: "tabular-classification", inputs: { data: { age: [31, 42], income: [1, 2] } } });
    expect(() => taskJobPayload("summarization", { text: image as never })).toThrow(GatewayError);
  });

  it("reads tables as CSV with a header row or as JSON columns", () => {
    expect(parseTable('{"a":[1,2],"b":["x","y"]}')).toEqual({ a: [1, 2], b: ["x", "y"] });
    expect(parseTable("name,score\nada,3\nbob,x")).toEqual({ name: ["ada", "bob"], score: [3, "x"] });
    expect(() => parseTable("only a header")).toThrow(/header row and at least one data row/);
  });
});

describe("createJobExecutor", () => {
  it("submits a task job and returns the task result (with the model that answered)", async () => {
    const submitted: (TaskJob | ChatJob)[] = [];
    const executor = createJobExecutor({
      async *submit(job): AsyncIterable<JobEvent> {
        submitted.push(job);
        yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 0 };
        yield { type: "task-result", task: "image-to-text", model: "captioner-2", output: { generated_text: "a grey square" } };
      },
    });
    const result = await executor.run(execution({}), new AbortController().signal);
    expect(result).toEqual({ output: { generated_text: "a grey square" }, model: "captioner-2" });
    expect(submitted[0]).toEqual({
      kind: "task",
      id: "run-task-2",
      requestId: "request",
      model: "captioner",
      fallbackModels: ["captioner-2"],
      deadlineAt: 123,
      task: "image-to-text",
      inputs: "data:image/png;base64,iVBORw0KGgo=",
    });
  });

  it("throws the job's error as a GatewayError", async () => {
    const executor = createJobExecutor({
      async *submit(): AsyncIterable<JobEvent> {
        yield { type: "error", error: { status: 504, type: "timeout_error", code: "upstream_timeout", param: null, message: "captioner timed out" } };
      },
    });
    await expect(executor.run(execution({}), new AbortController().signal)).rejects.toMatchObject({ status: 504, message: "captioner timed out" });
  });

  it("runs text tasks on local llama models as chat jobs", async () => {
    const submitted: (TaskJob | ChatJob)[] = [];
    const executor = createJobExecutor({
      chatMaxTokens: 32,
      async *submit(job): AsyncIterable<JobEvent> {
        submitted.push(job);
        yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 3 };
        yield { type: "text-delta", index: 0, text: "Hi " };
        yield { type: "text-delta", index: 0, text: "there" };
        yield { type: "finish", index: 0, finishReason: "stop", completionTokens: 2 };
      },
    });
    const result = await executor.run(execution({ task: "conversational", backend: "llama", model: "tiny", args: { text: "hello" } }), new AbortController().signal);
    expect(result.output).toEqual({ generated_text: "Hi there" });
    expect(submitted[0]).toMatchObject({ kind: "chat", model: "tiny", maxTokens: 32, messages: [{ role: "user", content: "hello" }] });
    await expect(executor.run(execution({ backend: "llama" }), new AbortController().signal)).rejects.toMatchObject({ status: 400, code: "unsupported_task" });
  });
});

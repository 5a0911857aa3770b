/**
 * The Backend face of the engine: jobs in, plain-JSON events out, against the
 * wire server through the real client.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { TEST_PNG } from "@switchboard/hf-wire-server";
import type { ChatJob, Job, JobContext, JobEvent, TaskJob, TaskJobEvent } from "@switchboard/protocol";
import { HfBackend, tokenLogprobs } from "./hf-backend.js";
import { captureLogger, endpointId, hubModel, providerId, startWireFixture, TEST_TOKEN, type WireFixture } from "./test-support.js";

let fixture: WireFixture;
let backend: HfBackend;
const logger = captureLogger();

beforeAll(async () => {
  fixture = await startWireFixture();
  backend = new HfBackend({ settings: fixture.settings, models: fixture.models, logger, worker: "hf-test" });
});
afterEach(() => fixture.server.reset());
afterAll(async () => {
  await backend.close();
  await fixture?.server.close();
});

const context = (signal = new AbortController().signal): JobContext => ({ signal, logger });

async function collect<E>(events: AsyncIterable<E>): Promise<E[]> {
  const all: E[] = [];
  for await (const event of events) all.push(event);
  return all;
}

const chatJob = (model: string, extra: Partial<ChatJob> = {}): ChatJob => ({
  kind: "chat",
  id: "job-1",
  requestId: "request-1",
  model,
  messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: "hello there" },
  ],
  maxTokens: 64,
  sampling: { temperature: 0.5, topP: 0.9, seed: 7 },
  stop: ["\n\n"],
  ...extra,
});

describe("chat jobs", () => {
  it.each([providerId("conversational"), endpointId("conversational")])("stream text deltas and a finish from %s", async (model) => {
    const events = await collect(backend.run(chatJob(model), context()));
    expect(events[0]).toMatchObject({ type: "accepted", jobId: "job-1", model, worker: "hf-test" });
    const text = events.flatMap((event) => (event.type === "text-delta" ? [event.text] : [])).join("");
    expect(text).toBe("Hello from " + hubModel("conversational", model.startsWith("p") ? "p" : "e") + ": you said 11 characters.");
    expect(events.at(-1)).toMatchObject({ type: "finish", index: 0, finishReason: "stop" });
    expect((events.at(-1) as { completionTokens: number }).completionTokens).toBeGreaterThan(0);
    expect(fixture.server.violations()).toEqual([]);
  });

  it("n choices: their calls all end when the client goes away, and the job ends quietly", async () => {
    const model = endpointId("conversational");
    fixture.server.setBehaviour(hubModel("conversational", "e"), { fail: "slow", delayMs: 5_000 });
    for (const stream of [true, false]) {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const started = Date.now();
      expect(await collect(backend.run(chatJob(model, { n: 3, stream }), context(controller.signal)))).toEqual([]);
      expect(Date.now() - started).toBeLessThan(1_000);
    }
  });

  it("maps tools, tool choice, earlier tool calls and json_schema onto the wire and tool-call deltas back", async () => {
    const job = chatJob(providerId("conversational"), {
      messages: [
        { role: "user", content: "weather?" },
        { role: "assistant", content: "", toolCalls: [{ id: "call_a", name: "weather", arguments: '{"city":"Oslo"}' }] },
        { role: "tool", content: "sunny", toolCallId: "call_a" },
        { role: "user", content: "and again?" },
      ],
      tools: [{ name: "weather", description: "Weather by city", parameters: { type: "object", properties: { city: { type: "string" } } } }],
      toolChoice: { name: "weather" },
    });
    const events = await collect(backend.run(job, context()));
    const calls = events.filter((event) => event.type === "tool-call-delta");
    expect(calls[0]).toMatchObject({ toolCallIndex: 0, id: "call_0", name: "weather" });
    expect(calls.map((event) => (event as { argumentsDelta: string }).argumentsDelta).join("")).toBe('{"echo":"yes"}');
    expect(events.at(-1)).toMatchObject({ type: "finish", finishReason: "tool_calls" });

    const structured = chatJob(providerId("conversational"), { responseFormat: { type: "json_schema", name: "answer", schema: { type: "object" }, strict: true } });
    await collect(backend.run(structured, context()));
    expect(fixture.server.violations()).toEqual([]);
  });

  it("stops at max_tokens with finish reason length", async () => {
    const events = await collect(backend.run(chatJob(providerId("conversational"), { maxTokens: 2 }), context()));
    expect(events.at(-1)).toMatchObject({ type: "finish", finishReason: "length" });
  });

  it("answers an upstream failure before the first chunk with a single error event", async () => {
    fixture.server.setBehaviour(hubModel("conversational", "p"), { fail: "503-loading", estimatedTime: 4 });
    const events = await collect(backend.run(chatJob(providerId("conversational")), context()));
    expect(events).toEqual([{ type: "error", error: expect.objectContaining({ status: 503, code: "model_unavailable", retryAfterSeconds: 4 }) }]);
  });
});

describe("embedding and completion jobs", () => {
  it("embed one vector per input", async () => {
    const events = await collect(backend.run({ kind: "embedding", id: "e1", requestId: "r", model: endpointId("feature-extraction"), input: ["a", "b", "c"] }, context()));
    expect(events[0]).toMatchObject({ type: "accepted" });
    const vectors = (events[1] as Extract<JobEvent, { type: "embeddings" }>).vectors;
    expect(vectors).toHaveLength(3);
    expect(vectors[0]).toHaveLength(8);
  });

  it("complete each prompt through text generation", async () => {
    const job: Job = { kind: "completion", id: "c1", requestId: "r", model: providerId("text-generation"), prompts: ["Once", "Twice"], maxTokens: 8, sampling: {}, stop: [] };
    const events = await collect(backend.run(job, context()));
    expect(events.filter((event) => event.type === "text-delta")).toEqual([
      { type: "text-delta", index: 0, text: " and the story goes on." },
      { type: "text-delta", index: 1, text: " and the story goes on." },
    ]);
    expect(events.filter((event) => event.type === "finish")).toHaveLength(2);
  });

  it("n choices per prompt, in OpenAI's order; their calls all end when the client goes away", async () => {
    const model = providerId("text-generation");
    const job: Job = { kind: "completion", id: "c2", requestId: "r", model, prompts: ["Once", "Twice"], n: 2, maxTokens: 8, sampling: { seed: 3 }, stop: [] };
    const events = await collect(backend.run(job, context()));
    expect(events.filter((event) => event.type === "finish").map((event) => event.index)).toEqual([0, 1, 2, 3]);
    expect(fixture.server.requests.filter((request) => request.task === "completions").map((request) => request.body?.seed).sort()).toEqual([3, 3, 4, 4]);

    fixture.server.setBehaviour(hubModel("text-generation", "p"), { fail: "slow", delayMs: 5_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    expect(await collect(backend.run({ ...job, id: "c3" }, context(controller.signal)))).toEqual([]);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe("task jobs", () => {
  const taskJob = (extra: Partial<TaskJob> = {}): TaskJob =>
    ({ kind: "task", id: "t1", requestId: "r", model: providerId("object-detection"), task: "object-detection", inputs: TEST_PNG.toString("base64"), ...extra }) as TaskJob;

  it("answer with accepted then the task result", async () => {
    const events: JobEvent[] = await collect(backend.run(taskJob(), context()));
    expect(events[0]).toMatchObject({ type: "accepted", jobId: "t1", model: providerId("object-detection") });
    expect(events[1]).toMatchObject({ type: "task-result", task: "object-detection", model: providerId("object-detection"), output: [{ label: "cat" }] });
    expect(events).toHaveLength(2);
  });

  it("fall back to the next candidate when the model is loading, and say which answered", async () => {
    fixture.server.setBehaviour(hubModel("object-detection", "p"), { fail: "503-loading", estimatedTime: 30 });
    const events = await collect(backend.run(taskJob({ fallbackModels: [endpointId("object-detection")] }), context()));
    expect(events.map((event) => event.type)).toEqual(["accepted", "task-result"]);
    expect(events[1]).toMatchObject({ model: endpointId("object-detection") });
  });

  it("without a fallback, the loading error is the answer", async () => {
    fixture.server.setBehaviour(hubModel("object-detection", "p"), { fail: "503-loading", estimatedTime: 30 });
    const events = await collect(backend.run(taskJob(), context()));
    expect(events).toEqual([{ type: "error", error: expect.objectContaining({ status: 503, retryAfterSeconds: 30, param: "model" }) }]);
  });

  it("do not fall back on bad input", async () => {
    const events = await collect(backend.run(taskJob({ inputs: "bm90IGFuIGltYWdl", fallbackModels: [endpointId("object-detection")] }), context()));
    expect(events).toEqual([{ type: "error", error: expect.objectContaining({ status: 400, code: "invalid_binary_input" }) }]);
    expect(fixture.server.requests.filter((request) => request.style !== "hub")).toHaveLength(0);
  });

  it("refuse an unknown model with 404", async () => {
    const events = await collect(backend.run(taskJob({ model: "nope" }), context()));
    expect(events).toEqual([{ type: "error", error: expect.objectContaining({ status: 404, code: "model_not_found" }) }]);
  });

  it("end quietly when the client goes away", async () => {
    fixture.server.setBehaviour(hubModel("object-detection", "p"), { fail: "slow", delayMs: 5_000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    expect(await collect(backend.run(taskJob(), context(controller.signal)))).toEqual([]);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe("models", () => {
  it("lists every configured model as ready", () => {
    expect(backend.models()).toContain(providerId("depth-estimation"));
    expect(backend.modelStates().every((state) => state.state === "ready" || state.state === "loading")).toBe(true);
  });

  it("never logged the token", () => {
    expect(logger.lines.join("\n")).not.toContain(TEST_TOKEN);
  });
});

describe("upstream log probabilities", () => {
  it("become OpenAI's shape: bytes kept when the server sent them, else the token's UTF-8", () => {
    expect(
      tokenLogprobs({
        content: [
          { token: "é", logprob: -0.5, top_logprobs: [{ token: "é", logprob: -0.5 }] },
          { token: "x", logprob: -1, bytes: [120], top_logprobs: [] },
        ],
      }),
    ).toEqual([
      { token: "é", logprob: -0.5, bytes: [195, 169], top_logprobs: [{ token: "é", logprob: -0.5, bytes: [195, 169] }] },
      { token: "x", logprob: -1, bytes: [120], top_logprobs: [] },
    ]);
  });

  it("are left out when absent or malformed, never passed on half-read", () => {
    for (const logprobs of [null, undefined, {}, { content: null }, { content: [] }, { content: [{ token: "a" }] }, { content: [{ token: "a", logprob: -1, top_logprobs: [{ logprob: -2 }] }] }])
      expect(tokenLogprobs(logprobs), JSON.stringify(logprobs)).toBeUndefined();
  });
});

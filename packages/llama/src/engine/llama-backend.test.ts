import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv, type AnySchema } from "ajv";
import addFormatsModule from "ajv-formats";
import { getLlama, LlamaChat, resolveChatWrapper, type Llama, type LlamaModel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaModelConfig } from "@switchboard/catalog";
import { silentLogger, type ChatJob, type CompletionJob, type EmbeddingJob, type Job, type JobEvent } from "@switchboard/protocol";
import { ensureTestModel } from "../gguf/index.js";
import type { LlamaEngineMetrics } from "./engine-metrics.js";
import { LlamaBackend } from "./llama-backend.js";

// ajv-formats is CommonJS: under NodeNext its default import is the plugin function itself.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

let directory: string;
let modelPath: string;
let llama: Llama;
let model: LlamaModel;
let backend: LlamaBackend;
const extraBackends: LlamaBackend[] = [];

function modelConfig(overrides: Partial<LlamaModelConfig> = {}): LlamaModelConfig {
  return {
    id: "tiny",
    aliases: [],
    backend: "llama",
    source: "generated:tiny",
    contextSize: 2048,
    sequences: 3,
    threads: 1,
    maxWaiting: 1,
    defaultMaxTokens: 64,
    maxTokens: 2048,
    sampling: {},
    embeddings: true,
    ...overrides,
  };
}

let jobCounter = 0;
function chatJob(overrides: Partial<ChatJob> = {}): ChatJob {
  return {
    kind: "chat",
    id: `job-${++jobCounter}`,
    requestId: "request",
    model: "tiny",
    messages: [{ role: "user", content: "Hello there" }],
    maxTokens: 200,
    sampling: { temperature: 0 },
    stop: [],
    ...overrides,
  };
}

async function collect(job: Job, signal = new AbortController().signal, target = backend): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const event of target.run(job, { signal, logger: silentLogger })) events.push(event);
  return events;
}

const textOf = (events: JobEvent[], index = 0) =>
  events.map((event) => (event.type === "text-delta" && event.index === index ? event.text : "")).join("");
const finishOf = (events: JobEvent[], index = 0) => events.find((event) => event.type === "finish" && event.index === index);
const errorOf = (events: JobEvent[]) => events.find((event) => event.type === "error");

/** A job that keeps its sequence busy for a while: the grammar forbids ending before 1,500 characters. */
const longJob = (overrides: Partial<ChatJob> = {}) =>
  chatJob({
    maxTokens: 1900,
    responseFormat: { type: "json_schema", name: "long", schema: { type: "string", minLength: 1500, maxLength: 1500 } },
    ...overrides,
  });

/** Reads a job's events as they come, for tests that act in the middle of a stream. */
function startJob(job: Job, target: LlamaBackend, signal: AbortSignal) {
  const events: JobEvent[] = [];
  const waiters: (() => void)[] = [];
  const done = (async () => {
    for await (const event of target.run(job, { signal, logger: silentLogger })) {
      events.push(event);
      for (const wake of waiters.splice(0)) wake();
    }
  })();
  const until = async (predicate: (events: JobEvent[]) => boolean) => {
    while (!predicate(events)) await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), done]);
  };
  return { events, done, until };
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "switchboard-llama-engine-"));
  modelPath = await ensureTestModel("tiny", directory);
  llama = await getLlama({ gpu: false, build: "never" });
  model = await llama.loadModel({ modelPath });
  backend = new LlamaBackend({ models: [modelConfig()], resolvePath: async () => modelPath, llama });
  backend.start();
  expect(await backend.whenReady("tiny")).toEqual({ id: "tiny", state: "ready" });
});

afterAll(async () => {
  await Promise.all([backend?.close(), ...extraBackends.map((extra) => extra.close())]);
  await model?.dispose();
  await rm(directory, { recursive: true, force: true });
});

describe("chat", () => {
  it("streams accepted, then text deltas, then one finish, with exact usage", async () => {
    const events = await collect(chatJob());
    expect(events[0]).toMatchObject({ type: "accepted", model: "tiny" });
    expect(events.at(-1)).toMatchObject({ type: "finish", index: 0, finishReason: "stop" });
    const middle = events.slice(1, -1);
    expect(middle.length).toBeGreaterThan(0);
    expect(middle.every((event) => event.type === "text-delta")).toBe(true);

    // Prompt tokens: the ChatML template around the message, as the model's tokenizer counts it (plus BOS).
    const templated = "<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n";
    const accepted = events[0] as Extract<JobEvent, { type: "accepted" }>;
    expect(accepted.promptTokens).toBe(1 + model.tokenize(templated, true).length);

    // Completion tokens and text: the same as node-llama-cpp generating directly, greedy.
    const context = await model.createContext({ contextSize: 2048, sequences: 1, threads: 1 });
    try {
      const chat = new LlamaChat({ contextSequence: context.getSequence(), chatWrapper: resolveChatWrapper(model) });
      let generated = 0;
      const direct = await chat.generateResponse([{ type: "user", text: "Hello there" }, { type: "model", response: [] }], {
        maxTokens: 200,
        temperature: 0,
        repeatPenalty: false,
        onToken: (tokens) => (generated += tokens.length),
      });
      expect(textOf(events)).toBe(direct.response);
      expect(finishOf(events)).toMatchObject({ completionTokens: generated });
    } finally {
      await context.dispose();
    }
  });

  it("stops at max_tokens with finish_reason length and exactly that many tokens", async () => {
    const events = await collect(chatJob({ maxTokens: 7 }));
    expect(finishOf(events)).toEqual({ type: "finish", index: 0, finishReason: "length", completionTokens: 7 });
  });

  it("stops at a stop string and leaves it out", async () => {
    const full = textOf(await collect(chatJob()));
    const stop = full.slice(6, 9);
    expect(stop.length).toBe(3);
    const events = await collect(chatJob({ stop: [stop] }));
    expect(textOf(events)).toBe(full.slice(0, full.indexOf(stop)));
    expect(finishOf(events)).toMatchObject({ finishReason: "stop" });
  });

  it("gives the same text for the same seed at temperature 1", async () => {
    const sampled = (seed: number) => collect(chatJob({ sampling: { temperature: 1, seed } })).then((events) => textOf(events));
    const first = await sampled(42);
    expect(await sampled(42)).toBe(first);
    const others = await Promise.all([sampled(43), sampled(44)]);
    expect(others.some((text) => text !== first)).toBe(true);
  });

  it("applies presence and frequency penalties", async () => {
    const plain = textOf(await collect(chatJob()));
    const penalized = textOf(await collect(chatJob({ sampling: { temperature: 0, presencePenalty: 1, frequencyPenalty: 1.5 } })));
    expect(penalized).not.toBe(plain);
  });

  it("renders earlier tool calls and their results into the prompt", async () => {
    const plain = await collect(chatJob({ messages: [{ role: "user", content: "Weather in Paris?" }] }));
    const withResult = await collect(
      chatJob({
        messages: [
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: "", toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Paris"}' }] },
          { role: "tool", content: '{"celsius":21}', toolCallId: "call_1" },
        ],
      }),
    );
    const promptTokens = (events: JobEvent[]) => (events[0] as Extract<JobEvent, { type: "accepted" }>).promptTokens;
    expect(promptTokens(withResult)).toBeGreaterThan(promptTokens(plain) + 10);
    expect(finishOf(withResult)).toBeDefined();
  });

  it("refuses a prompt longer than the context before accepting it", async () => {
    const events = await collect(chatJob({ messages: [{ role: "user", content: "word ".repeat(1000) }] }));
    expect(events).toHaveLength(1);
    expect(errorOf(events)).toMatchObject({
      error: { status: 400, code: "context_length_exceeded", param: "messages", message: expect.stringContaining("maximum context length") },
    });
  });

  it("shortens max_tokens to what the context has left instead of failing", async () => {
    const small = new LlamaBackend({ models: [modelConfig({ contextSize: 64, sequences: 1 })], resolvePath: async () => modelPath, llama });
    extraBackends.push(small);
    await small.whenReady("tiny");
    const events = await collect(chatJob({ maxTokens: 500, messages: [{ role: "user", content: "x".repeat(20) }] }), undefined, small);
    const accepted = events[0] as Extract<JobEvent, { type: "accepted" }>;
    const finish = finishOf(events) as Extract<JobEvent, { type: "finish" }>;
    expect(accepted.type).toBe("accepted");
    expect(accepted.promptTokens + finish.completionTokens).toBeLessThan(64);
  });
});

describe("structured output", () => {
  const ajv = new Ajv({ strict: false });
  addFormats(ajv);

  const schemas: Record<string, AnySchema> = {
    // The shape the AI SDK and LangChain send for a zod object.
    "ai-sdk": {
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      properties: {
        name: { type: "string" },
        age: { type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 },
        mood: { type: "string", enum: ["happy", "sad", "calm"] },
      },
      required: ["name", "age", "mood"],
      additionalProperties: false,
    },
    nested: {
      type: "object",
      properties: {
        user: {
          type: "object",
          properties: { id: { type: "integer", minimum: 1, maximum: 999 }, email: { type: "string", format: "email" } },
          required: ["id", "email"],
          additionalProperties: false,
        },
        tags: { type: "array", items: { type: "string", maxLength: 8 }, minItems: 1, maxItems: 3 },
        score: { type: "number", minimum: -1, maximum: 1 },
        note: { anyOf: [{ type: "string" }, { type: "null" }] },
      },
      required: ["user", "tags", "score", "note"],
      additionalProperties: false,
    },
    list: { type: "array", items: { type: "object", properties: { ok: { type: "boolean" }, when: { type: "string", format: "date" } }, required: ["ok", "when"] } },
  };

  it.each(Object.keys(schemas))("json_schema output parses and validates: %s", async (name) => {
    const schema = schemas[name]!;
    const validate = ajv.compile(schema);
    for (const seed of [1, 2]) {
      const events = await collect(
        chatJob({ sampling: { temperature: 1, seed }, maxTokens: 300, responseFormat: { type: "json_schema", name, schema: schema as Record<string, unknown>, strict: true } }),
      );
      expect(finishOf(events)).toMatchObject({ finishReason: "stop" });
      const parsed: unknown = JSON.parse(textOf(events));
      expect(validate(parsed), JSON.stringify(validate.errors)).toBe(true);
    }
  });

  it("json_object output parses as an object", async () => {
    const events = await collect(chatJob({ maxTokens: 400, responseFormat: { type: "json_object" } }));
    expect(finishOf(events)).toMatchObject({ finishReason: "stop" });
    const parsed: unknown = JSON.parse(textOf(events));
    expect(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)).toBe(true);
  });

  it("refuses a schema it cannot enforce with a 400 on response_format", async () => {
    const events = await collect(chatJob({ responseFormat: { type: "json_schema", name: "x", schema: { type: "string", pattern: "^a+$" } } }));
    expect(events).toEqual([
      { type: "error", error: expect.objectContaining({ status: 400, type: "invalid_request_error", param: "response_format" }) },
    ]);
  });
});

describe("tools", () => {
  const weather = {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", maxLength: 20 }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"],
      additionalProperties: false,
    },
  };
  const time = { name: "get_time", parameters: { type: "object", properties: { zone: { type: "integer", minimum: -12, maximum: 14 } }, required: ["zone"] } };
  const ajv = new Ajv({ strict: false });

  function toolCall(events: JobEvent[]) {
    const deltas = events.filter((event) => event.type === "tool-call-delta");
    const first = deltas[0];
    return { id: first?.id, name: first?.name, arguments: deltas.map((delta) => delta.argumentsDelta).join(""), count: new Set(deltas.map((delta) => delta.toolCallIndex)).size };
  }

  it("tool_choice required forces one call with arguments valid for its schema", async () => {
    for (const seed of [1, 2, 3]) {
      const events = await collect(chatJob({ tools: [weather, time], toolChoice: "required", sampling: { temperature: 1, seed } }));
      const call = toolCall(events);
      expect(call.count).toBe(1);
      expect(call.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
      const tool = [weather, time].find((candidate) => candidate.name === call.name);
      expect(tool).toBeDefined();
      expect(ajv.validate(tool!.parameters, JSON.parse(call.arguments)), call.arguments).toBe(true);
      expect(textOf(events)).toBe("");
      expect(finishOf(events)).toMatchObject({ finishReason: "tool_calls" });
    }
  });

  it("a named tool_choice calls that function", async () => {
    const events = await collect(chatJob({ tools: [weather, time], toolChoice: { name: "get_time" } }));
    const call = toolCall(events);
    expect(call.name).toBe("get_time");
    expect(ajv.validate(time.parameters, JSON.parse(call.arguments))).toBe(true);
    expect(finishOf(events)).toMatchObject({ finishReason: "tool_calls" });
  });

  it("tool_choice auto offers the functions to the model through its chat wrapper", async () => {
    const plain = await collect(chatJob());
    const events = await collect(chatJob({ tools: [weather, time], toolChoice: "auto" }));
    const promptTokens = (list: JobEvent[]) => (list[0] as Extract<JobEvent, { type: "accepted" }>).promptTokens;
    // The functions' documentation is part of the prompt.
    expect(promptTokens(events)).toBeGreaterThan(promptTokens(plain) + 50);
    expect(events.at(-1)).toMatchObject({ type: "finish", index: 0 });
  });

  it("tool_choice none answers in text", async () => {
    const events = await collect(chatJob({ tools: [weather], toolChoice: "none" }));
    expect(events.some((event) => event.type === "tool-call-delta")).toBe(false);
    expect(finishOf(events)).toMatchObject({ finishReason: "stop" });
  });

  it("refuses a tool schema it cannot enforce with a 400 on tools", async () => {
    const bad = { name: "bad", parameters: { type: "object", properties: { x: { type: "string", pattern: "a*" } } } };
    const events = await collect(chatJob({ tools: [bad], toolChoice: "required" }));
    expect(events).toEqual([{ type: "error", error: expect.objectContaining({ status: 400, param: "tools" }) }]);
  });
});

describe("completions", () => {
  it("continues each prompt as its own choice, with exact prompt tokens", async () => {
    const job: CompletionJob = {
      kind: "completion",
      id: "completion",
      requestId: "request",
      model: "tiny",
      prompts: ["The weather", "Once upon"],
      maxTokens: 12,
      sampling: { temperature: 0 },
      stop: [],
    };
    const events = await collect(job);
    const expected = job.prompts.reduce((sum, prompt) => sum + 1 + model.tokenize(prompt, false, "trimLeadingSpace").length, 0);
    expect(events[0]).toMatchObject({ type: "accepted", promptTokens: expected });
    for (const index of [0, 1]) {
      expect(textOf(events, index).length).toBeGreaterThan(0);
      expect(finishOf(events, index)).toMatchObject({ type: "finish", index });
    }
    expect(events.at(-1)).toMatchObject({ type: "finish", index: 1 });
  });
});

describe("several choices (n)", () => {
  const finishes = (events: JobEvent[]) => events.filter((event) => event.type === "finish");
  const seededChat = (overrides: Partial<ChatJob> = {}) => chatJob({ sampling: { temperature: 1, seed: 11 }, maxTokens: 24, ...overrides });

  it("generates n chat choices on one sequence, choice i as a single request with seed + i", async () => {
    const events = await collect(seededChat({ n: 3 }));
    const single = await collect(seededChat());
    expect(events[0]).toMatchObject({ type: "accepted", promptTokens: (single[0] as Extract<JobEvent, { type: "accepted" }>).promptTokens });
    expect(finishes(events).map((event) => event.index)).toEqual([0, 1, 2]);
    expect(events.at(-1)).toMatchObject({ type: "finish", index: 2 });
    // Choice 0 is the single answer; later choices start from the prompt, not from an earlier choice's reply.
    expect(textOf(events, 0)).toBe(textOf(single));
    for (const index of [1, 2]) expect(textOf(events, index)).toBe(textOf(await collect(seededChat({ sampling: { temperature: 1, seed: 11 + index } }))));
    expect(new Set([0, 1, 2].map((index) => textOf(events, index))).size).toBeGreaterThan(1);
    // Deltas of a choice all come before the next choice starts.
    const order = events.flatMap((event) => (event.type === "text-delta" || event.type === "finish" ? [event.index] : []));
    expect(order).toEqual([...order].sort());
  });

  it("reports one finished job to metrics: output tokens summed, its own later choices not counted as reuse", async () => {
    const finished: Parameters<LlamaEngineMetrics["jobFinished"]>[0][] = [];
    const metrics: LlamaEngineMetrics = { modelLoaded() {}, jobFinished: (info) => void finished.push(info) };
    const engine = new LlamaBackend({ models: [modelConfig({ sequences: 1 })], resolvePath: async () => modelPath, llama, metrics });
    extraBackends.push(engine);
    await engine.whenReady("tiny");
    const events = await collect(seededChat({ n: 2 }), undefined, engine);
    const summed = finishes(events).reduce((sum, event) => sum + (event.type === "finish" ? event.completionTokens : 0), 0);
    expect(finished).toEqual([expect.objectContaining({ outcome: "completed", reusedPromptTokens: 0, completionTokens: summed })]);
  });

  it("forces a tool call in every choice, each with its own id", async () => {
    const tool = { name: "lookup", parameters: { type: "object", properties: { term: { type: "string", maxLength: 12 } }, required: ["term"] } };
    const events = await collect(seededChat({ n: 2, maxTokens: 64, tools: [tool], toolChoice: "required" }));
    const ids = [0, 1].map((index) => {
      const deltas = events.filter((event) => event.type === "tool-call-delta" && event.index === index);
      expect(deltas.length).toBeGreaterThan(0);
      const first = deltas[0] as Extract<JobEvent, { type: "tool-call-delta" }>;
      expect(first).toMatchObject({ name: "lookup", toolCallIndex: 0 });
      expect(JSON.parse(deltas.map((delta) => (delta.type === "tool-call-delta" ? delta.argumentsDelta : "")).join(""))).toHaveProperty("term");
      expect(finishOf(events, index)).toMatchObject({ finishReason: "tool_calls" });
      return first.id;
    });
    expect(ids[0]).toMatch(/^call_/);
    expect(ids[1]).not.toBe(ids[0]);
  });

  it("constrains every choice by the JSON schema and stops every choice at a stop string", async () => {
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false };
    const json = await collect(seededChat({ n: 2, maxTokens: 64, responseFormat: { type: "json_schema", name: "ok", schema } }));
    for (const index of [0, 1]) expect(typeof JSON.parse(textOf(json, index)).ok).toBe("boolean");

    const full = await collect(chatJob({ maxTokens: 40 }));
    const stop = textOf(full).slice(3, 5);
    const stopped = await collect(chatJob({ n: 2, maxTokens: 40, stop: [stop] }));
    for (const index of [0, 1]) {
      expect(textOf(stopped, index)).toBe(textOf(full).slice(0, textOf(full).indexOf(stop)));
      expect(finishOf(stopped, index)).toMatchObject({ finishReason: "stop" });
    }
  });

  it("gives completions n choices per prompt in OpenAI's order: prompt by prompt", async () => {
    const completion = (prompts: string[], seed: number, n?: number): CompletionJob => ({
      kind: "completion",
      id: `completion-${++jobCounter}`,
      requestId: "request",
      model: "tiny",
      prompts,
      maxTokens: 8,
      sampling: { temperature: 1, seed },
      stop: [],
      ...(n === undefined ? {} : { n }),
    });
    const prompts = ["The weather", "Once upon"];
    const events = await collect(completion(prompts, 21, 2));
    const single = await collect(completion(prompts, 21));
    expect(events[0]).toMatchObject({ type: "accepted", promptTokens: (single[0] as Extract<JobEvent, { type: "accepted" }>).promptTokens });
    expect(finishes(events).map((event) => event.index)).toEqual([0, 1, 2, 3]);
    // Index p * n + i is prompt p with seed + i.
    expect(textOf(events, 0)).toBe(textOf(await collect(completion([prompts[0]!], 21))));
    expect(textOf(events, 1)).toBe(textOf(await collect(completion([prompts[0]!], 22))));
    expect(textOf(events, 2)).toBe(textOf(await collect(completion([prompts[1]!], 21))));
    expect(textOf(events, 3)).toBe(textOf(await collect(completion([prompts[1]!], 22))));
  });

  it("an abort during a later choice ends the job with an error and no further finish", async () => {
    const controller = new AbortController();
    const job = startJob(longJob({ n: 3, maxTokens: 1900 }), backend, controller.signal);
    await job.until((events) => events.some((event) => event.type === "text-delta" && event.index === 1));
    controller.abort();
    await job.done;
    expect(finishes(job.events).map((event) => event.index)).toEqual([0]);
    expect(job.events.at(-1)).toMatchObject({ type: "error", error: { code: "request_cancelled" } });
  });
});

describe("logit_bias", () => {
  const letter = () => model.tokenize("x")[0]!;
  const seeded = (overrides: Partial<ChatJob> = {}) => chatJob({ sampling: { temperature: 1, seed: 5 }, maxTokens: 12, ...overrides });
  const completion = (overrides: Partial<CompletionJob> = {}): CompletionJob => ({
    kind: "completion",
    id: `completion-${++jobCounter}`,
    requestId: "request",
    model: "tiny",
    prompts: ["The weather"],
    maxTokens: 10,
    sampling: { temperature: 1, seed: 5 },
    stop: [],
    ...overrides,
  });

  it("+100 on one token makes every chat token that token, in every choice (n = 2)", async () => {
    const events = await collect(seeded({ n: 2, sampling: { temperature: 1, seed: 5, logitBias: { [letter()]: 100 } } }));
    for (const index of [0, 1]) {
      expect(textOf(events, index)).toBe("x".repeat(12));
      expect(finishOf(events, index)).toMatchObject({ finishReason: "length", completionTokens: 12 });
    }
  });

  it("+100 on one token makes a completion that token, for a greedy and a seeded run", async () => {
    for (const sampling of [{ temperature: 0 }, { temperature: 1, seed: 9 }])
      expect(textOf(await collect(completion({ sampling: { ...sampling, logitBias: { [letter()]: 100 } } })))).toBe("x".repeat(10));
  });

  it("-100 on the tokens a plain seeded run produced first changes the output and never produces them, in every choice", async () => {
    const vocabularySize = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
    const jobs: ((overrides: Pick<Partial<ChatJob>, "n" | "sampling">) => Job)[] = [seeded, completion];
    for (const job of jobs) {
      const plain = textOf(await collect(job({})));
      // Text can be spelled by several token sequences: ban every token that spells one of the opening characters.
      const bannedCharacters = [...new Set(plain.replace(/\s/g, "").slice(0, 3))];
      expect(bannedCharacters.length).toBeGreaterThan(0);
      const banned = Array.from({ length: vocabularySize }, (_, token) => token).filter((token) =>
        bannedCharacters.some((character) => model.detokenize([token as Token]).includes(character)),
      );
      const logitBias = Object.fromEntries(banned.map((token) => [token, -100]));
      const events = await collect(job({ n: 2, sampling: { temperature: 1, seed: 5, logitBias } }));
      for (const index of [0, 1]) {
        const biased = textOf(events, index);
        expect(biased.length).toBeGreaterThan(0);
        expect(biased).not.toBe(plain);
        for (const character of bannedCharacters) expect(biased).not.toContain(character);
      }
    }
  });

  it("an empty map answers as no bias", async () => {
    expect(textOf(await collect(seeded({ sampling: { temperature: 1, seed: 5, logitBias: {} } })))).toBe(textOf(await collect(seeded())));
  });

  it("refuses an id outside the vocabulary, or an end-of-generation token, with a 400 naming it, before accepting", async () => {
    const vocabularySize = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
    for (const id of [vocabularySize, 999999]) {
      for (const job of [seeded({ sampling: { logitBias: { [letter()]: 5, [id]: -100 } } }), completion({ sampling: { logitBias: { [id]: 1 } } })]) {
        const events = await collect(job);
        expect(events).toEqual([
          { type: "error", error: expect.objectContaining({ status: 400, type: "invalid_request_error", param: `logit_bias.${id}`, message: expect.stringContaining("vocabulary") }) },
        ]);
      }
    }
    const eos = model.tokens.eos!;
    expect(await collect(seeded({ sampling: { logitBias: { [eos]: -100 } } }))).toEqual([
      { type: "error", error: expect.objectContaining({ status: 400, param: `logit_bias.${eos}` }) },
    ]);
  });
});

describe("embeddings", () => {
  const embeddingJob = (input: string[]): EmbeddingJob => ({ kind: "embedding", id: `embedding-${++jobCounter}`, requestId: "request", model: "tiny", input });

  it("returns one unit vector per input, in order, deterministically", async () => {
    const events = await collect(embeddingJob(["hello world", "something else", "hello world"]));
    expect(events.map((event) => event.type)).toEqual(["accepted", "embeddings", "finish"]);
    const { vectors } = events[1] as Extract<JobEvent, { type: "embeddings" }>;
    expect(vectors).toHaveLength(3);
    for (const vector of vectors) {
      expect(vector).toHaveLength(model.embeddingVectorSize);
      expect(Math.hypot(...vector)).toBeCloseTo(1, 5);
    }
    expect(vectors[2]).toEqual(vectors[0]);
    expect(vectors[1]).not.toEqual(vectors[0]);
    expect(events[2]).toEqual({ type: "finish", index: 0, finishReason: "stop", completionTokens: 0 });
    expect((events[0] as Extract<JobEvent, { type: "accepted" }>).promptTokens).toBeGreaterThan(0);
  });

  it("refuses an input longer than the context with a 400 on input", async () => {
    const events = await collect(embeddingJob(["short", "word ".repeat(1200)]));
    expect(events).toEqual([
      { type: "error", error: expect.objectContaining({ status: 400, code: "context_length_exceeded", param: "input[1]" }) },
    ]);
  });
});

describe("sequences, waiting line and cancellation", () => {
  it("answers 429 with a retry estimate once every sequence is busy and the line is full", async () => {
    const controller = new AbortController();
    const running = [startJob(longJob(), backend, controller.signal), startJob(longJob(), backend, controller.signal), startJob(longJob(), backend, controller.signal)];
    await Promise.all(running.map((job) => job.until((events) => events.length > 0)));
    expect(running.map((job) => job.events[0]?.type)).toEqual(["accepted", "accepted", "accepted"]);

    const waiting = startJob(chatJob(), backend, controller.signal);
    while (backend.queueStates()[0]?.waiting !== 1) await new Promise((resolve) => setImmediate(resolve));
    const refused = await collect(chatJob());
    expect(refused).toEqual([
      { type: "error", error: expect.objectContaining({ status: 429, type: "rate_limit_error", retryAfterSeconds: expect.any(Number) }) },
    ]);
    const payload = (refused[0] as Extract<JobEvent, { type: "error" }>).error;
    expect(payload.retryAfterSeconds).toBeGreaterThanOrEqual(1);

    controller.abort();
    await Promise.all([...running.map((job) => job.done), waiting.done]);
    expect(backend.queueStates()[0]).toMatchObject({ waiting: 0 });
  });

  it("frees the sequence within a second of an abort, for the job waiting behind it", async () => {
    const single = new LlamaBackend({ models: [modelConfig({ sequences: 1, maxWaiting: 2 })], resolvePath: async () => modelPath, llama });
    extraBackends.push(single);
    await single.whenReady("tiny");

    const first = new AbortController();
    const long = startJob(longJob(), single, first.signal);
    await long.until((events) => events.some((event) => event.type === "text-delta"));

    // A waiting job that gives up leaves the line.
    const impatient = new AbortController();
    const leaving = startJob(chatJob(), single, impatient.signal);
    while (single.queueStates()[0]?.waiting !== 1) await new Promise((resolve) => setImmediate(resolve));
    impatient.abort();
    await leaving.done;
    expect(leaving.events).toEqual([{ type: "error", error: expect.objectContaining({ code: "request_cancelled" }) }]);
    expect(single.queueStates()[0]).toMatchObject({ waiting: 0, free: 0 });

    const next = startJob(chatJob(), single, new AbortController().signal);
    while (single.queueStates()[0]?.waiting !== 1) await new Promise((resolve) => setImmediate(resolve));
    const abortedAt = performance.now();
    first.abort();
    await next.until((events) => events.length > 0);
    expect(next.events[0]).toMatchObject({ type: "accepted" });
    expect(performance.now() - abortedAt).toBeLessThan(1000);
    await Promise.all([long.done, next.done]);
    expect(long.events.at(-1)).toMatchObject({ type: "error", error: { code: "request_cancelled" } });
    expect(finishOf(long.events)).toBeUndefined();
    expect(finishOf(next.events)).toMatchObject({ finishReason: "stop" });
  });

  it("a job past its deadline ends with a timeout error", async () => {
    const events = await collect(chatJob({ deadlineAt: Date.now() - 1 }));
    expect(events).toEqual([{ type: "error", error: expect.objectContaining({ status: 408, type: "timeout_error" }) }]);
  });

  it("stops generating when the reader goes away", async () => {
    const iterator = backend.run(longJob(), { signal: new AbortController().signal, logger: silentLogger })[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ type: "accepted" });
    await iterator.return?.();
    const freedBy = performance.now() + 1000;
    while (backend.queueStates()[0]?.free !== 3 && performance.now() < freedBy) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(backend.queueStates()[0]?.free).toBe(3);
  });
});

describe("prompt prefix reuse", () => {
  type Finished = Parameters<LlamaEngineMetrics["jobFinished"]>[0];
  /** A backend of its own whose jobs' metrics the test reads. */
  async function recordingBackend(overrides: Partial<LlamaModelConfig> = {}, contextsPerModel = 1) {
    const finished: Finished[] = [];
    const metrics: LlamaEngineMetrics = { modelLoaded() {}, jobFinished: (info) => void finished.push(info) };
    const created = new LlamaBackend({ models: [modelConfig({ sequences: 1, ...overrides })], resolvePath: async () => modelPath, llama, metrics, contextsPerModel });
    extraBackends.push(created);
    await created.whenReady("tiny");
    return { backend: created, finished };
  }
  // Long enough that its cached evaluation counts when choosing a sequence.
  const system = (topic: string) => `You answer questions about ${topic}. ${"Keep every answer short, plain and polite. ".repeat(4)}`;
  const conversation = (topic: string, ...turns: string[]): ChatJob["messages"] => [
    { role: "system", content: system(topic) },
    ...turns.map((content, index) => ({ role: index % 2 === 0 ? ("user" as const) : ("assistant" as const), content })),
  ];
  const seeded = (messages: ChatJob["messages"], overrides: Partial<ChatJob> = {}) =>
    chatJob({ messages, sampling: { temperature: 1, seed: 7 }, maxTokens: 24, ...overrides });

  it("a second chat turn evaluates only what the first turn did not already hold", async () => {
    const { backend: engine, finished } = await recordingBackend();
    const first = await collect(seeded(conversation("the weather", "Will it rain today?")), undefined, engine);
    const firstPrompt = (first[0] as Extract<JobEvent, { type: "accepted" }>).promptTokens;
    // The idle sequence keeps the prompt and the reply it generated.
    const [state] = engine.queueStates();
    expect(state?.cachedContextTokens).toBeGreaterThanOrEqual(firstPrompt);
    expect(state?.contextTokens).toBe(state?.cachedContextTokens);

    const second = await collect(seeded(conversation("the weather", "Will it rain today?", textOf(first), "And tomorrow?")), undefined, engine);
    const secondPrompt = (second[0] as Extract<JobEvent, { type: "accepted" }>).promptTokens;
    expect(finished.map((job) => job.reusedPromptTokens)).toEqual([0, expect.any(Number)]);
    const reused = finished[1]!.reusedPromptTokens!;
    // At least the whole first prompt is reused; only the reply and the new question are evaluated.
    expect(reused).toBeGreaterThanOrEqual(firstPrompt);
    expect(reused).toBeLessThan(secondPrompt);
    expect(finished[1]).toMatchObject({ promptTokens: secondPrompt, outcome: "completed" });
    expect(finishOf(second)).toMatchObject({ finishReason: expect.stringMatching(/stop|length/) });
  });

  it("gives the same seeded output on a cold sequence, a warm one, and after an unrelated job", async () => {
    const { backend: engine, finished } = await recordingBackend();
    const job = () => seeded(conversation("gardening", "How often should I water tomatoes?"));
    const cold = textOf(await collect(job(), undefined, engine));
    const warm = textOf(await collect(job(), undefined, engine));
    await collect(seeded(conversation("astronomy", "Why is the sky dark at night?"), { sampling: { temperature: 1, seed: 3 } }), undefined, engine);
    const afterOther = textOf(await collect(job(), undefined, engine));
    expect(cold.length).toBeGreaterThan(0);
    expect(warm).toBe(cold);
    expect(afterOther).toBe(cold);
    // The warm run reused all but the prompt's last token; the unrelated job kept only the shared opening.
    expect(finished[1]!.reusedPromptTokens).toBe(finished[1]!.promptTokens - 1);
    expect(finished[3]!.reusedPromptTokens).toBeLessThan(finished[3]!.promptTokens / 2);
  });

  it("an unrelated job after a long one answers as on a fresh engine", async () => {
    const { backend: engine } = await recordingBackend();
    const long = await collect(
      longJob({ messages: conversation("history", "Tell me everything."), responseFormat: { type: "json_schema", name: "long", schema: { type: "string", minLength: 400, maxLength: 400 } } }),
      undefined,
      engine,
    );
    expect(finishOf(long)).toMatchObject({ finishReason: "stop" });
    const job = () => seeded(conversation("cooking", "How long do I boil an egg?"), { maxTokens: 60 });
    const afterLong = await collect(job(), undefined, engine);
    const { backend: fresh } = await recordingBackend();
    const onFresh = await collect(job(), undefined, fresh);
    expect(textOf(afterLong).length).toBeGreaterThan(0);
    expect(textOf(afterLong)).toBe(textOf(onFresh));
    expect(finishOf(afterLong)).toEqual(finishOf(onFresh));
  });

  it("an aborted job leaves nothing that changes the next job's output", async () => {
    const { backend: engine, finished } = await recordingBackend();
    const controller = new AbortController();
    // Same conversation start as the next job: a kept state would be reused, so it must be gone.
    const aborted = startJob(longJob({ messages: conversation("music", "Name a song.") }), engine, controller.signal);
    await aborted.until((events) => events.filter((event) => event.type === "text-delta").length >= 5);
    controller.abort();
    await aborted.done;
    expect(errorOf(aborted.events)).toMatchObject({ error: { code: "request_cancelled" } });
    const idleBy = performance.now() + 1000;
    while (engine.queueStates()[0]?.free !== 1 && performance.now() < idleBy) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(engine.queueStates()[0]).toMatchObject({ free: 1, contextTokens: 0, cachedContextTokens: 0 });

    const job = () => seeded(conversation("music", "Name a song."));
    const next = await collect(job(), undefined, engine);
    const { backend: fresh } = await recordingBackend();
    expect(textOf(next)).toBe(textOf(await collect(job(), undefined, fresh)));
    expect(finished.at(-1)).toMatchObject({ outcome: "completed", reusedPromptTokens: 0 });
  });

  it("sends a job to the sequence that holds its conversation", async () => {
    // Three sequences over three contexts: without reuse, each new job would go to an empty context.
    const { backend: engine, finished } = await recordingBackend({ sequences: 3 }, 3);
    const weather = await collect(seeded(conversation("the weather", "Will it rain?")), undefined, engine);
    await collect(seeded(conversation("sports", "Who won?")), undefined, engine);
    await collect(seeded(conversation("the weather", "Will it rain?", textOf(weather), "And tomorrow?")), undefined, engine);
    expect(finished[2]!.reusedPromptTokens).toBeGreaterThanOrEqual(finished[0]!.promptTokens);
  });

  it("reuses a completion prompt, with the same output", async () => {
    const { backend: engine, finished } = await recordingBackend();
    const job = (): CompletionJob => ({
      kind: "completion",
      id: `completion-${++jobCounter}`,
      requestId: "request",
      model: "tiny",
      prompts: [`The recipe begins: ${"stir the pot slowly, ".repeat(6)}then`],
      maxTokens: 16,
      sampling: { temperature: 1, seed: 5 },
      stop: [],
    });
    const first = textOf(await collect(job(), undefined, engine));
    const second = textOf(await collect(job(), undefined, engine));
    expect(second).toBe(first);
    expect(finished.map((entry) => entry.reusedPromptTokens)).toEqual([0, finished[1]!.promptTokens - 1]);
  });
});

describe("model loading", () => {
  it("answers 503 with Retry-After while a model loads, and reports it", async () => {
    const loading = new LlamaBackend({ models: [modelConfig({ id: "slow" })], resolvePath: () => new Promise<string>(() => {}), llama });
    extraBackends.push(loading);
    loading.start();
    expect(loading.modelStates()).toEqual([{ id: "slow", state: "loading" }]);
    const events = await collect(chatJob({ model: "slow" }), undefined, loading);
    expect(events).toEqual([
      { type: "error", error: expect.objectContaining({ status: 503, code: "model_unavailable", retryAfterSeconds: expect.any(Number) }) },
    ]);
  });

  it("refuses a file its check rejects, and says why without the path", async () => {
    const refused = new LlamaBackend({
      models: [modelConfig({ id: "broken" })],
      resolvePath: async () => join(directory, "broken.gguf"),
      checkFile: async (path) => {
        throw new Error(`${path}: missing llama.attention.head_count`);
      },
      llama,
    });
    extraBackends.push(refused);
    const state = await refused.whenReady("broken");
    expect(state).toEqual({ id: "broken", state: "failed", error: "broken.gguf: missing llama.attention.head_count" });
    const events = await collect(chatJob({ model: "broken" }), undefined, refused);
    expect(events).toEqual([
      { type: "error", error: expect.objectContaining({ status: 503, message: expect.stringContaining("missing llama.attention.head_count") }) },
    ]);
  });

  it("close() stops running jobs with an error event and refuses new ones", async () => {
    const closing = new LlamaBackend({ models: [modelConfig({ sequences: 1 })], resolvePath: async () => modelPath, llama });
    extraBackends.push(closing);
    await closing.whenReady("tiny");
    const running = startJob(longJob(), closing, new AbortController().signal);
    await running.until((events) => events.some((event) => event.type === "text-delta"));
    const started = performance.now();
    await closing.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await running.done;
    expect(running.events.at(-1)).toMatchObject({ type: "error", error: { status: 503, code: "server_shutting_down" } });
    expect(await collect(chatJob(), undefined, closing)).toEqual([{ type: "error", error: expect.objectContaining({ status: 503 }) }]);
  });

  it("starts its own CPU-only llama.cpp when none is given", async () => {
    const own = new LlamaBackend({ models: [modelConfig({ sequences: 1 })], resolvePath: async () => modelPath });
    extraBackends.push(own);
    expect(await own.whenReady("tiny")).toEqual({ id: "tiny", state: "ready" });
    expect(finishOf(await collect(chatJob({ maxTokens: 5 }), undefined, own))).toMatchObject({ finishReason: "length", completionTokens: 5 });
  });

  it("answers model_not_found for a model it does not serve", async () => {
    const events = await collect(chatJob({ model: "nope" }));
    expect(events).toEqual([{ type: "error", error: expect.objectContaining({ status: 404, code: "model_not_found" }) }]);
  });
});

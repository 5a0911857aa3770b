/**
 * The OpenAI API contract, driven by the official `openai` npm client (v6)
 * against a real server on a real port. Transport-agnostic: the caller
 * supplies a factory for the server under test (embedded mode, fleet mode,
 * or the gateway in front of a scripted backend), and the same cases run.
 *
 * The cases assume a text model that answers chat, completions and
 * embeddings, honours grammars for `response_format` and tools, and has a
 * context far smaller than 40,000 words.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ajv } from "ajv";
import OpenAI from "openai";


export interface ContractServer {
  /** Where the server listens: its origin, with or without the `/v1` suffix. */
  baseURL: string;
  /** A chat model that also serves completions and embeddings. */
  modelId: string;
  /** A key the server accepts, when it has keys configured. */
  apiKey?: string;
  close(): Promise<void>;
}

/** The structured output the json_schema case asks for, as clients send it (`$schema`, ±2^53 integer bounds). */
export const CONTRACT_JSON_SCHEMA = {
  $schema: "http://json-schema.org/draft-07/schema#",
  type: "object",
  properties: {
    color: { type: "string", enum: ["red", "green", "blue"] },
    count: { type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 },
    ok: { type: "boolean" },
  },
  required: ["color", "count", "ok"],
  additionalProperties: false,
} as const;

const WEATHER_TOOL = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", enum: ["Oslo", "Paris", "Lima"] } },
      required: ["city"],
      additionalProperties: false,
    },
  },
};
const TIME_TOOL = {
  type: "function" as const,
  function: {
    name: "get_time",
    description: "Current time in a time zone",
    parameters: {
      type: "object",
      properties: { zone: { type: "string", enum: ["UTC", "CET"] } },
      required: ["zone"],
      additionalProperties: false,
    },
  },
};

/**
 * Defines the suite. `createServer` runs once before the cases; `close` once after.
 */
export function defineApiContractSuite(name: string, createServer: () => Promise<ContractServer>): void {
  describe(`OpenAI API contract: ${name}`, () => {
    let server: ContractServer;
    let client: OpenAI;
    let origin: string;
    let model: string;
    const ajv = new Ajv({ strict: false, allErrors: true });

    beforeAll(async () => {
      server = await createServer();
      origin = server.baseURL.replace(/\/+$/, "").replace(/\/v1$/, "");
      model = server.modelId;
      client = new OpenAI({ baseURL: `${origin}/v1`, apiKey: server.apiKey ?? "sk-unused", maxRetries: 0, timeout: 60_000 });
    });
    afterAll(async () => {
      await server?.close();
    });

    const say = (content: string) => [{ role: "user" as const, content }];
    const authHeaders = (): Record<string, string> => ({
      "content-type": "application/json",
      authorization: `Bearer ${server.apiKey ?? "sk-unused"}`,
    });

    it("chat: a non-streamed completion with usage, refusal and logprobs null", async () => {
      const { data, response } = await client.chat.completions
        .create({ model, messages: say("Say hello."), max_tokens: 16 }, { headers: { "x-request-id": "contract-chat-1" } })
        .withResponse();
      expect(response.headers.get("x-request-id")).toBe("contract-chat-1");
      expect(data.object).toBe("chat.completion");
      expect(data.id).toMatch(/^chatcmpl-/);
      expect(data.model).toBe(model);
      const choice = data.choices[0]!;
      expect(data.choices).toHaveLength(1);
      expect(choice.message.role).toBe("assistant");
      expect(typeof choice.message.content).toBe("string");
      expect(choice.message.refusal).toBeNull();
      expect(choice.logprobs).toBeNull();
      expect(["stop", "length"]).toContain(choice.finish_reason);
      expect(data.usage!.prompt_tokens).toBeGreaterThan(0);
      expect(data.usage!.completion_tokens).toBeGreaterThan(0);
      expect(data.usage!.completion_tokens).toBeLessThanOrEqual(16);
      expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
    });

    it("chat: streaming puts role on the first delta, keeps one id and ends with [DONE]", async () => {
      const stream = await client.chat.completions.create({ model, messages: say("Count to three."), max_tokens: 16, stream: true });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      expect(chunks.length).toBeGreaterThan(1);
      expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
      expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
      expect(chunks.every((chunk) => chunk.object === "chat.completion.chunk")).toBe(true);
      const finishes = chunks.flatMap((chunk) => chunk.choices.filter((choice) => choice.finish_reason !== null));
      expect(finishes).toHaveLength(1);
      expect(["stop", "length"]).toContain(finishes[0]!.finish_reason);

      const raw = await fetch(`${origin}/v1/chat/completions`, {
        method: "POST",
        headers: authHeaders(),
        body: JSON.stringify({ model, messages: say("Hi"), max_tokens: 4, stream: true }),
      });
      expect(raw.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const text = await raw.text();
      expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    });

    it("chat: include_usage ends the stream with a usage chunk whose choices are empty", async () => {
      const stream = await client.chat.completions.create({
        model,
        messages: say("Hello"),
        max_tokens: 8,
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const last = chunks.at(-1)!;
      expect(last.choices).toEqual([]);
      expect(last.usage!.prompt_tokens).toBeGreaterThan(0);
      expect(last.usage!.completion_tokens).toBeGreaterThan(0);
      expect(last.usage!.total_tokens).toBe(last.usage!.prompt_tokens + last.usage!.completion_tokens);
      for (const chunk of chunks.slice(0, -1)) expect(chunk.usage ?? null).toBeNull();
    });

    it("chat: response_format json_schema output parses and validates against the schema", async () => {
      const data = await client.chat.completions.create({
        model,
        messages: say("Describe a color as JSON."),
        max_tokens: 200,
        response_format: { type: "json_schema", json_schema: { name: "response", schema: CONTRACT_JSON_SCHEMA, strict: true } },
      });
      const content = data.choices[0]!.message.content!;
      const parsed = JSON.parse(content);
      const validate = ajv.compile(CONTRACT_JSON_SCHEMA);
      expect(validate(parsed), `${content} ${JSON.stringify(validate.errors)}`).toBe(true);
    });

    it("chat: tool_choice required produces a tool call whose arguments fit the schema", async () => {
      const data = await client.chat.completions.create({
        model,
        messages: say("What's the weather in Oslo?"),
        max_tokens: 128,
        tools: [WEATHER_TOOL, TIME_TOOL],
        tool_choice: "required",
      });
      const choice = data.choices[0]!;
      expect(choice.finish_reason).toBe("tool_calls");
      const calls = choice.message.tool_calls ?? [];
      expect(calls.length).toBeGreaterThan(0);
      for (const call of calls) {
        expect(call.type).toBe("function");
        if (call.type !== "function") continue;
        expect(call.id).toBeTruthy();
        const tool = [WEATHER_TOOL, TIME_TOOL].find((candidate) => candidate.function.name === call.function.name);
        expect(tool, call.function.name).toBeDefined();
        expect(ajv.validate(tool!.function.parameters, JSON.parse(call.function.arguments)), call.function.arguments).toBe(true);
      }
    });

    it("chat: a named tool_choice calls that function, streamed deltas included", async () => {
      const data = await client.chat.completions.create({
        model,
        messages: say("What time is it?"),
        max_tokens: 128,
        tools: [WEATHER_TOOL, TIME_TOOL],
        tool_choice: { type: "function", function: { name: "get_time" } },
      });
      const call = data.choices[0]!.message.tool_calls![0]!;
      expect(call.type === "function" && call.function.name).toBe("get_time");
      expect(data.choices[0]!.finish_reason).toBe("tool_calls");

      const stream = await client.chat.completions.create({
        model,
        messages: say("What time is it?"),
        max_tokens: 128,
        tools: [WEATHER_TOOL, TIME_TOOL],
        tool_choice: { type: "function", function: { name: "get_time" } },
        stream: true,
      });
      let name = "";
      let argumentsText = "";
      let finish: string | null = null;
      for await (const chunk of stream) {
        for (const choice of chunk.choices) {
          for (const delta of choice.delta.tool_calls ?? []) {
            if (delta.index !== 0) continue;
            name += delta.function?.name ?? "";
            argumentsText += delta.function?.arguments ?? "";
          }
          finish = choice.finish_reason ?? finish;
        }
      }
      expect(name).toBe("get_time");
      expect(ajv.validate(TIME_TOOL.function.parameters, JSON.parse(argumentsText)), argumentsText).toBe(true);
      expect(finish).toBe("tool_calls");
    });

    it("completions: string and list prompts, streamed and not", async () => {
      const single = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 8 });
      expect(single.object).toBe("text_completion");
      expect(single.choices).toHaveLength(1);
      expect(typeof single.choices[0]!.text).toBe("string");
      expect(single.usage!.completion_tokens).toBeGreaterThan(0);

      const list = await client.completions.create({ model, prompt: ["One", "Two"], max_tokens: 4 });
      expect(list.choices.map((choice) => choice.index).sort()).toEqual([0, 1]);

      const stream = await client.completions.create({ model, prompt: "Hello", max_tokens: 6, stream: true });
      let text = "";
      let finish: string | null = null;
      for await (const chunk of stream) {
        expect(chunk.object).toBe("text_completion");
        text += chunk.choices[0]?.text ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(typeof text).toBe("string");
      expect(["stop", "length"]).toContain(finish);
    });

    it("embeddings: float and base64 (the SDK default) agree", async () => {
      const input = ["hello world", "a second text"];
      const floats = await client.embeddings.create({ model, input, encoding_format: "float" });
      const decoded = await client.embeddings.create({ model, input });
      expect(floats.object).toBe("list");
      expect(floats.data).toHaveLength(2);
      expect(floats.usage.prompt_tokens).toBeGreaterThan(0);
      for (const index of [0, 1]) {
        const a = floats.data[index]!.embedding;
        const b = decoded.data[index]!.embedding;
        expect(a.length).toBeGreaterThan(0);
        expect(b).toHaveLength(a.length);
        // base64 carries float32: equal after rounding the float64 values to float32.
        expect(b).toEqual(a.map((value) => Math.fround(value)));
      }
      const raw = await client.embeddings.create({ model, input: "hello world", encoding_format: "base64" });
      expect(typeof raw.data[0]!.embedding).toBe("string");
    });

    it("models: list and retrieve", async () => {
      const list = await client.models.list();
      const ids = list.data.map((entry) => entry.id);
      expect(ids).toContain(model);
      const retrieved = await client.models.retrieve(model);
      expect(retrieved).toMatchObject({ id: model, object: "model" });
      expect(typeof retrieved.created).toBe("number");
      expect(typeof retrieved.owned_by).toBe("string");
    });

    it("8 concurrent streams all complete with distinct ids", async () => {
      const runs = Array.from({ length: 8 }, async (_, index) => {
        const stream = await client.chat.completions.create({ model, messages: say(`Stream ${index}`), max_tokens: 12, stream: true });
        let id = "";
        let finish: string | null = null;
        for await (const chunk of stream) {
          id = chunk.id;
          finish = chunk.choices[0]?.finish_reason ?? finish;
        }
        return { id, finish };
      });
      const results = await Promise.all(runs);
      expect(new Set(results.map((result) => result.id)).size).toBe(8);
      for (const result of results) expect(["stop", "length"]).toContain(result.finish);
    });

    it("a client that aborts its stream frees the sequence: the next request completes promptly", async () => {
      const streams = await Promise.all(
        Array.from({ length: 4 }, () => client.chat.completions.create({ model, messages: say("Tell a very long story."), max_tokens: 100_000, stream: true })),
      );
      await Promise.all(
        streams.map(async (stream) => {
          let seen = 0;
          for await (const _chunk of stream) {
            if (++seen >= 2) break; // leaving the loop aborts the request
          }
        }),
      );
      const start = performance.now();
      const next = await client.chat.completions.create({ model, messages: say("Quick one."), max_tokens: 4 });
      expect(next.choices[0]!.finish_reason).toBeTruthy();
      expect(performance.now() - start).toBeLessThan(2_000);
    });

    it("a prompt longer than the context is a 400 context_length_exceeded saying 'maximum context length'", async () => {
      const error = await client.chat.completions
        .create({ model, messages: say("word ".repeat(40_000)), max_tokens: 4 })
        .then(() => undefined, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      const apiError = error as InstanceType<typeof OpenAI.BadRequestError>;
      expect(apiError.status).toBe(400);
      expect(apiError.code).toBe("context_length_exceeded");
      expect(apiError.message).toMatch(/maximum context length/);
    });

    it("an unknown model is a 404 NotFoundError, also with stream: true", async () => {
      for (const stream of [false, true] as const) {
        const error = await client.chat.completions
          .create({ model: "no-such-model-for-contract", messages: say("hi"), stream })
          .then(() => undefined, (caught: unknown) => caught);
        expect(error).toBeInstanceOf(OpenAI.NotFoundError);
        expect((error as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
      }
    });
  });
}

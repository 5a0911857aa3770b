/**
 * Response objects the gateway sends validate against the official OpenAI
 * OpenAPI component schemas (CreateChatCompletionResponse,
 * CreateChatCompletionStreamResponse, CreateCompletionResponse,
 * CreateEmbeddingResponse, ListModelsResponse, Model, ErrorResponse).
 *
 * The official document is optional data outside the repository. Without it
 * the responses are checked against our own schemas instead, with a notice;
 * with SWITCHBOARD_REQUIRE_OPENAPI=1 its absence fails the suite.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ajv } from "ajv";
import { openAISchemas, type JobEvent, type TokenLogprob } from "@switchboard/protocol";
import { buildTestGateway, REMOTE_CHAT, remoteChatModel, TEST_MODEL, testConfig, type TestGateway } from "../test/gateway-harness.js";
import { loadOpenAISpec, OPENAI_SPEC_PATH } from "../test/openai-spec.js";
import { textAnswer, type Script } from "../test/scripted-backend.js";


const official = loadOpenAISpec();
const required = process.env.SWITCHBOARD_REQUIRE_OPENAPI === "1";
if (!official && !required) {
  console.warn(`Notice: ${OPENAI_SPEC_PATH} not found; validating responses against Switchboard's own schemas only.`);
}

/** Our schema `$id` for each official component name (the fallback). */
const ownSchemaFor: Record<string, string> = {
  CreateChatCompletionResponse: "CreateChatCompletionResponse",
  CreateChatCompletionStreamResponse: "CreateChatCompletionStreamResponse",
  CreateCompletionResponse: "CreateCompletionResponse",
  CreateEmbeddingResponse: "CreateEmbeddingResponse",
  ListModelsResponse: "ListModelsResponse",
  Model: "Model",
  ErrorResponse: "ErrorResponse",
};
const own = new Ajv({ strict: false, allErrors: true, discriminator: true });
for (const schema of openAISchemas) own.addSchema(schema);

function expectValid(component: string, value: unknown): void {
  const validate = official ? official.validator(component) : own.getSchema(ownSchemaFor[component]!)!;
  const valid = validate(value);
  expect(validate.errors ?? [], `${component}: ${JSON.stringify(value).slice(0, 400)}`).toEqual([]);
  expect(valid).toBe(true);
}

/** A token with its log probability and `top` alternatives, as a remote model's upstream reports it. */
const tokenLogprob = (token: string, logprob: number, top: number): TokenLogprob => ({
  token,
  logprob,
  bytes: [...Buffer.from(token, "utf8")],
  top_logprobs: Array.from({ length: top }, (_, rank) => ({ token: rank === 0 ? token : `${token}${rank}`, logprob: logprob - rank, bytes: null })),
});

const script: Script = async function* (job): AsyncIterable<JobEvent> {
  if (job.kind === "chat" && job.logprobs !== undefined) {
    yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 5 };
    yield { type: "text-delta", index: 0, text: "Hi", logprobs: [tokenLogprob("Hi", -0.25, job.logprobs)] };
    yield { type: "text-delta", index: 0, text: " there", logprobs: [tokenLogprob(" there", -1.5, job.logprobs)] };
    yield { type: "finish", index: 0, finishReason: "stop", completionTokens: 2 };
    return;
  }
  if (job.kind === "embedding") {
    yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: job.input.length * 2 };
    yield { type: "embeddings", vectors: job.input.map((_, index) => [index, 0.5, -0.25]) };
    return;
  }
  if (job.kind === "chat" && job.tools !== undefined) {
    yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 12 };
    for (let index = 0; index < (job.n ?? 1); index++) {
      yield { type: "tool-call-delta", index, toolCallIndex: 0, id: `call_abc${index}`, name: job.tools[0]!.name, argumentsDelta: '{"city":' };
      yield { type: "tool-call-delta", index, toolCallIndex: 0, argumentsDelta: '"Oslo"}' };
      yield { type: "finish", index, finishReason: "tool_calls", completionTokens: 6 };
    }
    return;
  }
  if ((job.kind === "chat" || job.kind === "completion") && job.n !== undefined) {
    // n choices (per prompt), one after another, as the llama engine sends them.
    yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 7 };
    const count = job.n * (job.kind === "completion" ? job.prompts.length : 1);
    for (let index = 0; index < count; index++) {
      yield { type: "text-delta", index, text: `Hi #${index}` };
      yield { type: "finish", index, finishReason: index % 2 === 0 ? "stop" : "length", completionTokens: 2 };
    }
    return;
  }
  yield* textAnswer(job, ["Hi", "!"]);
};

let gateway: TestGateway;
beforeAll(async () => {
  const config = testConfig();
  gateway = await buildTestGateway({ config: { ...config, models: [...config.models, remoteChatModel] }, script });
});
afterAll(() => gateway.close());

const post = (url: string, payload: object) => gateway.app.inject({ method: "POST", url, payload });
const messages = [{ role: "user", content: "hi" }];
const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }];

function chunksOf(body: string): unknown[] {
  const frames = body.trim().split("\n\n").map((frame) => frame.replace(/^data: /, ""));
  expect(frames.at(-1)).toBe("[DONE]");
  return frames.slice(0, -1).map((frame) => JSON.parse(frame));
}

describe(`responses conform to ${official ? "the official OpenAI OpenAPI schemas" : "Switchboard's own schemas (official document absent)"}`, () => {
  it("the official document is present when SWITCHBOARD_REQUIRE_OPENAPI=1", () => {
    if (required) expect(official, `missing ${OPENAI_SPEC_PATH}`).toBeDefined();
  });

  it("CreateChatCompletionResponse: text and tool calls, one choice and n choices", async () => {
    expectValid("CreateChatCompletionResponse", (await post("/v1/chat/completions", { model: TEST_MODEL, messages })).json());
    const withTools = (await post("/v1/chat/completions", { model: TEST_MODEL, messages, tools, tool_choice: "required" })).json();
    expect(withTools.choices[0].finish_reason).toBe("tool_calls");
    expectValid("CreateChatCompletionResponse", withTools);

    const several = (await post("/v1/chat/completions", { model: TEST_MODEL, messages, n: 3 })).json();
    expect(several.choices.map((choice: { index: number; message: { content: string }; finish_reason: string }) => [choice.index, choice.message.content, choice.finish_reason])).toEqual([
      [0, "Hi #0", "stop"],
      [1, "Hi #1", "length"],
      [2, "Hi #2", "stop"],
    ]);
    // The prompt is shared; output tokens add up over the choices.
    expect(several.usage).toEqual({ prompt_tokens: 7, completion_tokens: 6, total_tokens: 13 });
    expectValid("CreateChatCompletionResponse", several);
    const severalCalls = (await post("/v1/chat/completions", { model: TEST_MODEL, messages, tools, tool_choice: "required", n: 2 })).json();
    expect(severalCalls.choices.map((choice: { message: { tool_calls: { id: string }[] } }) => choice.message.tool_calls[0]!.id)).toEqual(["call_abc0", "call_abc1"]);
    expectValid("CreateChatCompletionResponse", severalCalls);
  });

  it("CreateChatCompletionStreamResponse: every chunk, with and without usage, text and tool calls", async () => {
    for (const payload of [
      { model: TEST_MODEL, messages, stream: true },
      { model: TEST_MODEL, messages, stream: true, stream_options: { include_usage: true } },
      { model: TEST_MODEL, messages, stream: true, tools, stream_options: { include_usage: true } },
      { model: TEST_MODEL, messages, stream: true, n: 2, stream_options: { include_usage: true } },
      { model: TEST_MODEL, messages, stream: true, tools, n: 2 },
    ]) {
      const chunks = chunksOf((await post("/v1/chat/completions", payload)).body);
      expect(chunks.length).toBeGreaterThan(2);
      for (const chunk of chunks) expectValid("CreateChatCompletionStreamResponse", chunk);
    }
  });

  it("log probabilities of a remote model, streamed and not", async () => {
    const answer = (await post("/v1/chat/completions", { model: REMOTE_CHAT, messages, logprobs: true, top_logprobs: 2 })).json();
    expectValid("CreateChatCompletionResponse", answer);
    expect(answer.choices[0].logprobs).toEqual({ content: [tokenLogprob("Hi", -0.25, 2), tokenLogprob(" there", -1.5, 2)], refusal: null });
    const chunks = chunksOf((await post("/v1/chat/completions", { model: REMOTE_CHAT, messages, logprobs: true, stream: true })).body) as {
      choices: { logprobs: { content: TokenLogprob[] } | null }[];
    }[];
    for (const chunk of chunks) expectValid("CreateChatCompletionStreamResponse", chunk);
    expect(chunks.flatMap((chunk) => chunk.choices[0]?.logprobs?.content ?? [])).toEqual([tokenLogprob("Hi", -0.25, 0), tokenLogprob(" there", -1.5, 0)]);
  });

  it("CreateCompletionResponse: string and list prompts, one choice and n per prompt", async () => {
    expectValid("CreateCompletionResponse", (await post("/v1/completions", { model: TEST_MODEL, prompt: "Once" })).json());
    const list = (await post("/v1/completions", { model: TEST_MODEL, prompt: ["a", "b", "c"] })).json();
    expect(list.choices).toHaveLength(3);
    expectValid("CreateCompletionResponse", list);
    const several = (await post("/v1/completions", { model: TEST_MODEL, prompt: ["a", "b"], n: 2 })).json();
    expect(several.choices.map((choice: { index: number; text: string }) => [choice.index, choice.text])).toEqual([
      [0, "Hi #0"],
      [1, "Hi #1"],
      [2, "Hi #2"],
      [3, "Hi #3"],
    ]);
    expect(several.usage).toEqual({ prompt_tokens: 7, completion_tokens: 8, total_tokens: 15 });
    expectValid("CreateCompletionResponse", several);
  });

  it("CreateEmbeddingResponse (float)", async () => {
    expectValid("CreateEmbeddingResponse", (await post("/v1/embeddings", { model: TEST_MODEL, input: ["a", "b"] })).json());
  });

  it("ListModelsResponse and Model", async () => {
    expectValid("ListModelsResponse", (await gateway.app.inject({ method: "GET", url: "/v1/models" })).json());
    expectValid("Model", (await gateway.app.inject({ method: "GET", url: `/v1/models/${TEST_MODEL}` })).json());
  });

  it("ErrorResponse", async () => {
    expectValid("ErrorResponse", (await post("/v1/chat/completions", { model: "nope", messages })).json());
    expectValid("ErrorResponse", (await gateway.app.inject({ method: "GET", url: "/nowhere" })).json());
  });
});

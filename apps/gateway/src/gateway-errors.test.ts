/**
 * Bad input: every case answers an OpenAI error object with the right status,
 * `param`, a JSON content type and an x-request-id, and the server keeps
 * serving. Runs through `app.inject()` against the real app, catalog and
 * InProcessDispatcher, with a scripted backend.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { contextLengthExceeded } from "@switchboard/protocol";
import { buildTestGateway, EMBEDDING_OFF_MODEL, REMOTE_CHAT, remoteChatModel, TEST_MODEL, testConfig, type TestGateway } from "../test/gateway-harness.js";
import { textAnswer } from "../test/scripted-backend.js";

let gateway: TestGateway;
beforeAll(async () => {
  const config = testConfig();
  gateway = await buildTestGateway({
    config: { ...config, models: [...config.models, remoteChatModel] },
    script: (job) =>
      job.kind === "chat" && job.messages.some((message) => message.content === "too long")
        ? [{ type: "error", error: contextLengthExceeded(5000, 2048).toPayload() }]
        : textAnswer(job, ["ok"]),
  });
});
afterAll(() => gateway.close());

const chat = (body: unknown, extra: Partial<InjectOptions> = {}) => gateway.app.inject({ method: "POST", url: "/v1/chat/completions", payload: body as object, ...extra });
const user = [{ role: "user", content: "hi" }];

/** Asserts the OpenAI error shape and returns its `error` member. */
function openAIError(response: LightMyRequestResponse, status: number) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers["content-type"]).toMatch(/^application\/json/);
  expect(response.headers["x-request-id"]).toBeTruthy();
  const body = response.json();
  expect(Object.keys(body)).toEqual(["error"]);
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(typeof body.error.message).toBe("string");
  expect(body.error.message).not.toMatch(/\bat .*\.(ts|js):\d+|node_modules|\/work\//);
  return body.error as { message: string; type: string; param: string | null; code: string | null };
}

describe("bad input", () => {
  it("malformed JSON → 400 invalid_json", async () => {
    const error = openAIError(await chat('{"model": "tiny", "messages": [', { headers: { "content-type": "application/json" } }), 400);
    expect(error).toMatchObject({ type: "invalid_request_error", code: "invalid_json" });
    expect(error.message).toMatch(/JSON/);
  });

  it("empty body → 400", async () => {
    const error = openAIError(await chat("", { headers: { "content-type": "application/json" } }), 400);
    expect(error.message).toMatch(/empty/);
  });

  it("wrong content type → 415 that says to send JSON", async () => {
    const error = openAIError(await chat("model=tiny", { headers: { "content-type": "application/x-www-form-urlencoded" } }), 415);
    expect(error.message).toMatch(/application\/json/);
  });

  it("wrong type of a known field → 400 naming the field", async () => {
    const error = openAIError(await chat({ model: TEST_MODEL, messages: user, temperature: "0.5" }), 400);
    expect(error).toMatchObject({ type: "invalid_request_error", param: "temperature" });
    expect(error.message).toMatch(/expected a number/);

    const nested = openAIError(await chat({ model: TEST_MODEL, messages: [{ role: "user", content: 42 }] }), 400);
    expect(nested.param).toBe("messages[0].content");

    const model = openAIError(await chat({ model: 7, messages: user }), 400);
    expect(model.param).toBe("model");

    const stream = openAIError(await chat({ model: TEST_MODEL, messages: user, stream: "yes" }), 400);
    expect(stream.param).toBe("stream");
  });

  it("no coercion: a numeric string for max_tokens is a 400, not 12", async () => {
    const error = openAIError(await chat({ model: TEST_MODEL, messages: user, max_tokens: "12" }), 400);
    expect(error.param).toBe("max_tokens");
  });

  it("missing required fields → 400 naming them", async () => {
    expect(openAIError(await chat({ messages: user }), 400)).toMatchObject({ param: "model", message: "Missing required parameter: 'model'." });
    expect(openAIError(await chat({ model: TEST_MODEL }), 400).param).toBe("messages");
    expect(openAIError(await chat({ model: TEST_MODEL, messages: [{ content: "x" }] }), 400).param).toBe("messages[0].role");
    expect(openAIError(await chat({ model: TEST_MODEL, messages: [{ role: "tool", content: "x" }] }), 400).param).toBe("messages[0].tool_call_id");
  });

  it("empty messages → 400", async () => {
    const error = openAIError(await chat({ model: TEST_MODEL, messages: [] }), 400);
    expect(error.param).toBe("messages");
    expect(error.message).toMatch(/empty array/);
  });

  it("unknown role → 400 listing the roles", async () => {
    const error = openAIError(await chat({ model: TEST_MODEL, messages: [...user, { role: "wizard", content: "x" }] }), 400);
    expect(error.param).toBe("messages[1].role");
    expect(error.message).toMatch(/'wizard'.*'system'.*'user'.*'assistant'.*'tool'/);
  });

  it("out-of-range numbers → 400 with the bound", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ temperature: 2.5 }, "temperature"],
      [{ temperature: -0.1 }, "temperature"],
      [{ top_p: 1.5 }, "top_p"],
      [{ presence_penalty: -3 }, "presence_penalty"],
      [{ frequency_penalty: 2.1 }, "frequency_penalty"],
      [{ max_tokens: 0 }, "max_tokens"],
      [{ max_completion_tokens: -5 }, "max_completion_tokens"],
      [{ stop: ["a", "b", "c", "d", "e"] }, "stop"],
    ];
    for (const [fields, param] of cases) {
      const error = openAIError(await chat({ model: TEST_MODEL, messages: user, ...fields }), 400);
      expect(error.param, JSON.stringify(fields)).toBe(param);
    }
    const temperature = openAIError(await chat({ model: TEST_MODEL, messages: user, temperature: 3 }), 400);
    expect(temperature.message).toContain("<= 2");
  });

  it("n above 8 on a local model → 400 on n with the bound", async () => {
    const error = openAIError(await chat({ model: TEST_MODEL, messages: user, n: 9 }), 400);
    expect(error.param).toBe("n");
    expect(error.message).toMatch(/from 1 to 8/);
    const completion = openAIError(await gateway.app.inject({ method: "POST", url: "/v1/completions", payload: { model: TEST_MODEL, prompt: "a", n: 9 } }), 400);
    expect(completion.param).toBe("n");
    expect(openAIError(await chat({ model: TEST_MODEL, messages: user, n: 0 }), 400).param).toBe("n");
  });

  it("n on a remote model: up to 8 choices (a call each) on both routes → else 400 on n", async () => {
    expect((await chat({ model: REMOTE_CHAT, messages: user, n: 8 })).statusCode).toBe(200);
    const tooMany = openAIError(await chat({ model: REMOTE_CHAT, messages: user, n: 9 }), 400);
    expect(tooMany.param).toBe("n");
    expect(tooMany.message).toMatch(/from 1 to 8 \(got 9\): each choice is one call to the remote model/);
    const completions = (payload: Record<string, unknown>) => gateway.app.inject({ method: "POST", url: "/v1/completions", payload: { model: REMOTE_CHAT, prompt: "a", ...payload } });
    expect((await completions({ n: 2 })).statusCode).toBe(200);
    expect(openAIError(await completions({ n: 9 }), 400).param).toBe("n");
    // n: 1 is fine everywhere: the route gets as far as the engine.
    expect((await chat({ model: REMOTE_CHAT, messages: user, n: 1 })).statusCode).toBe(200);
  });

  it("a logit_bias with a bad key, a bad value or too many entries → 400 naming the entry, on both routes", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ "50256": 101 }, "logit_bias.50256", /from -100 to 100/],
      [{ "7": -100.5 }, "logit_bias.7", /from -100 to 100/],
      [{ "7": "5" }, "logit_bias.7", /expected a number/],
      [{ "7": null }, "logit_bias.7", /expected a number/],
      [{ hello: 5 }, "logit_bias.hello", /non-negative integers/],
      [{ "-3": 5 }, "logit_bias.-3", /non-negative integers/],
      [{ "1.5": 5 }, "logit_bias.1.5", /non-negative integers/],
      [{ "007": 5 }, "logit_bias.007", /non-negative integers/],
      [Object.fromEntries(Array.from({ length: 301 }, (_, id) => [id, 1])), "logit_bias", /at most 300/],
    ];
    for (const [logit_bias, param, message] of cases) {
      const error = openAIError(await chat({ model: TEST_MODEL, messages: user, logit_bias }), 400);
      expect(error, JSON.stringify(logit_bias).slice(0, 40)).toMatchObject({ type: "invalid_request_error", param });
      expect(error.message).toMatch(message);
      const completion = openAIError(await gateway.app.inject({ method: "POST", url: "/v1/completions", payload: { model: TEST_MODEL, prompt: "a", logit_bias } }), 400);
      expect(completion.param).toBe(param);
    }
    // The bounds themselves, OpenAI's limit of 300 entries, and an empty map are accepted.
    const edges = Object.fromEntries(Array.from({ length: 300 }, (_, id) => [id, id % 2 === 0 ? -100 : 100]));
    for (const logit_bias of [edges, {}, null]) expect((await chat({ model: TEST_MODEL, messages: user, logit_bias })).statusCode).toBe(200);
  });

  it("logit_bias on a remote model → 400 on logit_bias: its token ids are not ours", async () => {
    const remote = openAIError(await chat({ model: REMOTE_CHAT, messages: user, logit_bias: { "15": 10 } }), 400);
    expect(remote.param).toBe("logit_bias");
    expect(remote.message).toMatch(/does not take 'logit_bias'/);
    const remoteCompletion = openAIError(
      await gateway.app.inject({ method: "POST", url: "/v1/completions", payload: { model: REMOTE_CHAT, prompt: "a", logit_bias: { "15": 10 } } }),
      400,
    );
    expect(remoteCompletion.param).toBe("logit_bias");
    // An empty map asks for nothing: the request goes on.
    expect((await chat({ model: REMOTE_CHAT, messages: user, logit_bias: {} })).statusCode).toBe(200);
  });

  it("logprobs on a local model, and top_logprobs without logprobs → 400 naming the parameter", async () => {
    const local = openAIError(await chat({ model: TEST_MODEL, messages: user, logprobs: true }), 400);
    expect(local).toMatchObject({ type: "invalid_request_error", param: "logprobs" });
    expect(local.message).toMatch(/local model.*choose a remote model/);
    const alone = openAIError(await chat({ model: REMOTE_CHAT, messages: user, top_logprobs: 2 }), 400);
    expect(alone.param).toBe("top_logprobs");
    expect(alone.message).toMatch(/needs 'logprobs': true/);
    expect(openAIError(await chat({ model: REMOTE_CHAT, messages: user, logprobs: true, top_logprobs: 21 }), 400).param).toBe("top_logprobs");
    // false (and top_logprobs 0) ask for nothing, on any model.
    expect((await chat({ model: TEST_MODEL, messages: user, logprobs: false, top_logprobs: 0 })).statusCode).toBe(200);
  });

  it("non-text content parts → 400 naming the part", async () => {
    const error = openAIError(
      await chat({ model: TEST_MODEL, messages: [{ role: "user", content: [{ type: "text", text: "look" }, { type: "image_url", image_url: { url: "http://x" } }] }] }),
      400,
    );
    expect(error.param).toBe("messages[0].content[1].type");
    expect(error.message).toMatch(/image_url/);
  });

  it("a tool_choice naming an undeclared function → 400", async () => {
    const tools = [{ type: "function", function: { name: "known", parameters: { type: "object" } } }];
    const error = openAIError(await chat({ model: TEST_MODEL, messages: user, tools, tool_choice: { type: "function", function: { name: "other" } } }), 400);
    expect(error.param).toBe("tool_choice.function.name");
    expect(openAIError(await chat({ model: TEST_MODEL, messages: user, tool_choice: "required" }), 400).param).toBe("tool_choice");
  });

  it("unknown top-level fields are ignored", async () => {
    const response = await chat({ model: TEST_MODEL, messages: user, some_future_field: { x: 1 }, store: true, metadata: { a: "b" } });
    expect(response.statusCode).toBe(200);
  });

  it("unknown model → 404 model_not_found, also with stream: true (no SSE)", async () => {
    for (const stream of [false, true]) {
      const response = await chat({ model: "no-such-model", messages: user, stream });
      const error = openAIError(response, 404);
      expect(error).toMatchObject({ code: "model_not_found", param: "model" });
      expect(response.headers["content-type"]).not.toMatch(/event-stream/);
    }
  });

  it("model ids are catalog keys, never paths", async () => {
    const error = openAIError(await chat({ model: "../../etc/passwd", messages: user }), 404);
    expect(error.code).toBe("model_not_found");
  });

  it("prompt longer than the context → 400 context_length_exceeded before any SSE", async () => {
    for (const stream of [false, true]) {
      const response = await chat({ model: TEST_MODEL, messages: [{ role: "user", content: "too long" }], stream });
      const error = openAIError(response, 400);
      expect(error.code).toBe("context_length_exceeded");
      expect(error.message).toMatch(/maximum context length/);
    }
  });

  it("embeddings on a model without embeddings → 400", async () => {
    const response = await gateway.app.inject({ method: "POST", url: "/v1/embeddings", payload: { model: EMBEDDING_OFF_MODEL, input: "x" } });
    expect(openAIError(response, 400).param).toBe("model");
  });

  it("token-array inputs → 400 that says to send text", async () => {
    const embeddings = await gateway.app.inject({ method: "POST", url: "/v1/embeddings", payload: { model: TEST_MODEL, input: [1, 2, 3] } });
    expect(openAIError(embeddings, 400)).toMatchObject({ param: "input" });
    const completions = await gateway.app.inject({ method: "POST", url: "/v1/completions", payload: { model: TEST_MODEL, prompt: [[1, 2]] } });
    expect(openAIError(completions, 400).message).toMatch(/as text/);
  });

  it("unknown route → 404 in the OpenAI shape", async () => {
    for (const [method, url] of [
      ["GET", "/v1/nothing"],
      ["GET", "/v1/chat/completions"],
      ["DELETE", "/v1/models"],
      ["GET", "/index.php"],
    ] as const) {
      const error = openAIError(await gateway.app.inject({ method, url }), 404);
      expect(error.code).toBe("unknown_url");
    }
  });

  it("the server keeps serving after all of the above", async () => {
    const response = await chat({ model: "tiny", messages: user });
    expect(response.statusCode).toBe(200);
    expect(response.json().choices[0].message.content).toBe("ok");
  });
});

describe("api keys", () => {
  let secured: TestGateway;
  beforeAll(async () => {
    const { testConfig } = await import("../test/gateway-harness.js");
    secured = await buildTestGateway({ config: testConfig({ apiKeys: ["sk-one", "sk-two"] }) });
  });
  afterAll(() => secured.close());

  it("missing or bad key → 401 invalid_api_key on every /v1 route", async () => {
    for (const [method, url] of [
      ["GET", "/v1/models"],
      ["GET", `/v1/models/${TEST_MODEL}`],
      ["POST", "/v1/chat/completions"],
      ["POST", "/v1/completions"],
      ["POST", "/v1/embeddings"],
    ] as const) {
      for (const authorization of [undefined, "Bearer sk-wrong", "sk-one", "Basic c2stb25l", "Bearer "]) {
        const headers = authorization === undefined ? {} : { authorization };
        const error = openAIError(await secured.app.inject({ method, url, headers, payload: method === "POST" ? {} : undefined }), 401);
        expect(error).toMatchObject({ type: "authentication_error", code: "invalid_api_key" });
      }
    }
  });

  it("a right key passes (either key, any case of 'Bearer')", async () => {
    for (const authorization of ["Bearer sk-one", "bearer sk-two"]) {
      const response = await secured.app.inject({ method: "GET", url: "/v1/models", headers: { authorization } });
      expect(response.statusCode).toBe(200);
    }
  });

  it("/health, /ready, /metrics, /docs and /openapi.json stay open", async () => {
    for (const url of ["/health", "/ready", "/metrics", "/openapi.json", "/docs"]) {
      const response = await secured.app.inject({ method: "GET", url });
      expect(response.statusCode, url).toBeLessThan(400);
    }
  });

  it("/metrics needs a key when metricsRequireKey is set", async () => {
    const { testConfig } = await import("../test/gateway-harness.js");
    const strict = await buildTestGateway({ config: testConfig({ apiKeys: ["sk-one"], server: { metricsRequireKey: true } }) });
    try {
      openAIError(await strict.app.inject({ method: "GET", url: "/metrics" }), 401);
      const allowed = await strict.app.inject({ method: "GET", url: "/metrics", headers: { authorization: "Bearer sk-one" } });
      expect(allowed.statusCode).toBe(200);
      expect((await strict.app.inject({ method: "GET", url: "/health" })).statusCode).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

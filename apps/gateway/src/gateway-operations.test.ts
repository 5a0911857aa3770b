/**
 * Operations surface: /health, /ready with per-model states, /metrics with
 * request counts labelled by route template, the OpenAPI document (valid
 * OpenAPI 3.1, a path and schemas for every route), Swagger UI, CORS, and how
 * requests become jobs (aliases, defaults, caps, normalisation).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Validator } from "@seriousme/openapi-schema-validator";
import type { ChatJob, CompletionJob, EmbeddingJob, ModelState } from "@switchboard/protocol";
import { buildTestGateway, testConfig, testModel, TEST_MODEL, type TestGateway } from "../test/gateway-harness.js";
import { ScriptedBackend, textAnswer } from "../test/scripted-backend.js";

describe("/health and /ready", () => {
  let states: ModelState[] = [];
  let transportReady = true;
  let gateway: TestGateway;
  beforeAll(async () => {
    const config = testConfig({ models: [testModel(), testModel({ id: "second", aliases: [] }), testModel({ id: "orphan", aliases: [] })] });
    const backend = new ScriptedBackend({ models: [TEST_MODEL, "second"], script: (job) => textAnswer(job, ["x"]), states: () => states });
    gateway = await buildTestGateway({ config, backend, dispatcherReady: () => transportReady });
  });
  afterAll(() => gateway.close());

  it("/health is 200 whatever the models do", async () => {
    states = [{ id: TEST_MODEL, state: "failed", error: "bad file" }];
    const response = await gateway.app.inject({ method: "GET", url: "/health" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: "ok" });
  });

  it("/ready is 503 listing what is downloading, loading, failed or served by nobody", async () => {
    states = [
      { id: TEST_MODEL, state: "downloading", progress: 0.25 },
      { id: "second", state: "loading" },
    ];
    let response = await gateway.app.inject({ method: "GET", url: "/ready" });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({
      status: "not_ready",
      transport: "ready",
      models: [
        { id: TEST_MODEL, state: "downloading", progress: 0.25 },
        { id: "second", state: "loading" },
        { id: "orphan", state: "unavailable" },
      ],
    });
    states = [{ id: TEST_MODEL, state: "failed", error: "The file is not a GGUF." }];
    response = await gateway.app.inject({ method: "GET", url: "/ready" });
    expect(response.statusCode).toBe(503);
    expect(response.json().models[0]).toEqual({ id: TEST_MODEL, state: "failed", error: "The file is not a GGUF." });
  });

  it("/ready is 200 when every model is ready and the transport is up, 503 when the transport is down", async () => {
    states = ["second", TEST_MODEL, "orphan"].map((id) => ({ id, state: "ready" as const }));
    let response = await gateway.app.inject({ method: "GET", url: "/ready" });
    expect(response.statusCode).toBe(200);
    expect(response.json().status).toBe("ready");
    transportReady = false;
    response = await gateway.app.inject({ method: "GET", url: "/ready" });
    expect(response.statusCode).toBe(503);
    expect(response.json().transport).toBe("unavailable");
    transportReady = true;
  });
});

describe("/metrics", () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await buildTestGateway();
  });
  afterAll(() => gateway.close());

  it("serves prom-client defaults and counts requests by route template, method, status and model", async () => {
    await gateway.app.inject({ method: "GET", url: `/v1/models/${TEST_MODEL}` });
    await gateway.app.inject({ method: "GET", url: "/v1/models/tiny" });
    await gateway.app.inject({ method: "GET", url: "/v1/models/missing" });
    for (const path of ["/a", "/b/c", "/wp-admin.php"]) await gateway.app.inject({ method: "GET", url: path });
    await gateway.app.inject({ method: "POST", url: "/v1/chat/completions", payload: { model: TEST_MODEL, messages: [{ role: "user", content: "x" }] } });

    const response = await gateway.app.inject({ method: "GET", url: "/metrics" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/plain/);
    const text = response.body;
    expect(text).toContain("process_cpu_user_seconds_total");
    expect(text).toContain("nodejs_eventloop_lag_seconds");
    expect(text).toContain('switchboard_http_requests_total{route="/v1/models/*",method="GET",status="200",model="none"} 2');
    expect(text).toContain('switchboard_http_requests_total{route="/v1/models/*",method="GET",status="404",model="none"} 1');
    expect(text).toContain('switchboard_http_requests_total{route="unmatched",method="GET",status="404",model="none"} 3');
    expect(text).toContain(`switchboard_http_requests_total{route="/v1/chat/completions",method="POST",status="200",model="${TEST_MODEL}"} 1`);
    // One observation, whatever it took on a busy machine.
    expect(text).toMatch(/switchboard_http_request_duration_seconds_bucket\{le="\+Inf",route="\/v1\/chat\/completions",method="POST",status="200",model="[^"]+"\} 1/);
    expect(text).not.toContain("wp-admin");
  });

  it("labels HEAD requests and requests refused by the key check with their route template", async () => {
    const keyed = await buildTestGateway({ config: testConfig({ apiKeys: ["sk-1"] }) });
    try {
      const bearer = { authorization: "Bearer sk-1" };
      expect((await keyed.app.inject({ method: "GET", url: `/v1/models/${TEST_MODEL}`, headers: bearer })).statusCode).toBe(200);
      expect((await keyed.app.inject({ method: "HEAD", url: `/v1/models/${TEST_MODEL}`, headers: bearer })).statusCode).toBe(200);
      expect((await keyed.app.inject({ method: "GET", url: `/v1/models/${TEST_MODEL}` })).statusCode).toBe(401);
      expect((await keyed.app.inject({ method: "GET", url: "/v1/nothing-here" })).statusCode).toBe(404);
      const text = (await keyed.app.inject({ method: "GET", url: "/metrics" })).body;
      expect(text).toContain('switchboard_http_requests_total{route="/v1/models/*",method="GET",status="200",model="none"} 1');
      expect(text).toContain('switchboard_http_requests_total{route="/v1/models/*",method="HEAD",status="200",model="none"} 1');
      expect(text).toContain('switchboard_http_requests_total{route="/v1/models/*",method="GET",status="401",model="none"} 1');
      expect(text).toContain('switchboard_http_requests_total{route="unmatched",method="GET",status="404",model="none"} 1');
    } finally {
      await keyed.close();
    }
  });
});

describe("metric times, from the request's arrival", () => {
  it("time to first token, job duration and request duration follow when the output came", async () => {
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const backend = new ScriptedBackend({
      models: [TEST_MODEL],
      script: async function* (job) {
        yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 3 };
        await sleep(60);
        yield { type: "text-delta", index: 0, text: "slow" };
        await sleep(60);
        yield { type: "text-delta", index: 0, text: " answer" };
        yield { type: "finish", index: 0, finishReason: "stop", completionTokens: 2 };
      },
    });
    const gateway = await buildTestGateway({ backend });
    try {
      for (const stream of [false, true]) {
        const response = await gateway.app.inject({ method: "POST", url: "/v1/chat/completions", payload: { model: TEST_MODEL, stream, messages: [{ role: "user", content: "x" }] } });
        expect(response.statusCode).toBe(200);
      }
      const text = (await gateway.app.inject({ method: "GET", url: "/metrics" })).body;
      const sum = (name: string) => Number(new RegExp(`^${name}_sum\\{[^}]*model="${TEST_MODEL}"[^}]*\\} (\\S+)$`, "m").exec(text)?.[1]);
      const ttft = sum("switchboard_gateway_time_to_first_token_seconds");
      const perToken = sum("switchboard_gateway_time_per_output_token_seconds");
      const job = sum("switchboard_gateway_job_duration_seconds");
      const http = sum("switchboard_http_request_duration_seconds");
      // Two requests: each waited 60 ms for its first token and 60 more for its second.
      expect(ttft).toBeGreaterThanOrEqual(2 * 0.055);
      expect(perToken).toBeGreaterThanOrEqual(2 * 0.055);
      expect(job).toBeGreaterThanOrEqual(ttft + perToken - 0.001);
      expect(http).toBeGreaterThanOrEqual(job - 0.001);
      expect(ttft).toBeLessThan(http);
      // Not from some earlier zero: a few seconds at most on a slow machine.
      expect(http).toBeLessThan(2 * 5);
    } finally {
      await gateway.close();
    }
  });
});

describe("OpenAPI document and docs", () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await buildTestGateway();
  });
  afterAll(() => gateway.close());

  it("/openapi.json is a valid OpenAPI 3.1 document", async () => {
    const response = await gateway.app.inject({ method: "GET", url: "/openapi.json" });
    expect(response.statusCode).toBe(200);
    const document = response.json();
    expect(document.openapi).toBe("3.1.0");
    const result = await new Validator().validate(document);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("documents every route with its request and response schemas", async () => {
    const document = (await gateway.app.inject({ method: "GET", url: "/openapi.json" })).json();
    const operations: [string, string, string | undefined, string][] = [
      ["/v1/models", "get", undefined, "ListModelsResponse"],
      ["/v1/models/{model}", "get", undefined, "Model"],
      ["/v1/chat/completions", "post", "CreateChatCompletionRequest", "CreateChatCompletionResponse"],
      ["/v1/completions", "post", "CreateCompletionRequest", "CreateCompletionResponse"],
      ["/v1/embeddings", "post", "CreateEmbeddingRequest", "CreateEmbeddingResponse"],
      ["/health", "get", undefined, ""],
      ["/ready", "get", undefined, "Readiness"],
      ["/metrics", "get", undefined, ""],
    ];
    for (const [path, method, requestSchema, responseSchema] of operations) {
      const operation = document.paths[path]?.[method];
      expect(operation, `${method} ${path}`).toBeDefined();
      const text = JSON.stringify(operation);
      if (requestSchema) expect(text).toContain(`#/components/schemas/${requestSchema}`);
      if (responseSchema) expect(text).toContain(`#/components/schemas/${responseSchema}`);
      if (path.startsWith("/v1")) {
        expect(operation.security).toEqual([{ bearerAuth: [] }]);
        expect(text).toContain("#/components/schemas/ErrorResponse");
      }
    }
    expect(document.paths["/v1/models/{model}"].get.parameters).toEqual([expect.objectContaining({ name: "model", in: "path", required: true })]);
    expect(JSON.stringify(document.paths["/v1/chat/completions"].post.responses["200"].content)).toContain("text/event-stream");
    for (const name of ["CreateChatCompletionRequest", "CreateChatCompletionStreamResponse", "CompletionStreamChunk", "ErrorResponse"]) {
      expect(document.components.schemas[name], name).toBeDefined();
    }
  });

  it("serves Swagger UI at /docs", async () => {
    const response = await gateway.app.inject({ method: "GET", url: "/docs/" });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/text\/html/);
    expect(response.body).toMatch(/swagger/i);
  });
});

describe("CORS", () => {
  it("is off without origins and answers allowed origins (preflight without a key) when configured", async () => {
    const closed = await buildTestGateway();
    const open = await buildTestGateway({ config: testConfig({ apiKeys: ["sk-1"], server: { corsOrigins: ["https://app.example"] } }) });
    try {
      const none = await closed.app.inject({ method: "GET", url: "/health", headers: { origin: "https://app.example" } });
      expect(none.headers["access-control-allow-origin"]).toBeUndefined();

      const preflight = await open.app.inject({
        method: "OPTIONS",
        url: "/v1/chat/completions",
        headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
      });
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers["access-control-allow-origin"]).toBe("https://app.example");

      const denied = await open.app.inject({ method: "GET", url: "/v1/models", headers: { origin: "https://app.example" } });
      expect(denied.statusCode).toBe(401);
      expect(denied.headers["access-control-allow-origin"]).toBe("https://app.example");
      expect(denied.headers["access-control-expose-headers"]).toContain("x-request-id");

      const other = await open.app.inject({ method: "GET", url: "/health", headers: { origin: "https://evil.example" } });
      expect(other.headers["access-control-allow-origin"]).toBeUndefined();
    } finally {
      await closed.close();
      await open.close();
    }
  });
});

describe("requests become jobs", () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await buildTestGateway();
  });
  afterAll(() => gateway.close());
  const lastJob = <T>() => gateway.backend.jobs.at(-1) as T;

  it("resolves aliases, defaults and caps max_tokens, merges sampling defaults, normalises messages", async () => {
    await gateway.app.inject({
      method: "POST",
      url: "/v1/chat/completions",
      payload: {
        model: "tiny",
        messages: [
          { role: "developer", content: "Be brief." },
          { role: "user", content: [{ type: "text", text: "Hello" }, { type: "text", text: "world" }], name: "ann" },
          { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] },
          { role: "tool", tool_call_id: "c1", content: "42" },
        ],
        top_p: 0.9,
        seed: 7,
        stop: "END",
      },
    });
    const job = lastJob<ChatJob>();
    expect(job).toMatchObject({
      kind: "chat",
      model: TEST_MODEL,
      maxTokens: 64,
      sampling: { temperature: 0.7, topK: 40, topP: 0.9, seed: 7 },
      stop: ["END"],
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hello\nworld", name: "ann" },
        { role: "assistant", content: "", toolCalls: [{ id: "c1", name: "f", arguments: "{}" }] },
        { role: "tool", content: "42", toolCallId: "c1" },
      ],
    });
    expect(job.responseFormat).toBeUndefined();
    expect(job.tools).toBeUndefined();
  });

  it("max_completion_tokens wins over max_tokens and both are capped at the model's maximum", async () => {
    const send = (fields: object) =>
      gateway.app.inject({ method: "POST", url: "/v1/chat/completions", payload: { model: TEST_MODEL, messages: [{ role: "user", content: "x" }], ...fields } });
    await send({ max_tokens: 10, max_completion_tokens: 20 });
    expect(lastJob<ChatJob>().maxTokens).toBe(20);
    await send({ max_tokens: 100_000 });
    expect(lastJob<ChatJob>().maxTokens).toBe(256);
    await send({ temperature: 0 });
    expect(lastJob<ChatJob>().sampling.temperature).toBe(0);
  });

  it("carries logit_bias into the job's sampling; an empty map as none", async () => {
    const send = (logit_bias: unknown) =>
      gateway.app.inject({ method: "POST", url: "/v1/completions", payload: { model: TEST_MODEL, prompt: "x", logit_bias } });
    expect((await send({ "12": -100, "0": 2.5 })).statusCode).toBe(200);
    expect(lastJob<CompletionJob>().sampling.logitBias).toEqual({ "12": -100, "0": 2.5 });
    expect((await send({})).statusCode).toBe(200);
    expect(lastJob<CompletionJob>().sampling).not.toHaveProperty("logitBias");
  });

  it("carries tools, tool_choice and response_format", async () => {
    const schema = { $schema: "http://json-schema.org/draft-07/schema#", type: "object", properties: { n: { type: "integer" } }, required: ["n"] };
    await gateway.app.inject({
      method: "POST",
      url: "/v1/chat/completions",
      payload: {
        model: TEST_MODEL,
        messages: [{ role: "user", content: "x" }],
        tools: [{ type: "function", function: { name: "lookup", description: "Find", parameters: { type: "object" } } }],
        tool_choice: { type: "function", function: { name: "lookup" } },
        response_format: { type: "json_schema", json_schema: { name: "answer", schema, strict: true } },
      },
    });
    expect(lastJob<ChatJob>()).toMatchObject({
      tools: [{ name: "lookup", description: "Find", parameters: { type: "object" } }],
      toolChoice: { name: "lookup" },
      responseFormat: { type: "json_schema", name: "answer", schema, strict: true },
    });
  });

  it("completions: one prompt per choice; embeddings: list input", async () => {
    await gateway.app.inject({ method: "POST", url: "/v1/completions", payload: { model: TEST_MODEL, prompt: ["a", "b"], max_tokens: 5 } });
    expect(lastJob<CompletionJob>()).toMatchObject({ kind: "completion", prompts: ["a", "b"], maxTokens: 5 });
    gateway.backend.script = (job) => [
      { type: "accepted", jobId: job.id, model: job.model, promptTokens: 2 },
      { type: "embeddings", vectors: [[0.5, 0.25]] },
    ];
    const response = await gateway.app.inject({ method: "POST", url: "/v1/embeddings", payload: { model: TEST_MODEL, input: "a", encoding_format: "base64" } });
    expect(lastJob<EmbeddingJob>()).toMatchObject({ kind: "embedding", input: ["a"] });
    const encoded = Buffer.from(response.json().data[0].embedding, "base64");
    expect([encoded.readFloatLE(0), encoded.readFloatLE(4)]).toEqual([0.5, 0.25]);
    const wrongDimensions = await gateway.app.inject({ method: "POST", url: "/v1/embeddings", payload: { model: TEST_MODEL, input: "a", dimensions: 3 } });
    expect(wrongDimensions.statusCode).toBe(400);
    expect(wrongDimensions.json().error.param).toBe("dimensions");
  });
});

describe("logging", () => {
  async function logsOf(level: string) {
    const lines: string[] = [];
    const gateway = await buildTestGateway({
      config: testConfig({ apiKeys: ["sk-very-secret-key"], server: { logLevel: level } }),
      logStream: { write: (line) => lines.push(line) },
    });
    try {
      await gateway.app.inject({
        method: "POST",
        url: "/v1/chat/completions",
        headers: { authorization: "Bearer sk-very-secret-key", "x-request-id": "log-test-1" },
        payload: { model: TEST_MODEL, messages: [{ role: "user", content: "my private prompt" }] },
      });
      await gateway.app.inject({ method: "GET", url: "/v1/models", headers: { authorization: "Bearer sk-wrong-key", "x-request-id": "log-test-2" } });
    } finally {
      await gateway.close();
    }
    return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it("tags every request line with its request id, never prints keys, and prints prompts only at debug", async () => {
    const info = await logsOf("info");
    const debug = await logsOf("debug");
    for (const lines of [info, debug]) {
      const requestLines = lines.filter((line) => line.req !== undefined || line.res !== undefined || line.requestId !== undefined);
      expect(requestLines.length).toBeGreaterThanOrEqual(4);
      for (const line of requestLines) expect(["log-test-1", "log-test-2"]).toContain(line.requestId);
      expect(JSON.stringify(lines)).not.toContain("very-secret");
      expect(JSON.stringify(lines)).not.toContain("wrong-key");
    }
    expect(JSON.stringify(info)).not.toContain("my private prompt");
    expect(JSON.stringify(debug)).toContain("my private prompt");
  });
});

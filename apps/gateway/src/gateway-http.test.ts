/**
 * Behaviour that needs a real socket: SSE framing and headers, errors before
 * and after the stream opens, client disconnects aborting the job, a 413 the
 * client can read after a large upload, and x-request-id on every response.
 * A scripted backend behind the real InProcessDispatcher stands in for the
 * engine.
 */
import { request as httpRequest, Agent, type IncomingMessage } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import { modelUnavailable, rateLimited, type Job, type JobEvent } from "@switchboard/protocol";
import { buildTestGateway, testConfig, TEST_MODEL, type TestGateway } from "../test/gateway-harness.js";
import { aborted, textAnswer, type Script } from "../test/scripted-backend.js";

/** What the scripted backend does, chosen by the first user message. */
const script: Script = async function* (job: Job, context): AsyncIterable<JobEvent> {
  const prompt = job.kind === "chat" ? (job.messages.at(-1)?.content ?? "") : job.kind === "completion" ? job.prompts[0]! : "";
  switch (prompt) {
    case "busy":
      yield { type: "error", error: rateLimited("All sequences are busy and the waiting line is full.", 2).toPayload() };
      return;
    case "loading":
      yield { type: "error", error: modelUnavailable(job.model, "The model is still loading.", 7.2).toPayload() };
      return;
    case "fail midway":
      yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 3 };
      yield { type: "text-delta", index: 0, text: "partial" };
      yield { type: "error", error: { status: 500, type: "server_error", code: "engine_failed", param: null, message: "The engine failed." } };
      return;
    case "hang":
      // Streams one delta, then waits for the client to go away.
      yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 3 };
      yield { type: "text-delta", index: 0, text: "first" };
      await aborted(context.signal);
      return;
    case "hang silently":
      yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 3 };
      await aborted(context.signal);
      return;
    case "many":
      yield* textAnswer(job, Array.from({ length: 2000 }, (_, index) => `token-${index} `.repeat(20)));
      return;
    default:
      yield* textAnswer(job, ["Hello", " there"]);
  }
};

let gateway: TestGateway;
let baseURL: string;
beforeAll(async () => {
  gateway = await buildTestGateway({ script, config: testConfig({ server: { bodyLimitBytes: 1024 * 1024 } }) });
  baseURL = await gateway.app.listen({ port: 0, host: "127.0.0.1" });
});
afterAll(() => gateway.close());

const chatBody = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: TEST_MODEL, messages: [{ role: "user", content }], ...extra });

async function post(path: string, body: string, headers: Record<string, string> = {}) {
  return fetch(baseURL + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

/** The `data:` payloads of an SSE body, asserting the framing on the way. */
function dataFrames(text: string): string[] {
  expect(text.endsWith("\n\n")).toBe(true);
  const frames = text.slice(0, -2).split("\n\n");
  for (const frame of frames) expect(frame.startsWith("data: ")).toBe(true);
  return frames.map((frame) => frame.slice("data: ".length));
}

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("server-sent events", () => {
  it("frames chunks as data events, role first, finish, usage, [DONE], with SSE headers", async () => {
    const response = await post("/v1/chat/completions", chatBody("hi", { stream: true, stream_options: { include_usage: true } }), { "x-request-id": "sse-test-1" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(response.headers.get("cache-control")).toBe("no-cache");
    expect(response.headers.get("x-request-id")).toBe("sse-test-1");
    const frames = dataFrames(await response.text());
    expect(frames.at(-1)).toBe("[DONE]");
    const chunks = frames.slice(0, -1).map((frame) => JSON.parse(frame));
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? null)).toEqual(["", "Hello", " there", null, null]);
    expect(chunks[3].choices[0].finish_reason).toBe("stop");
    expect(chunks[4]).toMatchObject({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } });
    expect(new Set(chunks.map((chunk) => chunk.id)).size).toBe(1);
  });

  it("streams text completions the same way", async () => {
    const response = await post("/v1/completions", JSON.stringify({ model: TEST_MODEL, prompt: ["a", "b"], stream: true }));
    const frames = dataFrames(await response.text());
    expect(frames.at(-1)).toBe("[DONE]");
    const chunks = frames.slice(0, -1).map((frame) => JSON.parse(frame));
    expect(chunks.every((chunk) => chunk.object === "text_completion")).toBe(true);
    expect(chunks.filter((chunk) => chunk.choices[0].finish_reason === "stop").map((chunk) => chunk.choices[0].index)).toEqual([0, 1]);
  });

  it("an error before the stream opens is a plain HTTP error with Retry-After (429 and 503)", async () => {
    for (const [prompt, status, retryAfter] of [
      ["busy", 429, "2"],
      ["loading", 503, "8"],
    ] as const) {
      for (const stream of [true, false]) {
        const response = await post("/v1/chat/completions", chatBody(prompt, { stream }));
        expect(response.status).toBe(status);
        expect(response.headers.get("content-type")).toMatch(/^application\/json/);
        expect(response.headers.get("retry-after")).toBe(retryAfter);
        expect(response.headers.get("x-request-id")).toBeTruthy();
        expect(((await response.json()) as { error: { type: string } }).error.type).toBe(status === 429 ? "rate_limit_error" : "service_unavailable_error");
      }
    }
  });

  it("an error after the stream opened is a data event with the error, then the stream closes without [DONE]", async () => {
    const response = await post("/v1/chat/completions", chatBody("fail midway", { stream: true }));
    expect(response.status).toBe(200);
    const frames = dataFrames(await response.text());
    expect(frames).not.toContain("[DONE]");
    expect(JSON.parse(frames.at(-1)!)).toEqual({
      error: { message: "The engine failed.", type: "server_error", param: null, code: "engine_failed" },
    });
    expect(JSON.parse(frames[1]!).choices[0].delta.content).toBe("partial");
  });

  it("the official SDK throws an APIError on that in-stream error", async () => {
    const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey: "unused", maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: "user", content: "fail midway" }], stream: true });
    const seen: string[] = [];
    const consume = async () => {
      for await (const chunk of stream) seen.push(chunk.choices[0]?.delta?.content ?? "");
    };
    await expect(consume()).rejects.toBeInstanceOf(OpenAI.APIError);
    await expect(consume()).rejects.toThrow();
    expect(seen).toContain("partial");
  });

  it("respects backpressure: a large stream read slowly arrives complete", async () => {
    const response = await post("/v1/chat/completions", chatBody("many", { stream: true }));
    const reader = response.body!.getReader();
    let text = "";
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (text.length < 200_000) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const frames = dataFrames(text);
    expect(frames.at(-1)).toBe("[DONE]");
    expect(frames.length).toBe(2000 + 3);
  });
});

describe("client disconnects", () => {
  it("aborting a stream mid-way aborts the job's signal and counts a 499", async () => {
    const before = gateway.backend.signals.length;
    await new Promise<void>((resolve, reject) => {
      const outgoing = httpRequest(baseURL + "/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" } }, (incoming) => {
        incoming.once("data", () => {
          outgoing.destroy();
          resolve();
        });
      });
      outgoing.on("error", (error) => (error.message.includes("socket hang up") || (error as NodeJS.ErrnoException).code === "ECONNRESET" ? undefined : reject(error)));
      outgoing.end(chatBody("hang", { stream: true }));
    });
    await until(() => gateway.backend.signals.length > before);
    const signal = gateway.backend.signals.at(-1)!;
    await until(() => signal.aborted);
    const clientClosed = /switchboard_http_requests_total\{route="\/v1\/chat\/completions",method="POST",status="499",model="[^"]+"\} [1-9]/;
    let metrics = "";
    for (let attempt = 0; attempt < 100 && !clientClosed.test(metrics); attempt++) {
      metrics = await (await fetch(baseURL + "/metrics")).text();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(metrics).toMatch(clientClosed);
  });

  it("a client that disconnects aborts the job with metrics off too (the job runner's own listener)", async () => {
    const quiet = await buildTestGateway({ script, recordMetrics: false });
    try {
      const url = await quiet.app.listen({ port: 0, host: "127.0.0.1" });
      const outgoing = httpRequest(url + "/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" } });
      outgoing.on("error", () => {});
      outgoing.end(chatBody("hang silently"));
      await until(() => quiet.backend.signals.length > 0);
      const signal = quiet.backend.signals[0]!;
      expect(signal.aborted).toBe(false);
      outgoing.destroy();
      await until(() => signal.aborted);
    } finally {
      await quiet.close();
    }
  });

  it("a client that disconnects from a non-streamed request aborts the job too", async () => {
    const before = gateway.backend.signals.length;
    const outgoing = httpRequest(baseURL + "/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" } });
    outgoing.on("error", () => {});
    outgoing.end(chatBody("hang silently"));
    await until(() => gateway.backend.signals.length > before);
    const signal = gateway.backend.signals.at(-1)!;
    expect(signal.aborted).toBe(false);
    outgoing.destroy();
    await until(() => signal.aborted);
  });

  it("the SDK aborting its stream aborts the job, and the next request completes", async () => {
    const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey: "unused", maxRetries: 0 });
    const before = gateway.backend.signals.length;
    const stream = await client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: "user", content: "hang" }], stream: true });
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content === "first") break;
    }
    await until(() => gateway.backend.signals.length > before && gateway.backend.signals.at(-1)!.aborted);
    const next = await client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: "user", content: "hi" }] });
    expect(next.choices[0]!.message.content).toBe("Hello there");
  });
});

/** Sends `size` bytes of JSON-ish body over a keep-alive agent; resolves with the response and whether the socket was reused. */
function upload(agent: Agent, size: number, options: { chunked?: boolean } = {}): Promise<{ response: IncomingMessage; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { "content-type": "application/json" };
    if (!options.chunked) headers["content-length"] = size;
    const outgoing = httpRequest(baseURL + "/v1/chat/completions", { method: "POST", agent, headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => resolve({ response, body, reused: outgoing.reusedSocket }));
    });
    outgoing.on("error", reject);
    const piece = Buffer.alloc(64 * 1024, "a");
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        const part = piece.subarray(0, Math.min(piece.length, size - sent));
        sent += part.length;
        if (!outgoing.write(part)) {
          outgoing.once("drain", pump);
          return;
        }
      }
      outgoing.end();
    };
    pump();
  });
}

describe("body limit", () => {
  it("a 20 MB upload gets a readable 413 (no EPIPE), and the connection stays usable", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const { response, body } = await upload(agent, 20 * 1024 * 1024);
        expect(response.statusCode).toBe(413);
        expect(response.headers["x-request-id"]).toBeTruthy();
        expect(response.headers.connection).not.toBe("close");
        expect(JSON.parse(body).error).toMatchObject({ type: "invalid_request_error", code: "request_too_large" });
      }
      const chunked = await upload(agent, 3 * 1024 * 1024, { chunked: true });
      expect(chunked.response.statusCode).toBe(413);
      const small = await upload(agent, 10);
      expect(small.reused).toBe(true);
      expect(small.response.statusCode).toBe(400);
    } finally {
      agent.destroy();
    }
  });

  it("the official SDK reads the 413 instead of a connection error", async () => {
    const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey: "unused", maxRetries: 0 });
    const huge = "x".repeat(5 * 1024 * 1024);
    const error = await client.chat.completions.create({ model: TEST_MODEL, messages: [{ role: "user", content: huge }] }).catch((caught) => caught);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.status).toBe(413);
  });
});

describe("x-request-id", () => {
  it("is on every response: success, errors, 404s, SSE, docs and operations", async () => {
    const requests: [string, RequestInit][] = [
      ["/health", {}],
      ["/ready", {}],
      ["/metrics", {}],
      ["/openapi.json", {}],
      ["/docs", {}],
      ["/v1/models", {}],
      ["/v1/models/nope", {}],
      ["/no/such/route", {}],
      ["/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: chatBody("hi") }],
      ["/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: chatBody("hi", { stream: true }) }],
      ["/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: "{oops" }],
      ["/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: chatBody("busy") }],
    ];
    for (const [path, init] of requests) {
      const response = await fetch(baseURL + path, init);
      await response.arrayBuffer();
      expect(response.headers.get("x-request-id"), path).toMatch(/^[\x20-\x7e]{1,128}$/);
    }
  });

  it("echoes a valid client id and replaces an unsafe one", async () => {
    const echoed = await fetch(baseURL + "/health", { headers: { "x-request-id": "client-id_42:abc" } });
    expect(echoed.headers.get("x-request-id")).toBe("client-id_42:abc");
    for (const unsafe of ["x".repeat(129), "   "]) {
      const replaced = await fetch(baseURL + "/health", { headers: { "x-request-id": unsafe } });
      const id = replaced.headers.get("x-request-id")!;
      expect(id).not.toBe(unsafe);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("is on a response to a malformed request line's URL too", async () => {
    const raw = await new Promise<string>((resolve) => {
      const socket = connect(Number(new URL(baseURL).port), "127.0.0.1", () => socket.end("GET /v1/models/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
      let text = "";
      socket.on("data", (data) => (text += data));
      socket.on("close", () => resolve(text));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 [45]\d\d/);
    expect(raw.toLowerCase()).toContain("x-request-id:");
  });

  it("job ids are made by the gateway, never taken from the client", async () => {
    await post("/v1/chat/completions", chatBody("hi"), { "x-request-id": "client-chosen" });
    const job = gateway.backend.jobs.at(-1)!;
    expect(job.requestId).toBe("client-chosen");
    expect(job.id).not.toBe("client-chosen");
    expect(job.id).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe("closing", () => {
  it("finishes in-flight streams and does not wait for idle or spare connections", async () => {
    const own = await buildTestGateway({
      script: async function* (job) {
        yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 1 };
        for (let index = 0; index < 5; index++) {
          await new Promise((resolve) => setTimeout(resolve, 40));
          yield { type: "text-delta", index: 0, text: `${index}` };
        }
        yield { type: "finish", index: 0, finishReason: "stop", completionTokens: 5 };
      },
    });
    const url = await own.app.listen({ port: 0, host: "127.0.0.1" });
    const port = Number(new URL(url).port);
    // A spare connection that never sends a request, and a keep-alive one that is idle.
    const spare = connect(port, "127.0.0.1");
    await new Promise((resolve) => spare.once("connect", resolve));
    const agent = new Agent({ keepAlive: true });
    await new Promise<void>((resolve) => httpRequest(url + "/health", { agent }, (response) => response.resume().on("end", resolve)).end());

    const streaming = fetch(url + "/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TEST_MODEL, messages: [{ role: "user", content: "x" }], stream: true }),
    }).then((response) => response.text());
    await until(() => own.backend.jobs.length === 1);

    const start = performance.now();
    await own.close();
    expect(performance.now() - start).toBeLessThan(2_000);
    const text = await streaming;
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    agent.destroy();
    spare.destroy();
  });
});

describe("closing, continued", () => {
  it("answers a request that arrives while closing with an OpenAI-shaped 503 and Retry-After", async () => {
    const own = await buildTestGateway({
      script: async function* (job) {
        yield { type: "accepted", jobId: job.id, model: job.model, promptTokens: 1 };
        await new Promise((resolve) => setTimeout(resolve, 200));
        yield { type: "finish", index: 0, finishReason: "stop", completionTokens: 0 };
      },
    });
    const url = await own.app.listen({ port: 0, host: "127.0.0.1" });
    const body = JSON.stringify({ model: TEST_MODEL, messages: [{ role: "user", content: "x" }] });
    const socket = connect(Number(new URL(url).port), "127.0.0.1");
    let text = "";
    socket.on("data", (data) => (text += data));
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await until(() => own.backend.jobs.length === 1);
    const closing = own.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Pipelined on the busy connection, so it reaches the app after the close began.
    socket.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    await closing;
    await until(() => text.includes("shutting_down"));
    socket.destroy();
    const second = text.slice(text.indexOf("HTTP/1.1", 10));
    expect(second).toMatch(/^HTTP\/1\.1 503/);
    expect(second.toLowerCase()).toContain("retry-after: 1");
    expect(second.toLowerCase()).toContain("x-request-id:");
    expect(JSON.parse(second.slice(second.indexOf("\r\n\r\n") + 4)).error.code).toBe("shutting_down");
  });
});

/**
 * The remote specialists end to end in the embedded composition: the real
 * gateway, the in-process transport and the Hugging Face engine, through the
 * real @huggingface/inference client, against a wire server that checks every
 * request and answer against the @huggingface/tasks specs — in both
 * addressing styles. OpenAI routes through the official `openai` client.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ArtifactUrlSigner } from "@switchboard/artifacts";
import { parseConfig } from "@switchboard/catalog";
import { TEST_PNG, TEST_WAV, sniffMedia, type WireServer } from "@switchboard/hf-wire-server";
import { TASK_NAMES } from "@switchboard/protocol";
import OpenAI, { toFile } from "openai";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createEmbeddedServer, type EmbeddedServer } from "../src/embedded.js";
import {
  ARTIFACT_TEST_SECRET,
  HF_TEST_TOKEN,

  TASK_CASES,
  endpointId,
  expectMedia,
  hfEnv,
  hubModel,
  providerId,
  specialistConfigData,
  startSpecialistWire,
} from "./hf-fixture.js";

const API_KEY = "sk-gateway-test-key";
let wire: WireServer;
let server: EmbeddedServer;
let baseURL: string;
let client: OpenAI;
const logLines: string[] = [];
/** Every response body the tests read, to search for the token at the end. */
const bodies: string[] = [];

beforeAll(async () => {
  wire = await startSpecialistWire();
  const data = specialistConfigData(wire, { apiKeys: [API_KEY] });
  // 127.0.0.2 is loopback too, but allow-listed: the one private address the tests may fetch.
  (data.huggingface as Record<string, unknown>).userUrls = { allowList: ["127.0.0.2"], timeoutMs: 2000 };
  // One model with a short budget, for the timeout case.
  const quick = (data.models as Array<Record<string, unknown>>).find((model) => model.id === endpointId("summarization"))!;
  quick.timeoutMs = 300;
  const config = parseConfig(data, { env: hfEnv, baseDir: process.cwd() });
  // The token comes from HF_TOKEN only, never from the file.
  expect(config.huggingface.token).toBe(HF_TEST_TOKEN);
  server = await createEmbeddedServer({ config, logger: pino({ level: "debug" }, { write: (line: string) => void logLines.push(line) }) });
  baseURL = await server.app.listen({ port: 0, host: "127.0.0.1" });
  client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: API_KEY, maxRetries: 0 });
});

afterEach(() => {
  expect(wire.violations()).toEqual([]);
  wire.reset();
});

afterAll(async () => {
  await server?.close();
  await wire?.close();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: any }> {
  const response = await fetch(`${baseURL}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  bodies.push(text);
  return { status: response.status, headers: response.headers, json: JSON.parse(text) };
}

describe.each([
  ["provider hf-inference, base URL pointed at the wire server", providerId, "provider"],
  ["endpointUrl", endpointId, "endpoint"],
] as const)("POST /v1/tasks/{task} through %s", (_name, idOf, style) => {
  it.each([...TASK_NAMES])("%s", async (task) => {
    const testCase = TASK_CASES[task];
    const answer = await post(`/v1/tasks/${task}`, { model: idOf(task), inputs: testCase.inputs, ...(testCase.parameters ? { parameters: testCase.parameters } : {}) });
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);
    expect(answer.json).toMatchObject({ object: "task.result", task, model: idOf(task) });
    expect(answer.json.id).toMatch(/^task-/);
    await testCase.check(answer.json.output);
    const inference = wire.requests.filter((request) => request.style !== "hub");
    expect(inference).toHaveLength(1);
    expect(inference[0]).toMatchObject({ style, model: hubModel(task, style === "provider" ? "p" : "e"), status: 200, authorization: `Bearer ${HF_TEST_TOKEN}` });
  });
});

describe("task routes", () => {
  it("use the most popular model when `model` is left out, and fall back to the next when it is loading", async () => {
    const first = await post("/v1/tasks/text-classification", { inputs: "I love this" });
    expect(first.json.model).toBe(providerId("text-classification"));

    wire.setBehaviour(hubModel("text-classification", "p"), { fail: "503-loading", estimatedTime: 12 });
    const fallback = await post("/v1/tasks/text-classification", { inputs: "I love this" });
    expect(fallback.status).toBe(200);
    expect(fallback.json.model).toBe(endpointId("text-classification"));

    // Named explicitly, there is no fallback: the loading model's 503 with Retry-After is the answer.
    const named = await post("/v1/tasks/text-classification", { model: providerId("text-classification"), inputs: "I love this" });
    expect(named.status).toBe(503);
    expect(named.headers.get("retry-after")).toBe("12");
    expect(named.json.error).toMatchObject({ type: "service_unavailable_error", code: "model_unavailable", param: "model" });
    expect(named.json.error.message).toContain(providerId("text-classification"));
  });

  it("take multipart uploads: a file for binary inputs, a part per member of object inputs, parameters as JSON", async () => {
    const form = new FormData();
    form.set("inputs", new Blob([TEST_PNG], { type: "image/png" }), "cat.png");
    form.set("parameters", JSON.stringify({ top_k: 1 }));
    form.set("model", endpointId("image-classification"));
    const classified = await fetch(`${baseURL}/v1/tasks/image-classification`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: form });
    expect(classified.status).toBe(200);
    expect(((await classified.json()) as any).output).toEqual([{ label: "tabby cat", score: expect.any(Number) }]);

    const question = new FormData();
    question.set("image", new Blob([TEST_PNG], { type: "image/png" }), "doc.png");
    question.set("question", "Is it grey?");
    const answered = await fetch(`${baseURL}/v1/tasks/visual-question-answering`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` }, body: question });
    expect(answered.status).toBe(200);
    expect(((await answered.json()) as any).output).toEqual([{ answer: "yes", score: 0.91 }]);
  });

  it("answer binary outputs inline with response_format b64_json", async () => {
    const answer = await post("/v1/tasks/text-to-speech", { inputs: "hello", response_format: "b64_json" });
    expect(answer.json.output.audio.type).toBe("base64");
    await expectMedia(answer.json.output.audio, "audio");
  });

  it("refuse a model of another task, an unknown task, and bad binary input, each with a 4xx that says why", async () => {
    const mismatch = await post("/v1/tasks/summarization", { model: providerId("translation"), inputs: "x" });
    expect(mismatch.status).toBe(400);
    expect(mismatch.json.error).toMatchObject({ code: "model_task_mismatch", param: "model" });
    const unknown = await post("/v1/tasks/levitation", { inputs: "x" });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe("unknown_task");
    const notAnImage = await post("/v1/tasks/image-classification", { inputs: TEST_WAV.toString("base64") });
    expect(notAnImage.status).toBe(400);
    expect(notAnImage.json.error).toMatchObject({ code: "invalid_binary_input", param: "inputs" });
    const badSchema = await post("/v1/tasks/question-answering", { inputs: { question: "Who?" } });
    expect(badSchema.status).toBe(400);
    expect(badSchema.json.error.param).toBe("inputs.context");
    expect(wire.requests.filter((request) => request.style !== "hub")).toHaveLength(0);
  });

  it("need the API key", async () => {
    const response = await fetch(`${baseURL}/v1/tasks/text-classification`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"inputs":"x"}' });
    expect(response.status).toBe(401);
  });
});

describe("user-supplied URLs", () => {
  let target: Server;
  let connections = 0;
  let targetPort: number;

  beforeAll(async () => {
    target = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "image/png" });
      response.end(TEST_PNG);
    });
    target.on("connection", () => (connections += 1));
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
    targetPort = (target.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => target.close(() => resolve())));

  it("fetch an allow-listed address and use what it serves", async () => {
    const allowed = createServer((_request, response) => {
      response.writeHead(200, { "content-type": "image/png" });
      response.end(TEST_PNG);
    });
    let reached = 0;
    allowed.on("connection", () => (reached += 1));
    await new Promise<void>((resolve) => allowed.listen(0, "127.0.0.2", resolve));
    try {
      const answer = await post("/v1/tasks/image-classification", { inputs: `http://127.0.0.2:${(allowed.address() as AddressInfo).port}/cat.png` });
      expect(answer.status, JSON.stringify(answer.json)).toBe(200);
      expect(answer.json.output[0].label).toBe("tabby cat");
      expect(reached).toBe(1);
    } finally {
      await new Promise<void>((resolve) => allowed.close(() => resolve()));
    }
  });

  it.each([
    ["loopback", () => `http://127.0.0.1:${targetPort}/cat.png`, /127\.0\.0\.1 is .*loopback/i],
    ["IPv6 loopback", () => `http://[::1]:${targetPort}/cat.png`, /::1/],
    ["a private address", () => "http://10.0.0.7/cat.png", /private/i],
    ["link-local metadata", () => "http://169.254.169.254/latest/meta-data", /link-local|metadata/i],
    ["file://", () => "file:///etc/passwd", /Only http and https/],
  ])("refuses %s with a 400 that says why, before connecting", async (_name, url, reason) => {
    const answer = await post("/v1/tasks/image-classification", { inputs: url() });
    expect(answer.status).toBe(400);
    expect(answer.json.error).toMatchObject({ type: "invalid_request_error", code: "url_refused", param: "inputs" });
    expect(answer.json.error.message).toMatch(reason);
    expect(connections).toBe(0);
    expect(wire.requests.filter((request) => request.style !== "hub")).toHaveLength(0);
  });

  it.each([
    ["a loopback address", () => `http://127.0.0.1:${targetPort}/cat.png`, /127\.0\.0\.1 is .*loopback/i],
    ["a name that resolves to loopback", () => `http://localhost:${targetPort}/cat.png`, /'localhost' resolves to .*loopback/i],
    ["a private address", () => "http://10.0.0.7/cat.png", /10\.0\.0\.7 is .*private/i],
  ])("refuses a URL that redirects to %s with a 400, and fetches nothing there", async (_name, location, reason) => {
    // The first hop is allowed (127.0.0.2 is allow-listed) and answers with a redirect.
    const redirector = createServer((_request, response) => {
      response.writeHead(302, { location: location() });
      response.end();
    });
    let hops = 0;
    redirector.on("request", () => (hops += 1));
    await new Promise<void>((resolve) => redirector.listen(0, "127.0.0.2", resolve));
    try {
      const answer = await post("/v1/tasks/image-classification", { model: endpointId("image-classification"), inputs: `http://127.0.0.2:${(redirector.address() as AddressInfo).port}/cat.png` });
      expect(answer.status).toBe(400);
      expect(answer.json.error).toMatchObject({ type: "invalid_request_error", code: "url_refused", param: "inputs" });
      expect(answer.json.error.message).toMatch(reason);
      expect(answer.json.error.message).toMatch(/only public addresses can be fetched/);
      // The redirect was followed as far as the check, and no further.
      expect(hops).toBe(1);
      expect(connections).toBe(0);
      expect(wire.requests.filter((request) => request.style !== "hub")).toHaveLength(0);
    } finally {
      await new Promise<void>((resolve) => redirector.close(() => resolve()));
    }
  });
});

describe("artifacts", () => {
  it("round-trip through a signed URL that needs no key: same bytes, right content type", async () => {
    const inline = await post("/v1/tasks/text-to-image", { inputs: "a lighthouse", response_format: "b64_json" });
    const linked = await post("/v1/tasks/text-to-image", { inputs: "a lighthouse" });
    const image = linked.json.output.image;
    expect(image).toMatchObject({ type: "artifact", mimeType: "image/png" });
    const response = await fetch(image.url);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(Buffer.from(await response.arrayBuffer()).equals(Buffer.from(inline.json.output.image.data, "base64"))).toBe(true);
    expect(image.expiresAt).toBeGreaterThan(Date.now());
  });

  it("refuse a tampered or expired URL with 403 and a gone artifact with 404, as OpenAI errors", async () => {
    const linked = await post("/v1/tasks/text-to-image", { inputs: "a lighthouse" });
    const url = new URL(linked.json.output.image.url);
    const id = url.pathname.split("/").pop()!;

    const tampered = new URL(url);
    tampered.searchParams.set("expires", String(Number(url.searchParams.get("expires")) + 3600));
    const forged = await fetch(tampered);
    expect(forged.status).toBe(403);
    expect(forged.headers.get("content-type")).toMatch(/^application\/json/);
    expect(((await forged.json()) as any).error).toMatchObject({ type: "permission_error", code: "invalid_signature" });

    const otherId = new URL(url);
    otherId.pathname = `/v1/artifacts/${"0".repeat(64)}`;
    expect((await fetch(otherId)).status).toBe(403);

    const signer = new ArtifactUrlSigner(ARTIFACT_TEST_SECRET);
    const expired = await fetch(`${baseURL}${signer.path(id, Date.now() - 60_000)}`);
    expect(expired.status).toBe(403);
    expect(((await expired.json()) as any).error.code).toBe("url_expired");

    const gone = await fetch(`${baseURL}${signer.path("f".repeat(64), Date.now() + 60_000)}`);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as any).error).toMatchObject({ type: "not_found_error", code: "artifact_not_found" });
  });

  it("serve as task inputs by id", async () => {
    const made = await post("/v1/tasks/text-to-image", { inputs: "a lighthouse" });
    const classified = await post("/v1/tasks/image-classification", { inputs: { type: "artifact", id: made.json.output.image.id } });
    expect(classified.status).toBe(200);
    const missing = await post("/v1/tasks/image-classification", { inputs: { type: "artifact", id: "e".repeat(64) } });
    expect(missing.status).toBe(400);
    expect(missing.json.error.code).toBe("artifact_not_found");
  });
});

describe("OpenAI routes through the official client", () => {
  it.each([providerId("text-to-image"), endpointId("text-to-image")])("images.generate with %s: b64_json and url", async (model) => {
    const inline = await client.images.generate({ model, prompt: "a lighthouse", size: "64x64", response_format: "b64_json" });
    expect(inline.data).toHaveLength(1);
    const bytes = Buffer.from(inline.data![0]!.b64_json!, "base64");
    expect(sniffMedia(bytes)?.mimeType).toBe("image/png");
    const linked = await client.images.generate({ model, prompt: "a lighthouse", n: 2 });
    expect(linked.data).toHaveLength(2);
    const response = await fetch(linked.data![0]!.url!);
    expect(response.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true);
    const last = wire.requests.filter((request) => request.style !== "hub").at(0)!;
    expect(last.bodyBytes).toBeGreaterThan(0);
  });

  it("images.generate without a model uses the default text-to-image model", async () => {
    const image = await client.images.generate({ prompt: "a lighthouse", response_format: "b64_json" });
    expect(image.data?.[0]?.b64_json).toBeTruthy();
    expect(wire.requests.some((request) => request.model === hubModel("text-to-image", "p"))).toBe(true);
  });

  it.each([providerId("automatic-speech-recognition"), endpointId("automatic-speech-recognition")])("audio.transcriptions.create with %s: json, text, verbose_json", async (model) => {
    const file = await toFile(TEST_WAV, "hello.wav", { type: "audio/wav" });
    const json = await client.audio.transcriptions.create({ model, file });
    expect(json.text).toBe("hello switchboard");
    const text = await client.audio.transcriptions.create({ model, file: await toFile(TEST_WAV, "hello.wav"), response_format: "text" });
    expect(String(text).trim()).toBe("hello switchboard");
    const verbose = await client.audio.transcriptions.create({ model, file: await toFile(TEST_WAV, "hello.wav"), response_format: "verbose_json", language: "en" });
    expect(verbose).toMatchObject({ text: "hello switchboard", language: "en" });
    expect(verbose.segments?.[0]).toMatchObject({ id: 0, start: 0, end: 0.1 });
    expect(verbose.duration).toBeGreaterThan(0);
  });

  it("audio.transcriptions.create refuses srt and a non-audio file", async () => {
    const model = providerId("automatic-speech-recognition");
    await expect(client.audio.transcriptions.create({ model, file: await toFile(TEST_WAV, "a.wav"), response_format: "srt" })).rejects.toMatchObject({ status: 400 });
    await expect(client.audio.transcriptions.create({ model, file: await toFile(TEST_PNG, "a.png") })).rejects.toMatchObject({ status: 400, code: "invalid_binary_input" });
  });

  it.each([providerId("text-to-speech"), endpointId("text-to-speech")])("audio.speech.create with %s gives audio with its content type", async (model) => {
    const response = await client.audio.speech.create({ model, input: "hello world", voice: "alloy" });
    expect(response.headers.get("content-type")).toBe("audio/wav");
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(sniffMedia(bytes)?.mimeType).toBe("audio/wav");
  });

  it.each([providerId("conversational"), endpointId("conversational"), endpointId("text-generation")])("chat with remote model %s, streamed and not, with exact upstream usage", async (model) => {
    const messages = [{ role: "user" as const, content: "hello there" }];
    const completion = await client.chat.completions.create({ model, messages });
    const text = completion.choices[0]!.message.content!;
    expect(text).toMatch(/you said 11 characters/);
    expect(completion.choices[0]!.finish_reason).toBe("stop");
    // The wire server counts ceil(len(JSON(messages)) / 4) prompt tokens and one token per word.
    const promptTokens = Math.ceil(JSON.stringify(messages).length / 4);
    expect(completion.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: text.split(" ").length, total_tokens: promptTokens + text.split(" ").length });

    const stream = await client.chat.completions.create({ model, messages, stream: true, stream_options: { include_usage: true } });
    let streamed = "";
    let usage;
    let first = true;
    for await (const chunk of stream) {
      if (first) expect(chunk.choices[0]?.delta.role).toBe("assistant");
      first = false;
      streamed += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(streamed).toBe(text);
    expect(usage).toEqual(completion.usage);
  });

  it.each([providerId("conversational"), endpointId("conversational")])("chat with remote model %s: logprobs with top_logprobs, streamed and not, as the upstream gave them", async (model) => {
    const messages = [{ role: "user" as const, content: "hello there" }];
    const completion = await client.chat.completions.create({ model, messages, logprobs: true, top_logprobs: 2 });
    const asked = wire.requests.filter((request) => request.task === "chat").at(-1)!;
    expect(asked.body).toMatchObject({ logprobs: true, top_logprobs: 2 });
    const text = completion.choices[0]!.message.content!;
    const tokens = completion.choices[0]!.logprobs!.content!;
    // The wire server makes one token per word: -1/8 for the first, -2/8 for the next, and a runner-up one lower.
    expect(tokens.map((token) => token.token).join("")).toBe(text);
    tokens.forEach((token, index) => {
      expect(token.logprob).toBeCloseTo(-(index + 1) / 8);
      expect(token.bytes).toEqual([...Buffer.from(token.token, "utf8")]);
      expect(token.top_logprobs.map((alternative) => alternative.token)).toEqual([token.token, `${token.token}~1`]);
      expect(token.top_logprobs[1]!.logprob).toBeCloseTo(token.logprob - 1);
    });

    const stream = await client.chat.completions.create({ model, messages, logprobs: true, top_logprobs: 2, stream: true });
    const streamed = [];
    for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    expect(streamed).toEqual(tokens);

    // Not asked: null, and the upstream is not asked either.
    const plain = await client.chat.completions.create({ model, messages });
    expect(plain.choices[0]!.logprobs).toBeNull();
    expect(wire.requests.filter((request) => request.task === "chat").at(-1)!.body).not.toHaveProperty("logprobs");
  });

  it.each([providerId("conversational"), endpointId("conversational")])("chat with remote model %s: n choices, one upstream call each with seed + i, streamed and not", async (model) => {
    const messages = [{ role: "user" as const, content: "hello there" }];
    const before = wire.requests.length;
    const completion = await client.chat.completions.create({ model, messages, n: 3, seed: 40, logprobs: true });
    const calls = wire.requests.slice(before).filter((request) => request.task === "chat");
    expect(calls.map((call) => call.body?.seed).sort()).toEqual([40, 41, 42]);
    expect(calls.every((call) => call.body?.n === undefined)).toBe(true);
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    const text = completion.choices[0]!.message.content!;
    for (const choice of completion.choices) {
      expect(choice.message.content).toBe(text);
      expect(choice.logprobs!.content!.map((token) => token.token).join("")).toBe(text);
    }
    // The prompt counts once; each choice's words count.
    const promptTokens = Math.ceil(JSON.stringify(messages).length / 4);
    const words = text.split(" ").length;
    expect(completion.usage).toEqual({ prompt_tokens: promptTokens, completion_tokens: 3 * words, total_tokens: promptTokens + 3 * words });

    const stream = await client.chat.completions.create({ model, messages, n: 3, stream: true, stream_options: { include_usage: true } });
    const texts = ["", "", ""];
    const finishes: (string | null)[] = [];
    let usage;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        texts[choice.index] += choice.delta.content ?? "";
        if (choice.finish_reason) finishes[choice.index] = choice.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(texts).toEqual([text, text, text]);
    expect(finishes).toEqual(["stop", "stop", "stop"]);
    expect(usage).toEqual(completion.usage);
  });

  it.each([providerId("text-generation"), endpointId("text-generation")])("text completions with remote model %s: n choices per prompt, one upstream call each with seed + i", async (model) => {
    const before = wire.requests.length;
    const completion = await client.completions.create({ model, prompt: ["Once upon a time", "In a land far away"], n: 2, seed: 7, max_tokens: 8 });
    const calls = wire.requests.slice(before).filter((request) => request.task === "completions");
    expect(calls).toHaveLength(4);
    expect(calls.map((call) => call.body?.seed).sort()).toEqual([7, 7, 8, 8]);
    expect(calls.every((call) => call.body?.max_tokens === 8 && call.body?.n === undefined)).toBe(true);
    // OpenAI's order: every choice of the first prompt, then of the second.
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1, 2, 3]);
    expect(completion.choices.every((choice) => choice.text === " and the story goes on." && choice.finish_reason === "stop")).toBe(true);
    expect(calls.map((call) => call.body?.prompt).sort()).toEqual(["In a land far away", "In a land far away", "Once upon a time", "Once upon a time"]);
  });

  it("embeddings from a feature-extraction model, float and base64 alike", async () => {
    const model = endpointId("feature-extraction");
    const float = await client.embeddings.create({ model, input: ["one", "two"], encoding_format: "float" });
    const base64 = await client.embeddings.create({ model, input: ["one", "two"] });
    expect(float.data).toHaveLength(2);
    expect(float.data[0]!.embedding).toHaveLength(8);
    base64.data[0]!.embedding.forEach((value, index) => expect(value).toBeCloseTo(float.data[0]!.embedding[index]!, 6));
  });

  it("refuse a remote model on a route of another task", async () => {
    await expect(client.chat.completions.create({ model: providerId("text-to-image"), messages: [{ role: "user", content: "hi" }] })).rejects.toMatchObject({
      status: 400,
      code: "model_not_supported",
    });
    await expect(client.embeddings.create({ model: providerId("translation"), input: "x" })).rejects.toMatchObject({ status: 400, code: "model_not_supported" });
    // Through a provider the Hub's task mapping decides: a text-generation model does not chat there (a TGI endpoint does).
    await expect(client.chat.completions.create({ model: providerId("text-generation"), messages: [{ role: "user", content: "hi" }] })).rejects.toMatchObject({
      status: 400,
      code: "model_not_supported",
    });
    await expect(client.images.generate({ model: providerId("text-to-speech"), prompt: "x" })).rejects.toMatchObject({ status: 400, code: "model_task_mismatch" });
  });
});

describe("upstream faults reach the client as OpenAI errors", () => {
  it("a loading model is a 503 with Retry-After, streaming or not", async () => {
    const model = providerId("conversational");
    wire.setBehaviour(hubModel("conversational", "p"), { fail: "503-loading", estimatedTime: 7 });
    for (const [stream, n] of [[false, 1], [true, 1], [false, 2], [true, 2]] as const) {
      const failure = (await client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }], stream, n }).catch((error: unknown) => error)) as InstanceType<
        typeof OpenAI.APIError
      >;
      expect(failure).toBeInstanceOf(OpenAI.APIError);
      expect(failure.status).toBe(503);
      expect(failure.headers?.get("retry-after")).toBe("7");
      expect(failure.message).toContain(model);
    }
  });

  it("an HTML page is a 502 and a rate limit a 503 with Retry-After", async () => {
    wire.setBehaviour(hubModel("text-to-image", "e"), { fail: "html" });
    const html = await client.images.generate({ model: endpointId("text-to-image"), prompt: "x" }).catch((error: unknown) => error);
    expect(html).toMatchObject({ status: 502, code: "upstream_bad_response" });
    wire.setBehaviour(hubModel("text-to-speech", "e"), { fail: "429", retryAfterSeconds: 30 });
    const limited = (await client.audio.speech.create({ model: endpointId("text-to-speech"), input: "x", voice: "alloy" }).catch((error: unknown) => error)) as InstanceType<
      typeof OpenAI.APIError
    >;
    expect(limited.status).toBe(503);
    expect(limited.headers?.get("retry-after")).toBe("30");
  });

  it("a model slower than its budget is a 504 that names it, within the budget", async () => {
    wire.setBehaviour(hubModel("summarization", "e"), { fail: "slow", delayMs: 3000 });
    const started = Date.now();
    const answer = await post("/v1/tasks/summarization", { model: endpointId("summarization"), inputs: "one two three" });
    expect(answer.status).toBe(504);
    expect(answer.json.error).toMatchObject({ type: "timeout_error", code: "upstream_timeout" });
    expect(answer.json.error.message).toContain(endpointId("summarization"));
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it("an upstream answer that echoes the token never carries it to the client", async () => {
    wire.setBehaviour(hubModel("summarization", "p"), { fail: "echo-token", status: 500 });
    const answer = await post("/v1/tasks/summarization", { model: providerId("summarization"), inputs: "one two three" });
    expect(answer.status).toBe(502);
    expect(JSON.stringify(answer.json)).not.toContain(HF_TEST_TOKEN);
    expect(wire.requests.some((request) => request.fault === "echo-token")).toBe(true);
  });
});

describe("the token", () => {
  it("never appears in a response or a log line (the log ran at debug)", () => {
    expect(logLines.length).toBeGreaterThan(50);
    expect(logLines.join("\n")).not.toContain(HF_TEST_TOKEN);
    expect(bodies.join("\n")).not.toContain(HF_TEST_TOKEN);
    expect(logLines.join("\n")).not.toContain(ARTIFACT_TEST_SECRET);
  });

  it("is the one from HF_TOKEN, which wins over the file", () => {
    const config = parseConfig(specialistConfigData(wire, { huggingface: { token: "hf_fromTheFile000000" } }), { env: hfEnv, baseDir: process.cwd() });
    expect(config.huggingface.token).toBe(HF_TEST_TOKEN);
  });
});


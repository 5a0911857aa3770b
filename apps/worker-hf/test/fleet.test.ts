/**
 * Fleet mode on the real Redis: a gateway on the BullMQ transport (no engine
 * in it) and an `hf` worker, sharing the queue and the artifact store in one
 * Redis under a random prefix (only those keys are deleted afterwards). The
 * remote models are the wire server's, through the real @huggingface/inference
 * client, in both addressing styles.
 */
import { ArtifactUrlSigner, createArtifactStore, type ArtifactStore } from "@switchboard/artifacts";
import { Catalog, parseConfig } from "@switchboard/catalog";
import { buildGateway, queueForCatalog } from "@switchboard/gateway";
import { TEST_WAV, type WireServer } from "@switchboard/hf-wire-server";
import { parseExposition, promtoolCheck, requireProgram, sampleSum } from "@switchboard/metrics/testing";
import { BullmqDispatcher, HF_QUEUE } from "@switchboard/queue";
import { deletePrefix, randomPrefix, redisUrl, waitForLiveWorkers, waitForReady } from "@switchboard/queue/test/redis-fixture";
import { Redis } from "ioredis";
import OpenAI, { toFile } from "openai";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACT_TEST_SECRET, HF_TEST_TOKEN, endpointId, expectMedia, hfEnv, hubModel, providerId, specialistConfigData, startSpecialistWire } from "../../embedded/test/hf-fixture.js";
import { startHfWorker, type HfWorker } from "../src/hf-worker.js";

const prefix = randomPrefix();
const logLines: string[] = [];
const logger = pino({ level: "debug" }, { write: (line: string) => void logLines.push(line) });

let wire: WireServer;
let worker: HfWorker;
let dispatcher: BullmqDispatcher;
let gatewayStore: ArtifactStore;
let app: Awaited<ReturnType<typeof buildGateway>>;
let baseURL: string;
let client: OpenAI;

beforeAll(async () => {
  wire = await startSpecialistWire();
  const config = parseConfig(specialistConfigData(wire), { env: hfEnv, baseDir: process.cwd() });
  worker = await startHfWorker({
    config,
    redisUrl,
    prefix,
    port: 0,
    host: "127.0.0.1",
    workerId: "hf-test-worker",
    logger: logger.child({ process: "worker" }),
    // A quick first heartbeat; a TTL long enough that a busy machine never takes the worker for dead.
    transport: { heartbeatIntervalMs: 100, heartbeatTtlMs: 3000, drainTimeoutMs: 1000 },
  });
  const catalog = new Catalog(config);
  dispatcher = new BullmqDispatcher({ connection: redisUrl, prefix, queueFor: queueForCatalog(catalog), livenessIntervalMs: 200 });
  gatewayStore = createArtifactStore(config.artifacts, { fleetRedisUrl: redisUrl, prefix });
  app = await buildGateway({
    config,
    catalog,
    dispatcher,
    logger: logger.child({ process: "gateway" }),
    readiness: "transport",
    artifacts: { store: gatewayStore, signer: new ArtifactUrlSigner(config.artifacts.secret), urlTtlSeconds: config.artifacts.urlTtlSeconds },
  });
  baseURL = await app.listen({ port: 0, host: "127.0.0.1" });
  client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "unused", maxRetries: 0 });
  // Until the worker's heartbeat is in Redis, the gateway answers 503 model_unavailable.
  await waitForLiveWorkers(redisUrl, prefix, [HF_QUEUE]);
  await waitForReady([dispatcher]);
});

afterEach(() => {
  expect(wire.violations()).toEqual([]);
  wire.reset();
});

afterAll(async () => {
  await app?.close();
  await dispatcher?.close();
  await gatewayStore?.close();
  await worker?.close();
  await wire?.close();
  await deletePrefix(redisUrl, prefix);
});

async function post(path: string, body: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${baseURL}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, json: await response.json() };
}

describe("fleet mode (BullMQ transport, worker-hf)", () => {
  it.each([providerId("text-to-image"), endpointId("text-to-image")])(
    "POST /v1/tasks/text-to-image with %s: the worker stores the image in Redis, the gateway serves it at a signed URL",
    async (model) => {
      const answer = await post("/v1/tasks/text-to-image", { model, inputs: "a lighthouse" });
      expect(answer.status, JSON.stringify(answer.json)).toBe(200);
      expect(answer.json).toMatchObject({ object: "task.result", model });
      await expectMedia(answer.json.output.image, "image");
      const redis = new Redis(redisUrl);
      try {
        expect(await redis.exists(`${prefix}:sb:artifact:${answer.json.output.image.id}`)).toBe(1);
      } finally {
        redis.disconnect();
      }
    },
  );

  it("POST /v1/tasks/question-answering answers like the embedded default", async () => {
    const answer = await post("/v1/tasks/question-answering", { inputs: { question: "Who?", context: "Ada wrote it" } });
    expect(answer.json).toMatchObject({ model: providerId("question-answering"), output: [{ answer: "Ada", start: 0, end: 3 }] });
  });

  it("images.generate (b64_json and url) through the official client", async () => {
    const inline = await client.images.generate({ model: endpointId("text-to-image"), prompt: "a lighthouse", response_format: "b64_json" });
    const linked = await client.images.generate({ model: endpointId("text-to-image"), prompt: "a lighthouse" });
    const fetched = Buffer.from(await (await fetch(linked.data![0]!.url!)).arrayBuffer());
    expect(fetched.equals(Buffer.from(inline.data![0]!.b64_json!, "base64"))).toBe(true);
  });

  it("audio.transcriptions.create: the upload goes through the shared store to the worker", async () => {
    const transcription = await client.audio.transcriptions.create({ model: providerId("automatic-speech-recognition"), file: await toFile(TEST_WAV, "hello.wav", { type: "audio/wav" }) });
    expect(transcription.text).toBe("hello switchboard");
  });

  it("chat with a remote model, streamed, with upstream usage", async () => {
    const stream = await client.chat.completions.create({
      model: endpointId("conversational"),
      messages: [{ role: "user", content: "hello there" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toMatch(/you said 11 characters/);
    expect(usage).toMatchObject({ prompt_tokens: Math.ceil(JSON.stringify([{ role: "user", content: "hello there" }]).length / 4) });
  });

  it("chat with a remote model: log probabilities cross the queue with their text, streamed and not", async () => {
    const request = { model: endpointId("conversational"), messages: [{ role: "user" as const, content: "hello there" }], logprobs: true, top_logprobs: 1 };
    const completion = await client.chat.completions.create(request);
    const tokens = completion.choices[0]!.logprobs!.content!;
    expect(tokens.map((token) => token.token).join("")).toBe(completion.choices[0]!.message.content);
    expect(tokens.every((token) => token.top_logprobs.length === 1 && token.logprob < 0)).toBe(true);
    // The worker joins deltas that wait for a Redis write: their tokens stay in order.
    const stream = await client.chat.completions.create({ ...request, stream: true });
    let text = "";
    const streamed = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    }
    expect(text).toBe(completion.choices[0]!.message.content);
    expect(streamed).toEqual(tokens);
  });

  it("chat with a remote model: n choices cross the queue, each under its index", async () => {
    const request = { model: endpointId("conversational"), messages: [{ role: "user" as const, content: "hello there" }], n: 2 };
    const completion = await client.chat.completions.create(request);
    expect(completion.choices.map((choice) => [choice.index, choice.message.content])).toEqual([
      [0, expect.stringMatching(/you said 11 characters/)],
      [1, completion.choices[0]!.message.content],
    ]);
    const texts = ["", ""];
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) for (const choice of chunk.choices) texts[choice.index] += choice.delta.content ?? "";
    expect(texts).toEqual([completion.choices[0]!.message.content, completion.choices[0]!.message.content]);
  });

  it("a loading model's 503 and Retry-After cross the queue to the client", async () => {
    wire.setBehaviour(hubModel("text-to-speech", "p"), { fail: "503-loading", estimatedTime: 9 });
    const failure = (await client.audio.speech.create({ model: providerId("text-to-speech"), input: "x", voice: "alloy" }).catch((error: unknown) => error)) as InstanceType<typeof OpenAI.APIError>;
    expect(failure.status).toBe(503);
    expect(failure.headers?.get("retry-after")).toBe("9");
  });

  it("a user URL to loopback is refused by the worker with a 400 that says why", async () => {
    const answer = await post("/v1/tasks/image-classification", { inputs: "http://127.0.0.1:9/cat.png" });
    expect(answer.status).toBe(400);
    expect(answer.json.error).toMatchObject({ code: "url_refused", param: "inputs" });
  });

  it("serves its metrics at /metrics: one task job moves the upstream call count by one, and promtool accepts the text", async () => {
    requireProgram("promtool");
    const model = endpointId("question-answering");
    const scrape = async () => {
      const response = await fetch(`${worker.url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toContain("text/plain");
      return await response.text();
    };
    const calls = (text: string) => sampleSum(parseExposition(text), "switchboard_hf_upstream_request_duration_seconds_count", { model });
    const before = calls(await scrape());

    const answer = await post("/v1/tasks/question-answering", { model, inputs: { question: "Who?", context: "Ada wrote it" } });
    expect(answer.status, JSON.stringify(answer.json)).toBe(200);

    const text = await scrape();
    const exposition = parseExposition(text);
    expect(calls(text) - before).toBe(1);
    expect(sampleSum(exposition, "switchboard_hf_upstream_request_duration_seconds_count", { model, outcome: "ok" })).toBeGreaterThanOrEqual(1);
    expect(sampleSum(exposition, "switchboard_hf_circuit_state", { model, state: "closed" })).toBe(1);
    expect(sampleSum(exposition, "process_cpu_user_seconds_total")).toBeGreaterThan(0);
    const lint = promtoolCheck(text);
    expect(lint.output).toBe("");
    expect(lint.ok).toBe(true);
  });

  it("answers /health and /ready on its own port, and an OpenAI-shaped 404 elsewhere", async () => {
    const health = await fetch(`${worker.url}/health`);
    expect(await health.json()).toMatchObject({ status: "ok", workerId: "hf-test-worker", queues: [{ name: HF_QUEUE, serving: true }] });
    expect((await fetch(`${worker.url}/ready`)).status).toBe(200);
    const missing = await fetch(`${worker.url}/v1/models`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("unknown_url");
  });

  it("never logs the token or the artifact key, in the gateway or the worker", () => {
    expect(logLines.some((line) => line.includes('"process":"worker"'))).toBe(true);
    expect(logLines.join("\n")).not.toContain(HF_TEST_TOKEN);
    expect(logLines.join("\n")).not.toContain(ARTIFACT_TEST_SECRET);
  });
});

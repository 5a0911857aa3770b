/**
 * Every task, through the real @huggingface/inference client, against the
 * local wire server in both addressing styles (provider `hf-inference` with
 * the base URL pointed at the server, and `endpointUrl`). The server checks
 * each request and answer against the @huggingface/tasks specs; the suite
 * ends by asserting it found no violation.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_PNG, TEST_WAV } from "@switchboard/hf-wire-server";
import { TASK_NAMES, type BinaryOutput, type TaskName } from "@switchboard/protocol";
import { HfEngine } from "./hf-engine.js";
import { sniffMedia } from "./binary-data.js";
import { captureLogger, endpointId, hubModel, providerId, startWireFixture, TEST_TOKEN, type WireFixture } from "./test-support.js";

const PNG = TEST_PNG.toString("base64");
const WAV = TEST_WAV.toString("base64");

const expectMedia = (value: BinaryOutput, kind: string) => {
  expect(value.type).toBe("base64");
  if (value.type !== "base64") return;
  const bytes = Buffer.from(value.data, "base64");
  expect(value.bytes).toBe(bytes.length);
  expect(sniffMedia(bytes)?.kind).toBe(kind);
  expect(value.mimeType.startsWith(`${kind}/`)).toBe(true);
};

/** One call per task: inputs, optional parameters, and what the answer must be. */
const CASES: { [T in TaskName]: { inputs: unknown; parameters?: Record<string, unknown>; check: (output: any) => void } } = {
  "token-classification": { inputs: "Ada Lovelace wrote programs", check: (o) => expect(o[0]).toMatchObject({ entity_group: "PER", word: "Ada", start: 0, end: 3 }) },
  translation: { inputs: "hello", parameters: { tgt_lang: "de" }, check: (o) => expect(o).toEqual({ translation_text: "[de] hello" }) },
  summarization: { inputs: "one two three four five six seven", check: (o) => expect(o).toEqual({ summary_text: "one two three four five" }) },
  "question-answering": {
    inputs: { question: "Who?", context: "Ada wrote it" },
    check: (o) => expect(o).toEqual([{ answer: "Ada", score: 0.87, start: 0, end: 3 }]),
  },
  conversational: { inputs: "hi there", parameters: { max_tokens: 64 }, check: (o) => expect(o.generated_text).toMatch(/you said 8 characters/) },
  "text-generation": { inputs: "Once upon a time", parameters: { max_new_tokens: 8 }, check: (o) => expect(o).toEqual({ generated_text: " and the story goes on." }) },
  "sentence-similarity": {
    inputs: { source_sentence: "a cat", sentences: ["a cat", "a dog"] },
    check: (o) => {
      expect(o).toHaveLength(2);
      expect(o[0]).toBeCloseTo(1, 4);
    },
  },
  "tabular-classification": { inputs: { data: { age: ["31", "42", "57"], income: [1, 2, 3] } }, check: (o) => expect(o).toEqual([0, 1, 0]) },
  "object-detection": { inputs: PNG, check: (o) => expect(o[0]).toEqual({ label: "cat", score: 0.98, box: { xmin: 0, ymin: 0, xmax: 1, ymax: 1 } }) },
  "image-classification": { inputs: PNG, check: (o) => expect(o.map((c: { label: string }) => c.label)).toEqual(["tabby cat", "tiger cat", "lynx"]) },
  "image-to-image": { inputs: PNG, parameters: { prompt: "make it blue" }, check: (o) => expectMedia(o.image, "image") },
  "image-to-text": { inputs: PNG, check: (o) => expect(o).toEqual({ generated_text: "a tiny grey test image" }) },
  "text-to-image": { inputs: "a lighthouse", parameters: { width: 64, height: 64 }, check: (o) => expectMedia(o.image, "image") },
  "text-to-video": { inputs: "a lighthouse at night", parameters: { num_frames: 8 }, check: (o) => expectMedia(o.video, "video") },
  "visual-question-answering": { inputs: { image: PNG, question: "Is it grey?" }, check: (o) => expect(o).toEqual([{ answer: "yes", score: 0.91 }]) },
  "document-question-answering": {
    inputs: { image: `data:image/png;base64,${PNG}`, question: "What is the total?" },
    check: (o) => expect(o).toEqual([{ answer: "42", score: 0.8, start: 3, end: 3 }]),
  },
  "image-segmentation": {
    inputs: PNG,
    parameters: { subtask: "semantic" },
    check: (o) => {
      expect(o[0].label).toBe("cat");
      expectMedia(o[0].mask, "image");
    },
  },
  "depth-estimation": {
    inputs: { type: "base64", data: PNG, mimeType: "image/png" },
    check: (o) => {
      expectMedia(o.depth, "image");
      expect(o.predicted_depth).toEqual([
        [0.5, 1.5],
        [2.5, 3.5],
      ]);
    },
  },
  "text-to-speech": { inputs: "hello world", check: (o) => expectMedia(o.audio, "audio") },
  "automatic-speech-recognition": { inputs: WAV, check: (o) => expect(o).toEqual({ text: "hello switchboard" }) },
  "audio-to-audio": {
    inputs: WAV,
    check: (o) => {
      expect(o[0].label).toBe("speech");
      expectMedia(o[0].audio, "audio");
    },
  },
  "audio-classification": { inputs: `data:audio/wav;base64,${WAV}`, check: (o) => expect(o[0].label).toBe("speech") },
  "text-classification": { inputs: "I love this", check: (o) => expect(o.map((c: { label: string }) => c.label)).toEqual(["POSITIVE", "NEGATIVE"]) },
  "feature-extraction": {
    inputs: ["one", "two"],
    check: (o) => {
      expect(o).toHaveLength(2);
      expect(o[0]).toHaveLength(8);
      expect(Math.hypot(...o[0])).toBeCloseTo(1, 4);
    },
  },
};

let fixture: WireFixture;
let engine: HfEngine;
const logger = captureLogger();

beforeAll(async () => {
  fixture = await startWireFixture();
  engine = new HfEngine({ settings: fixture.settings, models: fixture.models, logger });
});

afterAll(async () => {
  await fixture?.server.close();
});

describe.each([
  ["provider hf-inference, base URL pointed at the wire server", providerId, "provider"],
  ["endpointUrl", endpointId, "endpoint"],
] as const)("every task through %s", (_name, idOf, style) => {
  it.each([...TASK_NAMES])("%s", async (task) => {
    const testCase = CASES[task];
    const before = fixture.server.requests.length;
    const output = await engine.runTask(idOf(task), task, testCase.inputs as never, testCase.parameters as never, { logger });
    testCase.check(output);
    const requests = fixture.server.requests.slice(before);
    const inference = requests.filter((request) => request.style !== "hub");
    expect(inference).toHaveLength(1);
    expect(inference[0]!.style).toBe(style);
    expect(inference[0]!.model).toBe(hubModel(task, style === "provider" ? "p" : "e"));
    expect(inference[0]!.status).toBe(200);
    expect(inference[0]!.authorization).toBe(`Bearer ${TEST_TOKEN}`);
    if (style === "endpoint") expect(requests.some((request) => request.style === "hub")).toBe(false);
    expect(fixture.server.violations()).toEqual([]);
  });
});

describe("addressing details", () => {
  it("asks the Hub for the provider mapping once per model, then posts to the router route", async () => {
    const hub = fixture.server.requests.filter((request) => request.style === "hub" && request.model === hubModel("text-classification", "p"));
    expect(hub).toHaveLength(1);
    const posts = fixture.server.requests.filter((request) => request.style === "provider").map((request) => request.path);
    expect(posts).toContain("/hf-inference/models/acme/feature-extraction-p/pipeline/feature-extraction");
    expect(posts).toContain("/hf-inference/models/acme/sentence-similarity-p/pipeline/sentence-similarity");
    expect(posts).toContain("/hf-inference/models/acme/conversational-p/v1/chat/completions");
    expect(posts).toContain("/hf-inference/models/acme/text-generation-p/v1/completions");
    // No client function: the engine calls the same HTTP API itself.
    expect(posts).toContain("/hf-inference/models/acme/depth-estimation-p");
    expect(posts).toContain("/hf-inference/models/acme/text-to-video-p");
  });

  it("sends parameters the client would drop (binary tasks) in the spec's JSON form", async () => {
    const top = await engine.runTask(providerId("image-classification"), "image-classification", PNG, { top_k: 1 });
    expect(top).toHaveLength(1);
    const audio = await engine.runTask(endpointId("automatic-speech-recognition"), "automatic-speech-recognition", WAV, { return_timestamps: true });
    expect(audio.chunks?.[0]?.timestamp).toEqual([0, 0.1]);
    const last = fixture.server.requests.at(-1)!;
    expect(last.contentType).toMatch(/^application\/json/);
    expect(fixture.server.violations()).toEqual([]);
  });

  it("serves chat completions, streamed and not, in both styles and through the auto router", async () => {
    fixture.server.addModel("acme/router-chat", "conversational");
    const auto = new HfEngine({
      settings: fixture.settings,
      models: [{ ...fixture.models.find((model) => model.id === providerId("conversational"))!, id: "auto-chat", model: "acme/router-chat", provider: "auto" }],
    });
    for (const [chatEngine, id] of [
      [engine, providerId("conversational")],
      [engine, endpointId("conversational")],
      [auto, "auto-chat"],
    ] as const) {
      const output = await chatEngine.chatCompletion(id, { messages: [{ role: "user", content: "ping" }], max_tokens: 32 });
      expect(output.choices[0]!.message.content).toMatch(/you said 4 characters/);
      const chunks = [];
      for await (const chunk of chatEngine.chatCompletionStream(id, { messages: [{ role: "user", content: "ping" }], stream_options: { include_usage: true } })) chunks.push(chunk);
      const text = chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? "").join("");
      expect(text).toBe(output.choices[0]!.message.content);
      expect(chunks.at(-1)!.usage?.completion_tokens).toBeGreaterThan(0);
    }
    expect(fixture.server.requests.some((request) => request.style === "auto-router" && request.status === 200)).toBe(true);
    expect(fixture.server.violations()).toEqual([]);
  });

  it("embeds one string as one vector although the server answers [[...]]", async () => {
    const vectors = await engine.featureExtraction(providerId("feature-extraction"), ["only one"]);
    expect(vectors).toHaveLength(1);
    expect(vectors[0]).toHaveLength(8);
  });

  it("refuses a model used for another task before calling anyone", async () => {
    const before = fixture.server.requests.length;
    await expect(engine.runTask(providerId("translation"), "summarization", "x", undefined)).rejects.toMatchObject({ status: 400, code: "model_task_mismatch" });
    expect(fixture.server.requests.length).toBe(before);
  });

  it("refuses binary inputs that are not the media the task takes", async () => {
    await expect(engine.runTask(providerId("image-classification"), "image-classification", WAV, undefined)).rejects.toMatchObject({
      status: 400,
      code: "invalid_binary_input",
    });
    await expect(engine.runTask(providerId("image-classification"), "image-classification", "not base64 at all!", undefined)).rejects.toMatchObject({ status: 400 });
  });

  it("never logs the token", () => {
    expect(logger.lines.join("\n")).not.toContain(TEST_TOKEN);
  });
});

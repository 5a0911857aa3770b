/**
 * A Hugging Face world for gateway tests: a wire server (`@switchboard/hf-wire-server`,
 * which checks every request and answer against the @huggingface/tasks
 * specs) that knows two models per task, and the config file that points
 * Switchboard at it in both addressing styles:
 *
 * - `p-<task>`: provider `hf-inference`, with `huggingface.baseUrl` and
 *   `hubUrl` pointed at the wire server (Hub lookup, then the router route);
 * - `e-<task>`: `endpointUrl` at the wire server's endpoint path.
 *
 * `p-` models have more downloads, so they are each task's default and `e-`
 * models their fallbacks. The token comes from `HF_TOKEN` (see {@link hfEnv}).
 * Shared by the embedded tests and the fleet-mode tests of `apps/worker-hf`.
 */
import { expect } from "vitest";
import { TEST_PNG, TEST_WAV, sniffMedia, startHfWireServer, type WireServer } from "@switchboard/hf-wire-server";
import { TASK_NAMES, type TaskName } from "@switchboard/protocol";

/** Looks like a real token, so the client sends it to the router and the Hub. */
export const HF_TEST_TOKEN = "hf_GaTeWaYtEsTtOkEnAbCdEf0123456789";
/** A fixed artifact URL key, so tests can make expired or tampered URLs. */
export const ARTIFACT_TEST_SECRET = "artifact-secret-for-tests-0123456789";

export const providerId = (task: TaskName) => `p-${task}`;
export const endpointId = (task: TaskName) => `e-${task}`;
export const hubModel = (task: TaskName, style: "p" | "e") => `acme/${task}-${style}`;

export async function startSpecialistWire(): Promise<WireServer> {
  const models: Record<string, string> = {};
  for (const task of TASK_NAMES) {
    models[hubModel(task, "p")] = task;
    models[hubModel(task, "e")] = task;
  }
  return startHfWireServer({ token: HF_TEST_TOKEN, models });
}

/** The environment the processes under test get: the token and the artifact key come from here, as in production. */
export const hfEnv = { HF_TOKEN: HF_TEST_TOKEN, SWITCHBOARD_ARTIFACT_SECRET: ARTIFACT_TEST_SECRET };

/** Config file data (the file format) for every task in both styles, against `server`. */
export function specialistConfigData(server: WireServer, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const models = TASK_NAMES.flatMap((task) => [
    { id: providerId(task), backend: "hf", model: hubModel(task, "p"), task, downloads: 1000, timeoutMs: 5000 },
    {
      id: endpointId(task),
      backend: "hf",
      model: hubModel(task, "e"),
      task,
      endpointUrl: `${server.endpointBase}/${hubModel(task, "e")}`,
      sendToken: true,
      downloads: 10,
      timeoutMs: 5000,
    },
  ]);
  return {
    server: { host: "127.0.0.1", port: 0, logLevel: "debug" },
    models,
    huggingface: { baseUrl: server.url, hubUrl: server.url, backoffBaseMs: 1, backoffMaxMs: 5 },
    ...extra,
  };
}

export const PNG_BASE64 = TEST_PNG.toString("base64");
export const WAV_BASE64 = TEST_WAV.toString("base64");

/** Reads a binary output as the gateway answers it (artifact with URL, or inline base64) and checks its media kind. */
export async function expectMedia(value: any, kind: "image" | "audio" | "video"): Promise<Buffer> {
  let bytes: Buffer;
  if (value.type === "artifact") {
    expect(value.url).toMatch(/\/v1\/artifacts\/[0-9a-f]{64}\?expires=\d+&signature=/);
    // No API key: the signature is the capability.
    const response = await fetch(value.url);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(value.mimeType);
    bytes = Buffer.from(await response.arrayBuffer());
    expect(value.sha256).toBe(value.id);
  } else {
    expect(value.type).toBe("base64");
    bytes = Buffer.from(value.data, "base64");
  }
  expect(bytes.length).toBe(value.bytes);
  expect(sniffMedia(bytes)?.kind).toBe(kind);
  expect(value.mimeType.startsWith(`${kind}/`)).toBe(true);
  return bytes;
}

export interface TaskCase {
  inputs: unknown;
  parameters?: Record<string, unknown>;
  check(output: any): void | Promise<void>;
}

/** One request per task and what its output must be (the wire server's deterministic answers). */
export const TASK_CASES: { [T in TaskName]: TaskCase } = {
  "token-classification": { inputs: "Ada Lovelace wrote programs", check: (o) => expect(o[0]).toMatchObject({ entity_group: "PER", word: "Ada", start: 0, end: 3 }) },
  translation: { inputs: "hello", parameters: { tgt_lang: "de" }, check: (o) => expect(o).toEqual({ translation_text: "[de] hello" }) },
  summarization: { inputs: "one two three four five six seven", check: (o) => expect(o).toEqual({ summary_text: "one two three four five" }) },
  "question-answering": { inputs: { question: "Who?", context: "Ada wrote it" }, check: (o) => expect(o).toEqual([{ answer: "Ada", score: 0.87, start: 0, end: 3 }]) },
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
  "object-detection": { inputs: PNG_BASE64, check: (o) => expect(o[0]).toEqual({ label: "cat", score: 0.98, box: { xmin: 0, ymin: 0, xmax: 1, ymax: 1 } }) },
  "image-classification": { inputs: `data:image/png;base64,${PNG_BASE64}`, check: (o) => expect(o.map((c: { label: string }) => c.label)).toEqual(["tabby cat", "tiger cat", "lynx"]) },
  "image-to-image": { inputs: PNG_BASE64, parameters: { prompt: "make it blue" }, check: (o) => expectMedia(o.image, "image").then(() => undefined) },
  "image-to-text": { inputs: { type: "base64", data: PNG_BASE64, mimeType: "image/png" }, check: (o) => expect(o).toEqual({ generated_text: "a tiny grey test image" }) },
  "text-to-image": { inputs: "a lighthouse", parameters: { width: 64, height: 64 }, check: (o) => expectMedia(o.image, "image").then(() => undefined) },
  "text-to-video": { inputs: "a lighthouse at night", parameters: { num_frames: 8 }, check: (o) => expectMedia(o.video, "video").then(() => undefined) },
  "visual-question-answering": { inputs: { image: PNG_BASE64, question: "Is it grey?" }, check: (o) => expect(o).toEqual([{ answer: "yes", score: 0.91 }]) },
  "document-question-answering": {
    inputs: { image: `data:image/png;base64,${PNG_BASE64}`, question: "What is the total?" },
    check: (o) => expect(o).toEqual([{ answer: "42", score: 0.8, start: 3, end: 3 }]),
  },
  "image-segmentation": {
    inputs: PNG_BASE64,
    parameters: { subtask: "semantic" },
    check: async (o) => {
      expect(o[0].label).toBe("cat");
      await expectMedia(o[0].mask, "image");
    },
  },
  "depth-estimation": {
    inputs: PNG_BASE64,
    check: async (o) => {
      await expectMedia(o.depth, "image");
      expect(o.predicted_depth).toEqual([
        [0.5, 1.5],
        [2.5, 3.5],
      ]);
    },
  },
  "text-to-speech": { inputs: "hello world", check: (o) => expectMedia(o.audio, "audio").then(() => undefined) },
  "automatic-speech-recognition": { inputs: WAV_BASE64, check: (o) => expect(o).toEqual({ text: "hello switchboard" }) },
  "audio-to-audio": {
    inputs: WAV_BASE64,
    check: async (o) => {
      expect(o[0].label).toBe("speech");
      await expectMedia(o[0].audio, "audio");
    },
  },
  "audio-classification": { inputs: `data:audio/wav;base64,${WAV_BASE64}`, check: (o) => expect(o[0].label).toBe("speech") },
  "text-classification": { inputs: "I love this", check: (o) => expect(o.map((c: { label: string }) => c.label)).toEqual(["POSITIVE", "NEGATIVE"]) },
  "feature-extraction": {
    inputs: ["one", "two"],
    check: (o) => {
      expect(o).toHaveLength(2);
      expect(o[0]).toHaveLength(8);
    },
  },
};

/**
 * What each task looks like on the Hugging Face wire (hf-inference and
 * Inference Endpoints): which spec checks it, where binary inputs sit, what a
 * deterministic answer is, and how that answer is encoded (JSON in the shape
 * the client reads, or raw bytes).
 *
 * `specOutput` is the answer in the spec's shape (validated before sending);
 * `wire` is what goes on the wire, which for several tasks differs from the
 * spec in ways real servers do (nested arrays, one-element arrays, raw bytes).
 */
import { createHash } from "node:crypto";
import { makeMp4, makePng, makeWav, type MediaKind } from "./media.js";

export interface WireAnswer {
  /** The answer in the spec's output shape, validated before it is sent. */
  specOutput: unknown;
  /** What is sent. */
  wire: { contentType: string; body: Buffer };
}

export interface TaskWire {
  /** Name of the spec that checks it (an `@huggingface/tasks` folder or a local schema). */
  spec: string;
  /** Paths (in the spec input) holding binary data, and the media they must be. */
  binaryInputs: Array<{ path: string[]; kind: MediaKind }>;
  answer(input: Record<string, unknown>, model: string): WireAnswer;
}

const json = (value: unknown, specOutput: unknown = value): WireAnswer => ({
  specOutput,
  wire: { contentType: "application/json", body: Buffer.from(JSON.stringify(value)) },
});

const bytes = (contentType: string, body: Buffer, specOutput: unknown): WireAnswer => ({ specOutput, wire: { contentType, body } });

/** A deterministic number in [0, 1) from a text. */
export function hashUnit(text: string, salt = ""): number {
  return createHash("sha256").update(salt).update(text).digest().readUInt32BE(0) / 2 ** 32;
}

/** A deterministic unit-length embedding of a text. */
export function embed(text: string, dimensions = 8): number[] {
  const raw = Array.from({ length: dimensions }, (_, index) => hashUnit(text, String(index)) * 2 - 1);
  const norm = Math.hypot(...raw) || 1;
  return raw.map((value) => value / norm);
}

const round = (value: number) => Math.round(value * 1e6) / 1e6;

export const TEST_PNG = makePng(2, 2, (x, y) => (x + y) * 100);
export const TEST_WAV = makeWav();
export const TEST_MP4 = makeMp4();

const parameters = (input: Record<string, unknown>) => (input.parameters ?? {}) as Record<string, unknown>;
const text = (input: Record<string, unknown>) => String(input.inputs);

function topK<T>(items: T[], input: Record<string, unknown>): T[] {
  const k = parameters(input).top_k;
  return typeof k === "number" ? items.slice(0, k) : items;
}

const classify = (labels: string[], seed: string) => {
  const first = 0.6 + hashUnit(seed) * 0.3;
  return labels.map((label, index) => ({ label, score: round(index === 0 ? first : (1 - first) / (labels.length - 1)) }));
};

/** Task name → wire behaviour. `completions` and `chat` are handled by the server itself. */
export const TASK_WIRES: Record<string, TaskWire> = {
  "token-classification": {
    spec: "token-classification",
    binaryInputs: [],
    answer: (input) => {
      const word = text(input).split(/\s+/)[0] ?? "";
      return json([{ entity_group: "PER", score: 0.99, word, start: 0, end: word.length }]);
    },
  },
  translation: {
    spec: "translation",
    binaryInputs: [],
    // hf-inference answers with a one-element array; the spec describes the element.
    answer: (input) => {
      const output = { translation_text: `[${String(parameters(input).tgt_lang ?? "fr")}] ${text(input)}` };
      return json([output], output);
    },
  },
  summarization: {
    spec: "summarization",
    binaryInputs: [],
    answer: (input) => {
      const output = { summary_text: text(input).split(/\s+/).slice(0, 5).join(" ") };
      return json([output], output);
    },
  },
  "question-answering": {
    spec: "question-answering",
    binaryInputs: [],
    answer: (input) => {
      const context = String((input.inputs as Record<string, unknown>).context);
      const answer = context.split(/\s+/)[0] ?? "";
      return json([{ answer, score: 0.87, start: 0, end: answer.length }]);
    },
  },
  "sentence-similarity": {
    spec: "sentence-similarity",
    binaryInputs: [],
    answer: (input) => {
      const { source_sentence: source, sentences } = input.inputs as { source_sentence: string; sentences: string[] };
      const a = embed(source);
      return json(sentences.map((sentence) => round(embed(sentence).reduce((sum, value, index) => sum + value * a[index]!, 0))));
    },
  },
  "feature-extraction": {
    spec: "feature-extraction",
    binaryInputs: [],
    // Like TEI: a list of vectors even for a single string.
    answer: (input) => {
      const texts = Array.isArray(input.inputs) ? (input.inputs as string[]) : [String(input.inputs)];
      return json(texts.map((value) => embed(value).map(round)));
    },
  },
  "tabular-classification": {
    spec: "tabular-classification",
    binaryInputs: [],
    answer: (input) => {
      const columns = Object.values((input.inputs as { data: Record<string, unknown[]> }).data);
      const rows = columns[0]?.length ?? 0;
      return json(Array.from({ length: rows }, (_, index) => index % 2));
    },
  },
  "object-detection": {
    spec: "object-detection",
    binaryInputs: [{ path: ["inputs"], kind: "image" }],
    answer: () => json([{ label: "cat", score: 0.98, box: { xmin: 0, ymin: 0, xmax: 1, ymax: 1 } }]),
  },
  "image-classification": {
    spec: "image-classification",
    binaryInputs: [{ path: ["inputs"], kind: "image" }],
    answer: (input) => json(topK(classify(["tabby cat", "tiger cat", "lynx"], text(input)), input)),
  },
  "image-to-image": {
    spec: "image-to-image",
    binaryInputs: [{ path: ["inputs"], kind: "image" }],
    answer: () => bytes("image/png", TEST_PNG, { image: TEST_PNG.toString("base64") }),
  },
  "image-to-text": {
    spec: "image-to-text",
    binaryInputs: [{ path: ["inputs"], kind: "image" }],
    answer: () => json({ generated_text: "a tiny grey test image" }),
  },
  "text-to-image": {
    spec: "text-to-image",
    binaryInputs: [],
    answer: () => bytes("image/png", TEST_PNG, { image: TEST_PNG.toString("base64") }),
  },
  "text-to-video": {
    spec: "text-to-video",
    binaryInputs: [],
    answer: () => bytes("video/mp4", TEST_MP4, { video: TEST_MP4.toString("base64") }),
  },
  "visual-question-answering": {
    spec: "visual-question-answering",
    binaryInputs: [{ path: ["inputs", "image"], kind: "image" }],
    answer: () => json([{ answer: "yes", score: 0.91 }]),
  },
  "document-question-answering": {
    spec: "document-question-answering",
    binaryInputs: [{ path: ["inputs", "image"], kind: "image" }],
    answer: () => json([{ answer: "42", score: 0.8, start: 3, end: 3 }]),
  },
  "image-segmentation": {
    spec: "image-segmentation",
    binaryInputs: [{ path: ["inputs"], kind: "image" }],
    answer: () => json([{ label: "cat", mask: makePng(2, 2, (x) => (x ? 255 : 0)).toString("base64"), score: 0.9 }]),
  },
  "depth-estimation": {
    spec: "depth-estimation",
    binaryInputs: [{ path: ["inputs"], kind: "image" }],
    answer: () =>
      json({
        predicted_depth: [
          [0.5, 1.5],
          [2.5, 3.5],
        ],
        depth: makePng(2, 2, (x, y) => (x + 2 * y) * 80).toString("base64"),
      }),
  },
  "text-to-speech": {
    spec: "text-to-speech",
    binaryInputs: [],
    answer: () => bytes("audio/wav", TEST_WAV, { audio: TEST_WAV.toString("base64"), sampling_rate: 16000 }),
  },
  "automatic-speech-recognition": {
    spec: "automatic-speech-recognition",
    binaryInputs: [{ path: ["inputs"], kind: "audio" }],
    answer: (input) =>
      json(
        parameters(input).return_timestamps
          ? { text: "hello switchboard", chunks: [{ text: "hello switchboard", timestamp: [0, 0.1] }] }
          : { text: "hello switchboard" },
      ),
  },
  "audio-to-audio": {
    spec: "audio-to-audio",
    binaryInputs: [{ path: ["inputs"], kind: "audio" }],
    answer: () => json([{ label: "speech", blob: TEST_WAV.toString("base64"), "content-type": "audio/wav" }]),
  },
  "audio-classification": {
    spec: "audio-classification",
    binaryInputs: [{ path: ["inputs"], kind: "audio" }],
    answer: (input) => json(topK(classify(["speech", "music", "noise"], text(input)), input)),
  },
  "text-classification": {
    spec: "text-classification",
    binaryInputs: [],
    // hf-inference wraps the list once more: one list per input text.
    answer: (input) => {
      const output = topK(classify(["POSITIVE", "NEGATIVE"], text(input)), input);
      return json([output], output);
    },
  },
};

/** A chat answer from a deterministic text, in the chat-completion output shape (TGI: empty `id`). */
export function chatAnswerText(messages: Array<{ role: string; content?: unknown }>, model: string): string {
  const lastUser = [...messages].reverse().find((message) => message.role === "user");
  const content = typeof lastUser?.content === "string" ? lastUser.content : "";
  return `Hello from ${model}: you said ${content.length} characters.`;
}

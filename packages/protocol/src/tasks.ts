/**
 * Task jobs: the specialist tasks (Hugging Face pipeline tags, kebab-case) that
 * `POST /v1/tasks/{task}` serves and the router plans with. Request and
 * response schemas follow the input/output specs that `@huggingface/tasks`
 * ships (`src/tasks/<task>/spec/{input,output}.json`), with two deliberate
 * differences, both so that binary data has one shape everywhere:
 *
 * - binary inputs (`type=binary` in the specs) are a {@link BinaryInput}: a
 *   string (base64, a `data:` URL or an http(s) URL) or a tagged object;
 * - binary outputs (images, audio, video, masks, depth maps) are a
 *   {@link BinaryOutput}: inline base64 with a MIME type today, an artifact
 *   reference once the artifact store exists. Consumers switch on `type`.
 *
 * Everything here is plain JSON, so a task job can run in-process or travel
 * through Redis like any other job.
 */
import { Type, type Static, type TSchema } from "typebox";
import type { ErrorPayload } from "./errors.js";

/**
 * The tasks a remote specialist can serve: every task HuggingGPT plans with,
 * plus `feature-extraction` (embeddings). `conversational` is chat: its models
 * also serve `/v1/chat/completions`.
 */
export const TASK_NAMES = [
  "token-classification",
  "translation",
  "summarization",
  "question-answering",
  "conversational",
  "text-generation",
  "sentence-similarity",
  "tabular-classification",
  "object-detection",
  "image-classification",
  "image-to-image",
  "image-to-text",
  "text-to-image",
  "text-to-video",
  "visual-question-answering",
  "document-question-answering",
  "image-segmentation",
  "depth-estimation",
  "text-to-speech",
  "automatic-speech-recognition",
  "audio-to-audio",
  "audio-classification",
  "text-classification",
  "feature-extraction",
] as const;

/** A Hugging Face pipeline tag in kebab-case, as used in the catalog, the routes and the router's plans. */
export type TaskName = (typeof TASK_NAMES)[number];

export function isTaskName(value: string): value is TaskName {
  return (TASK_NAMES as readonly string[]).includes(value);
}

/** Kinds of data a task takes or produces; the router matches them between tasks. */
export type Modality = "text" | "image" | "audio" | "video" | "table" | "embedding";

/** What each task takes and produces, for the router and for `/v1/models`. */
export const TASK_MODALITIES: Record<TaskName, { in: Modality[]; out: Modality[] }> = {
  "token-classification": { in: ["text"], out: ["text"] },
  translation: { in: ["text"], out: ["text"] },
  summarization: { in: ["text"], out: ["text"] },
  "question-answering": { in: ["text"], out: ["text"] },
  conversational: { in: ["text"], out: ["text"] },
  "text-generation": { in: ["text"], out: ["text"] },
  "sentence-similarity": { in: ["text"], out: ["text"] },
  "tabular-classification": { in: ["table"], out: ["text"] },
  "object-detection": { in: ["image"], out: ["text"] },
  "image-classification": { in: ["image"], out: ["text"] },
  "image-to-image": { in: ["image", "text"], out: ["image"] },
  "image-to-text": { in: ["image"], out: ["text"] },
  "text-to-image": { in: ["text"], out: ["image"] },
  "text-to-video": { in: ["text"], out: ["video"] },
  "visual-question-answering": { in: ["image", "text"], out: ["text"] },
  "document-question-answering": { in: ["image", "text"], out: ["text"] },
  "image-segmentation": { in: ["image"], out: ["image", "text"] },
  "depth-estimation": { in: ["image"], out: ["image"] },
  "text-to-speech": { in: ["text"], out: ["audio"] },
  "automatic-speech-recognition": { in: ["audio"], out: ["text"] },
  "audio-to-audio": { in: ["audio"], out: ["audio"] },
  "audio-classification": { in: ["audio"], out: ["text"] },
  "text-classification": { in: ["text"], out: ["text"] },
  "feature-extraction": { in: ["text"], out: ["embedding"] },
};

// ---------------------------------------------------------------------------
// Binary data

/**
 * A binary input (image, audio, document). A string is base64, a `data:` URL,
 * or an http(s) URL (fetched by the engine with SSRF checks); the tagged forms
 * say which explicitly. `artifact` names an output of an earlier task.
 */
export const BinaryInputSchema = Type.Union(
  [
    Type.String({ minLength: 1, description: "Base64 bytes, a data: URL, or an http(s) URL." }),
    Type.Object({
      type: Type.Literal("base64"),
      data: Type.String({ description: "Base64 bytes." }),
      mimeType: Type.Optional(Type.String()),
    }),
    Type.Object({ type: Type.Literal("url"), url: Type.String({ description: "An http(s) URL, fetched with SSRF checks." }) }),
    Type.Object({ type: Type.Literal("artifact"), id: Type.String({ description: "An artifact produced by an earlier task." }) }),
  ],
  { description: "Binary input: base64, a data: URL, an http(s) URL, or a tagged object." },
);
export type BinaryInput = Static<typeof BinaryInputSchema>;

/**
 * A binary output. Engines return `base64` for now; when the artifact store
 * exists the same field carries an `artifact` reference instead.
 */
export const BinaryOutputSchema = Type.Union([
  Type.Object({
    type: Type.Literal("base64"),
    mimeType: Type.String(),
    /** Base64 of the bytes. */
    data: Type.String(),
    /** Size of the decoded bytes. */
    bytes: Type.Integer({ minimum: 0 }),
  }),
  Type.Object({
    type: Type.Literal("artifact"),
    mimeType: Type.String(),
    bytes: Type.Integer({ minimum: 0 }),
    /** Content address (hex SHA-256 of the bytes). */
    sha256: Type.String(),
    id: Type.String(),
    /** Unguessable, expiring URL the gateway serves it at. */
    url: Type.Optional(Type.String()),
    /** Epoch milliseconds after which `url` stops working. */
    expiresAt: Type.Optional(Type.Integer()),
  }),
]);
export type BinaryOutput = Static<typeof BinaryOutputSchema>;

// ---------------------------------------------------------------------------
// Shared pieces (from @huggingface/tasks common-definitions.json)

const ClassificationOutputTransform = Type.Union([Type.Literal("sigmoid"), Type.Literal("softmax"), Type.Literal("none")]);
const Classifications = Type.Array(Type.Object({ label: Type.String(), score: Type.Number() }));
const ClassificationParameters = Type.Object({
  function_to_apply: Type.Optional(ClassificationOutputTransform),
  top_k: Type.Optional(Type.Integer({ minimum: 1 })),
});
const Truncation = Type.Union([
  Type.Literal("do_not_truncate"),
  Type.Literal("longest_first"),
  Type.Literal("only_first"),
  Type.Literal("only_second"),
]);
const GenerationParameters = Type.Record(Type.String(), Type.Unknown(), {
  description: "Generation settings passed to the model (temperature, top_k, max_new_tokens, ...).",
});
const Text = Type.String({ minLength: 1 });

function request<I extends TSchema, P extends TSchema>(inputs: I, parameters: P, description: string) {
  return Type.Object(
    {
      model: Type.Optional(Type.String({ description: "Catalog id; the catalog's default model for the task when absent." })),
      inputs,
      parameters: Type.Optional(parameters),
    },
    { description },
  );
}

// ---------------------------------------------------------------------------
// Requests: `{model?, inputs, parameters?}` per task

export const TaskRequestSchemas = {
  "token-classification": request(
    Text,
    Type.Object({
      ignore_labels: Type.Optional(Type.Array(Type.String())),
      stride: Type.Optional(Type.Integer({ minimum: 0 })),
      aggregation_strategy: Type.Optional(
        Type.Union([Type.Literal("none"), Type.Literal("simple"), Type.Literal("first"), Type.Literal("average"), Type.Literal("max")]),
      ),
    }),
    "Named entities and other token labels in a text.",
  ),
  translation: request(
    Text,
    Type.Object({
      src_lang: Type.Optional(Type.String()),
      tgt_lang: Type.Optional(Type.String()),
      clean_up_tokenization_spaces: Type.Optional(Type.Boolean()),
      truncation: Type.Optional(Truncation),
      generate_parameters: Type.Optional(GenerationParameters),
    }),
    "Translate a text.",
  ),
  summarization: request(
    Text,
    Type.Object({
      clean_up_tokenization_spaces: Type.Optional(Type.Boolean()),
      truncation: Type.Optional(Truncation),
      generate_parameters: Type.Optional(GenerationParameters),
    }),
    "Summarize a text.",
  ),
  "question-answering": request(
    Type.Object({ question: Text, context: Text }),
    Type.Object({
      top_k: Type.Optional(Type.Integer({ minimum: 1 })),
      doc_stride: Type.Optional(Type.Integer({ minimum: 0 })),
      max_answer_len: Type.Optional(Type.Integer({ minimum: 1 })),
      max_seq_len: Type.Optional(Type.Integer({ minimum: 1 })),
      max_question_len: Type.Optional(Type.Integer({ minimum: 1 })),
      handle_impossible_answer: Type.Optional(Type.Boolean()),
      align_to_words: Type.Optional(Type.Boolean()),
    }),
    "Extract the answer to a question from a context.",
  ),
  conversational: request(
    Type.Union([
      Text,
      Type.Array(
        Type.Object({
          role: Type.Union([Type.Literal("system"), Type.Literal("user"), Type.Literal("assistant")]),
          content: Type.String(),
        }),
        { minItems: 1 },
      ),
    ]),
    Type.Object({
      max_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
      temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
      top_p: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
      seed: Type.Optional(Type.Integer({ minimum: 0 })),
      stop: Type.Optional(Type.Array(Type.String(), { maxItems: 4 })),
    }),
    "One chat turn: a user message (string) or a whole conversation; answered by a chat model.",
  ),
  "text-generation": request(
    Text,
    Type.Object({
      max_new_tokens: Type.Optional(Type.Integer({ minimum: 1 })),
      temperature: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
      top_p: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
      top_k: Type.Optional(Type.Integer({ minimum: 1 })),
      seed: Type.Optional(Type.Integer({ minimum: 0 })),
      stop: Type.Optional(Type.Array(Type.String(), { maxItems: 4 })),
      do_sample: Type.Optional(Type.Boolean()),
      repetition_penalty: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
      return_full_text: Type.Optional(Type.Boolean()),
    }),
    "Continue a text.",
  ),
  "sentence-similarity": request(
    Type.Object({ source_sentence: Text, sentences: Type.Array(Text, { minItems: 1 }) }),
    Type.Object({}),
    "Similarity of each sentence to the source sentence.",
  ),
  "tabular-classification": request(
    Type.Object({
      data: Type.Record(Type.String(), Type.Array(Type.Union([Type.String(), Type.Number()])), {
        description: "Columns by name; row i is the i-th value of every column.",
      }),
    }),
    Type.Object({}),
    "Classify the rows of a table.",
  ),
  "object-detection": request(BinaryInputSchema, Type.Object({ threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })) }), "Objects and their boxes in an image."),
  "image-classification": request(BinaryInputSchema, ClassificationParameters, "Labels for an image."),
  "image-to-image": request(
    BinaryInputSchema,
    Type.Object({
      prompt: Type.Optional(Type.String({ description: "What to change: image editing is image-to-image with a prompt." })),
      guidance_scale: Type.Optional(Type.Number()),
      negative_prompt: Type.Optional(Type.String()),
      num_inference_steps: Type.Optional(Type.Integer({ minimum: 1 })),
      target_size: Type.Optional(Type.Object({ width: Type.Integer({ minimum: 1 }), height: Type.Integer({ minimum: 1 }) })),
    }),
    "Transform an image, optionally guided by a prompt.",
  ),
  "image-to-text": request(
    BinaryInputSchema,
    Type.Object({ max_new_tokens: Type.Optional(Type.Integer({ minimum: 1 })), generation_parameters: Type.Optional(GenerationParameters) }),
    "Caption an image.",
  ),
  "text-to-image": request(
    Text,
    Type.Object({
      guidance_scale: Type.Optional(Type.Number()),
      negative_prompt: Type.Optional(Type.String()),
      num_inference_steps: Type.Optional(Type.Integer({ minimum: 1 })),
      width: Type.Optional(Type.Integer({ minimum: 1 })),
      height: Type.Optional(Type.Integer({ minimum: 1 })),
      scheduler: Type.Optional(Type.String()),
      seed: Type.Optional(Type.Integer({ minimum: 0 })),
    }),
    "Generate an image from a prompt.",
  ),
  "text-to-video": request(
    Text,
    Type.Object({
      num_frames: Type.Optional(Type.Number({ minimum: 1 })),
      guidance_scale: Type.Optional(Type.Number()),
      negative_prompt: Type.Optional(Type.Array(Type.String())),
      num_inference_steps: Type.Optional(Type.Integer({ minimum: 1 })),
      seed: Type.Optional(Type.Integer({ minimum: 0 })),
    }),
    "Generate a video from a prompt.",
  ),
  "visual-question-answering": request(
    Type.Object({ image: BinaryInputSchema, question: Text }),
    Type.Object({ top_k: Type.Optional(Type.Integer({ minimum: 1 })) }),
    "Answer a question about an image.",
  ),
  "document-question-answering": request(
    Type.Object({ image: BinaryInputSchema, question: Text }),
    Type.Object({
      doc_stride: Type.Optional(Type.Integer({ minimum: 0 })),
      handle_impossible_answer: Type.Optional(Type.Boolean()),
      lang: Type.Optional(Type.String()),
      max_answer_len: Type.Optional(Type.Integer({ minimum: 1 })),
      max_seq_len: Type.Optional(Type.Integer({ minimum: 1 })),
      max_question_len: Type.Optional(Type.Integer({ minimum: 1 })),
      top_k: Type.Optional(Type.Integer({ minimum: 1 })),
    }),
    "Answer a question about a document image.",
  ),
  "image-segmentation": request(
    BinaryInputSchema,
    Type.Object({
      mask_threshold: Type.Optional(Type.Number()),
      overlap_mask_area_threshold: Type.Optional(Type.Number()),
      subtask: Type.Optional(Type.Union([Type.Literal("instance"), Type.Literal("panoptic"), Type.Literal("semantic")])),
      threshold: Type.Optional(Type.Number()),
    }),
    "Segment an image into labelled masks.",
  ),
  "depth-estimation": request(BinaryInputSchema, Type.Object({}), "Estimate the depth of every pixel of an image."),
  "text-to-speech": request(Text, Type.Object({ generation_parameters: Type.Optional(GenerationParameters) }), "Speak a text."),
  "automatic-speech-recognition": request(
    BinaryInputSchema,
    Type.Object({ return_timestamps: Type.Optional(Type.Boolean()), generation_parameters: Type.Optional(GenerationParameters) }),
    "Transcribe speech.",
  ),
  "audio-to-audio": request(BinaryInputSchema, Type.Object({}), "Transform audio (speech enhancement, source separation)."),
  "audio-classification": request(BinaryInputSchema, ClassificationParameters, "Labels for an audio clip."),
  "text-classification": request(Text, ClassificationParameters, "Labels for a text."),
  "feature-extraction": request(
    Type.Union([Text, Type.Array(Text, { minItems: 1 })]),
    Type.Object({
      normalize: Type.Optional(Type.Boolean()),
      truncate: Type.Optional(Type.Boolean()),
      truncation_direction: Type.Optional(Type.Union([Type.Literal("left"), Type.Literal("right")])),
      prompt_name: Type.Optional(Type.String()),
    }),
    "Embedding vectors, one per input text.",
  ),
} satisfies Record<TaskName, TSchema>;

// ---------------------------------------------------------------------------
// Responses

const Answer = Type.Object({ answer: Type.String(), score: Type.Number(), start: Type.Integer(), end: Type.Integer() });

export const TaskOutputSchemas = {
  "token-classification": Type.Array(
    Type.Object({
      entity_group: Type.Optional(Type.String()),
      entity: Type.Optional(Type.String()),
      score: Type.Number(),
      word: Type.String(),
      start: Type.Integer(),
      end: Type.Integer(),
    }),
  ),
  translation: Type.Object({ translation_text: Type.String() }),
  summarization: Type.Object({ summary_text: Type.String() }),
  "question-answering": Type.Array(Answer),
  conversational: Type.Object({
    generated_text: Type.String(),
    finish_reason: Type.Optional(Type.String()),
    usage: Type.Optional(
      Type.Object({ prompt_tokens: Type.Integer({ minimum: 0 }), completion_tokens: Type.Integer({ minimum: 0 }), total_tokens: Type.Integer({ minimum: 0 }) }),
    ),
  }),
  "text-generation": Type.Object({ generated_text: Type.String() }),
  "sentence-similarity": Type.Array(Type.Number()),
  "tabular-classification": Type.Array(Type.Number()),
  "object-detection": Type.Array(
    Type.Object({
      label: Type.String(),
      score: Type.Number(),
      box: Type.Object({ xmin: Type.Integer(), xmax: Type.Integer(), ymin: Type.Integer(), ymax: Type.Integer() }),
    }),
  ),
  "image-classification": Classifications,
  "image-to-image": Type.Object({ image: BinaryOutputSchema }),
  "image-to-text": Type.Object({ generated_text: Type.String() }),
  "text-to-image": Type.Object({ image: BinaryOutputSchema }),
  "text-to-video": Type.Object({ video: BinaryOutputSchema }),
  "visual-question-answering": Type.Array(Type.Object({ answer: Type.String(), score: Type.Number() })),
  "document-question-answering": Type.Array(Answer),
  "image-segmentation": Type.Array(
    Type.Object({ label: Type.String(), mask: BinaryOutputSchema, score: Type.Optional(Type.Number()) }, { description: "The spec's base64 PNG mask as a binary output." }),
  ),
  "depth-estimation": Type.Object({
    depth: BinaryOutputSchema,
    predicted_depth: Type.Optional(Type.Array(Type.Array(Type.Number()), { description: "Depth per pixel, rows of columns." })),
  }),
  "text-to-speech": Type.Object({ audio: BinaryOutputSchema, sampling_rate: Type.Optional(Type.Number()) }),
  "automatic-speech-recognition": Type.Object({
    text: Type.String(),
    chunks: Type.Optional(Type.Array(Type.Object({ text: Type.String(), timestamp: Type.Array(Type.Number(), { minItems: 2, maxItems: 2 }) }))),
  }),
  "audio-to-audio": Type.Array(Type.Object({ label: Type.String(), audio: BinaryOutputSchema })),
  "audio-classification": Classifications,
  "text-classification": Classifications,
  "feature-extraction": Type.Array(Type.Array(Type.Number())),
} satisfies Record<TaskName, TSchema>;

/** The request body of `POST /v1/tasks/{task}` for task `T`. */
export type TaskRequest<T extends TaskName = TaskName> = { [K in TaskName]: Static<(typeof TaskRequestSchemas)[K]> }[T];
/** What task `T` answers. */
export type TaskOutput<T extends TaskName = TaskName> = { [K in TaskName]: Static<(typeof TaskOutputSchemas)[K]> }[T];
export type TaskInputs<T extends TaskName = TaskName> = TaskRequest<T>["inputs"];
export type TaskParameters<T extends TaskName = TaskName> = NonNullable<TaskRequest<T>["parameters"]>;

// ---------------------------------------------------------------------------
// Jobs and events

/** The task-specific part of a {@link TaskJob}: a union over tasks, so `task` narrows `inputs`. */
export type TaskJobPayload = {
  [T in TaskName]: { task: T; inputs: TaskInputs<T>; parameters?: TaskParameters<T> };
}[TaskName];

/**
 * A specialist task. Same envelope as the other jobs (`id`, `requestId`,
 * `model`, `deadlineAt`); `kind: "task"`.
 */
export type TaskJob = {
  kind: "task";
  /** Made by the gateway; never taken from a client. */
  id: string;
  requestId: string;
  /** Catalog id of the model (aliases already resolved). */
  model: string;
  /** Epoch milliseconds after which the job is worthless. */
  deadlineAt?: number;
  /**
   * Catalog ids to try, in order, when `model` is unavailable (loading,
   * circuit open, failing upstream). Absent: no fallback, the error is the
   * answer.
   */
  fallbackModels?: string[];
} & TaskJobPayload;

/** The answer to a task job; `model` is the catalog id that produced it (a fallback may have). */
export type TaskResultEvent = {
  [T in TaskName]: { type: "task-result"; task: T; model: string; output: TaskOutput<T> };
}[TaskName];

/** What an engine streams back for a task job: `accepted` then `task-result`, or a single `error`. */
export type TaskJobEvent =
  | { type: "accepted"; jobId: string; model: string; promptTokens: number; worker?: string }
  | TaskResultEvent
  | { type: "error"; error: ErrorPayload };

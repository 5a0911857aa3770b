/**
 * One function per task. Each takes the task's inputs and parameters (in the
 * `@huggingface/tasks` shapes, see `packages/protocol/src/tasks.ts`), calls
 * the injected `InferenceClient` (or, where the client has no function or
 * drops the parameters, the same HTTP API through the same owned fetch), and
 * returns the task's output shape. The engine checks every output against
 * the protocol schema afterwards; the checks here are the ones a schema
 * cannot make (is this really an image, one score per sentence, ...).
 */
import type { InferenceClient } from "@huggingface/inference";
import type { BinaryOutput, TaskInputs, TaskName, TaskParameters } from "@switchboard/protocol";
import { decodeBase64, sniffMedia, toBinaryOutput, toBlob, type BinaryData, type MediaKind } from "./binary-data.js";
import { upstreamBadResponse } from "./upstream-errors.js";
import type { ExpectedBody } from "./upstream-fetch.js";

/** Arguments every client call gets: where the model is, and the token when it may be sent. */
export interface HfCallArgs {
  model: string;
  provider?: string;
  endpointUrl?: string;
  accessToken?: string;
}

/** Everything a task function needs for one call. */
export interface TaskCall {
  client: InferenceClient;
  args: HfCallArgs;
  /** The client's options on every call: the owned fetch, the signal, and never the client's own retries. */
  options: { fetch: typeof fetch; signal?: AbortSignal; retry_on_error: false };
  /** Where direct HTTP calls go: the endpoint URL, or the model's hf-inference route on the router. */
  directUrl: string;
  /** Catalog id, for messages. */
  model: string;
  /** Resolves a binary input to checked bytes. */
  binary(input: TaskInputs<"image-classification">, kind: MediaKind, param: string): Promise<BinaryData>;
}

/** Returns the raw answer; the engine validates it against the task's output schema before anyone trusts its type. */
type Runner<T extends TaskName> = (call: TaskCall, inputs: TaskInputs<T>, parameters: TaskParameters<T> | undefined) => Promise<unknown>;

/** The client's task functions are typed per provider; this is the one cast that bridges our plain args to them. */
type AnyArgs = never;
const args = (call: TaskCall, extra: Record<string, unknown>): AnyArgs => ({ ...call.args, ...extra }) as unknown as AnyArgs;

const hasParameters = (parameters: object | undefined): parameters is object => !!parameters && Object.keys(parameters).length > 0;

/** A POST to the model's HTTP API through the owned fetch, for what the client cannot do. */
async function direct(call: TaskCall, body: Record<string, unknown>): Promise<{ json?: unknown; bytes?: Uint8Array; contentType: string }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (call.args.accessToken) headers.authorization = `Bearer ${call.args.accessToken}`;
  const response = await call.options.fetch(call.directUrl, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    ...(call.options.signal ? { signal: call.options.signal } : {}),
  });
  // The owned fetch has already refused error statuses and unusable bodies.
  const contentType = response.headers.get("content-type") ?? "";
  if (contentType.includes("json")) return { json: await response.json(), contentType };
  return { bytes: new Uint8Array(await response.arrayBuffer()), contentType };
}

const base64 = (data: BinaryData) => Buffer.from(data.bytes).toString("base64");

async function mediaFromBlob(call: TaskCall, value: unknown, kind: MediaKind): Promise<BinaryOutput> {
  if (!(value instanceof Blob)) throw upstreamBadResponse(call.model, `JSON where ${kind} data was expected`);
  return mediaFromBytes(call, new Uint8Array(await value.arrayBuffer()), kind, value.type);
}

function mediaFromBytes(call: TaskCall, bytes: Uint8Array | undefined, kind: MediaKind, declaredType?: string): BinaryOutput {
  if (!bytes || sniffMedia(bytes)?.kind !== kind) throw upstreamBadResponse(call.model, `the ${kind} it returned is not a recognised ${kind} format`);
  return toBinaryOutput(bytes, declaredType);
}

function mediaFromBase64(call: TaskCall, value: unknown, kind: MediaKind, what: string): BinaryOutput {
  const bytes = typeof value === "string" ? decodeBase64(value) : undefined;
  if (!bytes) throw upstreamBadResponse(call.model, `${what} is not base64 ${kind} data`);
  return mediaFromBytes(call, bytes, kind);
}

/**
 * Binary-input tasks whose client function sends the raw bytes and drops
 * `parameters`: with parameters, send the spec's JSON form (`{inputs: base64,
 * parameters}`) to the same API instead.
 */
async function binaryTask<T>(call: TaskCall, data: BinaryData, parameters: object | undefined, viaClient: (blob: Blob) => Promise<T>): Promise<T> {
  if (!hasParameters(parameters)) return viaClient(toBlob(data));
  const { json } = await direct(call, { inputs: base64(data), parameters });
  if (json === undefined) throw upstreamBadResponse(call.model, "media where JSON was expected");
  return json as T;
}

/** Rows of vectors, one per input text; refuses token-level (unpooled) embeddings. */
export function normalizeEmbeddings(call: Pick<TaskCall, "model">, output: unknown, count: number): number[][] {
  const isVector = (value: unknown): value is number[] => Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === "number");
  let rows: unknown[] | undefined;
  if (isVector(output) && count === 1) rows = [output];
  else if (Array.isArray(output)) rows = output;
  if (!rows || !rows.every(isVector)) {
    const tokenLevel = Array.isArray(rows) && rows.some((row) => Array.isArray(row) && row.some(Array.isArray));
    throw upstreamBadResponse(call.model, tokenLevel ? "token embeddings instead of one vector per text (the model is not pooled)" : "embeddings of the wrong shape");
  }
  if (rows.length !== count) throw upstreamBadResponse(call.model, `${rows.length} embeddings for ${count} texts`);
  return rows;
}

const first = <T>(call: TaskCall, value: T | T[]): T => {
  const element = Array.isArray(value) ? value[0] : value;
  if (element === undefined || element === null) throw upstreamBadResponse(call.model, "an empty answer");
  return element;
};

export const TASK_RUNNERS: { [T in TaskName]: Runner<T> } = {
  "token-classification": async (call, inputs, parameters) => call.client.tokenClassification(args(call, { inputs, parameters }), call.options),

  translation: async (call, inputs, parameters) => first(call, await call.client.translation(args(call, { inputs, parameters }), call.options)),

  summarization: async (call, inputs, parameters) => call.client.summarization(args(call, { inputs, parameters }), call.options),

  "question-answering": async (call, inputs, parameters) => [await call.client.questionAnswering(args(call, { inputs, parameters }), call.options)],

  conversational: async (call, inputs, parameters) => {
    const messages = typeof inputs === "string" ? [{ role: "user", content: inputs }] : inputs;
    const output = await call.client.chatCompletion(args(call, { messages, ...(parameters ?? {}) }), call.options);
    const choice = output?.choices?.[0];
    if (!choice?.message) throw upstreamBadResponse(call.model, "a chat answer without a message");
    const content = choice.message.content;
    if (typeof content !== "string" && !choice.message.tool_calls) throw upstreamBadResponse(call.model, "a chat message without content");
    return {
      generated_text: typeof content === "string" ? content : "",
      ...(typeof choice.finish_reason === "string" ? { finish_reason: choice.finish_reason } : {}),
      ...(output.usage ? { usage: output.usage } : {}),
    };
  },

  "text-generation": async (call, inputs, parameters) => call.client.textGeneration(args(call, { inputs, parameters }), call.options),

  "sentence-similarity": async (call, inputs) => {
    const scores = await call.client.sentenceSimilarity(args(call, { inputs }), call.options);
    if (Array.isArray(scores) && scores.length !== inputs.sentences.length) throw upstreamBadResponse(call.model, `${scores.length} scores for ${inputs.sentences.length} sentences`);
    return scores;
  },

  "tabular-classification": async (call, inputs) => {
    const rows = Object.values(inputs.data)[0]?.length ?? 0;
    const labels = await call.client.tabularClassification(args(call, { inputs }), call.options);
    if (Array.isArray(labels) && labels.length !== rows) throw upstreamBadResponse(call.model, `${labels.length} predictions for ${rows} rows`);
    return labels;
  },

  "object-detection": async (call, inputs, parameters) => {
    const image = await call.binary(inputs, "image", "inputs");
    return binaryTask(call, image, parameters, (blob) => call.client.objectDetection(args(call, { inputs: blob }), call.options));
  },

  "image-classification": async (call, inputs, parameters) => {
    const image = await call.binary(inputs, "image", "inputs");
    return binaryTask(call, image, parameters, (blob) => call.client.imageClassification(args(call, { inputs: blob }), call.options));
  },

  "image-to-image": async (call, inputs, parameters) => {
    const image = await call.binary(inputs, "image", "inputs");
    const output = await call.client.imageToImage(args(call, { inputs: toBlob(image), ...(hasParameters(parameters) ? { parameters } : {}) }), call.options);
    return { image: await mediaFromBlob(call, output, "image") };
  },

  "image-to-text": async (call, inputs, parameters) => {
    const image = await call.binary(inputs, "image", "inputs");
    return binaryTask(call, image, parameters, (blob) => call.client.imageToText(args(call, { inputs: blob }), call.options));
  },

  "text-to-image": async (call, inputs, parameters) => {
    const output: unknown = await call.client.textToImage(args(call, { inputs, parameters }), { ...call.options, outputType: "blob" });
    return { image: await mediaFromBlob(call, output, "image") };
  },

  // No client function for hf-inference or endpoints: the same HTTP API, through the same fetch.
  "text-to-video": async (call, inputs, parameters) => {
    const { bytes, contentType } = await direct(call, { inputs, ...(hasParameters(parameters) ? { parameters } : {}) });
    return { video: mediaFromBytes(call, bytes, "video", contentType) };
  },

  "visual-question-answering": async (call, inputs, parameters) => {
    const image = await call.binary(inputs.image, "image", "inputs.image");
    return [await call.client.visualQuestionAnswering(args(call, { inputs: { image: toBlob(image), question: inputs.question }, parameters }), call.options)];
  },

  "document-question-answering": async (call, inputs, parameters) => {
    const image = await call.binary(inputs.image, "image", "inputs.image");
    return [await call.client.documentQuestionAnswering(args(call, { inputs: { image: toBlob(image), question: inputs.question }, parameters }), call.options)];
  },

  "image-segmentation": async (call, inputs, parameters) => {
    const image = await call.binary(inputs, "image", "inputs");
    const segments = await call.client.imageSegmentation(args(call, { inputs: toBlob(image), parameters }), call.options);
    return segments.map((segment) => ({
      label: segment.label,
      mask: mediaFromBase64(call, segment.mask, "image", "a segment mask"),
      ...(typeof segment.score === "number" ? { score: segment.score } : {}),
    }));
  },

  // The client has no depth-estimation function: the same HTTP API, through the same fetch.
  "depth-estimation": async (call, inputs) => {
    const image = await call.binary(inputs, "image", "inputs");
    const { json } = await direct(call, { inputs: base64(image) });
    const output = json as { depth?: unknown; predicted_depth?: unknown } | undefined;
    if (!output || typeof output !== "object") throw upstreamBadResponse(call.model, "no depth map");
    return {
      depth: mediaFromBase64(call, output.depth, "image", "the depth map"),
      ...(Array.isArray(output.predicted_depth) ? { predicted_depth: output.predicted_depth as number[][] } : {}),
    };
  },

  "text-to-speech": async (call, inputs, parameters) => {
    const output: unknown = await call.client.textToSpeech(args(call, { inputs, parameters }), call.options);
    return { audio: await mediaFromBlob(call, output, "audio") };
  },

  "automatic-speech-recognition": async (call, inputs, parameters) => {
    const audio = await call.binary(inputs, "audio", "inputs");
    return binaryTask(call, audio, parameters, (blob) => call.client.automaticSpeechRecognition(args(call, { inputs: blob }), call.options));
  },

  "audio-to-audio": async (call, inputs) => {
    const audio = await call.binary(inputs, "audio", "inputs");
    const outputs = await call.client.audioToAudio(args(call, { inputs: toBlob(audio) }), call.options);
    return outputs.map((output) => ({ label: output.label, audio: mediaFromBase64(call, output.blob, "audio", `the '${output.label}' audio`) }));
  },

  "audio-classification": async (call, inputs, parameters) => {
    const audio = await call.binary(inputs, "audio", "inputs");
    return binaryTask(call, audio, parameters, (blob) => call.client.audioClassification(args(call, { inputs: blob }), call.options));
  },

  "text-classification": async (call, inputs, parameters) => call.client.textClassification(args(call, { inputs, parameters }), call.options),

  "feature-extraction": async (call, inputs, parameters) => {
    const texts = typeof inputs === "string" ? [inputs] : inputs;
    const output = await call.client.featureExtraction(args(call, { inputs, ...(parameters ?? {}) }), call.options);
    return normalizeEmbeddings(call, output, texts.length);
  },
};

/** What a successful response of each task must be, for the owned fetch's checks. */
export const TASK_RESPONSE_BODY: Record<TaskName, ExpectedBody> = Object.fromEntries(
  Object.keys(TASK_RUNNERS).map((task) => [task, ["text-to-image", "image-to-image", "text-to-speech", "text-to-video"].includes(task) ? "binary" : "json"]),
) as Record<TaskName, ExpectedBody>;

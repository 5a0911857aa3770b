/**
 * Argument names and modalities of every task the router plans with. Keys
 * follow HuggingGPT (`text`, `image`, `audio`) where a task takes one input
 * of each modality; tasks that take two texts name them after the Hugging
 * Face spec (`question`/`context`, `source_sentence`/`sentence`).
 */
import { TASK_MODALITIES, TASK_NAMES, type Modality, type TaskName } from "@switchboard/protocol";
import type { TaskInputSpec, TaskSignature } from "./types.js";

const text = (name = "text", description?: string): TaskInputSpec => ({ name, modality: "text", ...(description ? { description } : {}) });
const image: TaskInputSpec = { name: "image", modality: "image" };
const audio: TaskInputSpec = { name: "audio", modality: "audio" };

const INPUTS: Record<TaskName, TaskInputSpec[]> = {
  "token-classification": [text()],
  translation: [text()],
  summarization: [text()],
  "question-answering": [text("question"), text("context")],
  conversational: [text()],
  "text-generation": [text()],
  "sentence-similarity": [text("source_sentence"), text("sentence")],
  "tabular-classification": [{ name: "table", modality: "table", description: "CSV with a header row, or JSON columns" }],
  "object-detection": [image],
  "image-classification": [image],
  "image-to-image": [image, { name: "text", modality: "text", optional: true, description: "what to change" }],
  "image-to-text": [image],
  "text-to-image": [text()],
  "text-to-video": [text()],
  "visual-question-answering": [image, text("text", "the question")],
  "document-question-answering": [image, text("text", "the question")],
  "image-segmentation": [image],
  "depth-estimation": [image],
  "text-to-speech": [text()],
  "automatic-speech-recognition": [audio],
  "audio-to-audio": [audio],
  "audio-classification": [audio],
  "text-classification": [text()],
  "feature-extraction": [text()],
};

/** Short hints for the planner's prompt, only where the task name does not say it all (every character is a prompt token). */
const DESCRIPTIONS: Partial<Record<TaskName, string>> = {
  "token-classification": "named entities, part-of-speech tags",
  conversational: "chat reply",
  "text-generation": "write or continue a text",
  "tabular-classification": "classify table rows",
  "image-to-image": "edit an image as the text says",
  "image-to-text": "caption an image or read its text",
  "document-question-answering": "question about a document image",
  "image-segmentation": "labelled masks",
  "audio-to-audio": "enhance or separate audio",
  "text-classification": "sentiment, topic",
  "feature-extraction": "embeddings",
};

/** The built-in signature of every task in `@switchboard/protocol`'s task list. */
export const TASK_SIGNATURES: Readonly<Record<TaskName, TaskSignature>> = Object.freeze(
  Object.fromEntries(
    TASK_NAMES.map((task) => [task, { task, inputs: INPUTS[task], outputs: [...TASK_MODALITIES[task].out], ...(DESCRIPTIONS[task] ? { description: DESCRIPTIONS[task] } : {}) }]),
  ) as Record<TaskName, TaskSignature>,
);

/** Signatures of the named tasks (unknown names are left out), in the order given. */
export function taskSignatures(tasks: Iterable<string>): TaskSignature[] {
  const signatures: TaskSignature[] = [];
  for (const task of tasks) {
    const signature = (TASK_SIGNATURES as Record<string, TaskSignature | undefined>)[task];
    if (signature) signatures.push(signature);
  }
  return signatures;
}

/** Binary modalities: their arguments come from inputs, mentions or earlier outputs, never from text the planner writes. */
export const BINARY_MODALITIES: ReadonlySet<Modality> = new Set<Modality>(["image", "audio", "video"]);

/** Whether a planner may write a literal string for an input of this modality. */
export function literalAllowed(modality: Modality): boolean {
  return modality === "text" || modality === "table";
}

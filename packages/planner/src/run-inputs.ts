/**
 * How a run receives files. Chat content parts `image_url` and `input_audio`
 * become {@link RunInput}s, numbered in message order, and the text the LLMs
 * see names them in place (`[<INPUT>-0: image]`), so a plan can take them as
 * arguments with `<INPUT>-n`. Their bytes never pass through an LLM.
 */
import type { BinaryInput, JobChatMessage, Modality } from "@switchboard/protocol";
import { inputReference } from "./plan-validation.js";
import type { OrchestrationContentPart, OrchestrationMessage, RunInput } from "./types.js";

const AUDIO_MIME: Record<string, string> = { wav: "audio/wav", mp3: "audio/mpeg", flac: "audio/flac", ogg: "audio/ogg", m4a: "audio/mp4", webm: "audio/webm" };

export interface PreparedConversation {
  /** The conversation as text, each attachment replaced by its reference. */
  messages: JobChatMessage[];
  inputs: RunInput[];
}

/** The MIME type of a `data:` URL, or undefined. */
function dataUrlMime(url: string): string | undefined {
  const match = /^data:([^;,]+)[;,]/.exec(url);
  return match?.[1];
}

/**
 * Splits client messages into text for the LLMs and inputs for the tasks.
 * `extraInputs` (a request's explicit inputs) are numbered after the
 * attachments.
 */
export function prepareConversation(
  messages: readonly OrchestrationMessage[],
  extraInputs: readonly { modality: RunInput["modality"]; value: BinaryInput; mimeType?: string }[] = [],
): PreparedConversation {
  const inputs: RunInput[] = [];
  const add = (modality: RunInput["modality"], value: BinaryInput, source: RunInput["source"], mimeType?: string): string => {
    const id = inputReference(inputs.length);
    inputs.push({ id, modality, value, source, ...(mimeType ? { mimeType } : {}) });
    return id;
  };
  const converted: JobChatMessage[] = [];
  for (const message of messages) {
    const role = message.role === "developer" ? "system" : message.role;
    let content = "";
    if (typeof message.content === "string") content = message.content;
    else if (Array.isArray(message.content)) {
      const pieces: string[] = [];
      for (const part of message.content as OrchestrationContentPart[]) {
        if (part.type === "text" && typeof part.text === "string") pieces.push(part.text);
        else if (part.type === "image_url" && isObject(part.image_url) && typeof part.image_url.url === "string") {
          const url = part.image_url.url;
          const mimeType = dataUrlMime(url);
          pieces.push(`[${add("image", url, "image_url", mimeType)}: image]`);
        } else if (part.type === "input_audio" && isObject(part.input_audio) && typeof part.input_audio.data === "string") {
          const format = typeof part.input_audio.format === "string" ? part.input_audio.format.toLowerCase() : "wav";
          const mimeType = AUDIO_MIME[format] ?? `audio/${format}`;
          pieces.push(`[${add("audio", { type: "base64", data: part.input_audio.data, mimeType }, "input_audio", mimeType)}: audio]`);
        }
      }
      content = pieces.join("\n");
    }
    converted.push({ role, content, ...(message.name ? { name: message.name } : {}) });
  }
  for (const input of extraInputs) add(input.modality, input.value, "inputs", input.mimeType);
  // Attachments sent without any text still get a line naming them.
  const listed = new Set(converted.flatMap((message) => message.content.match(/<INPUT>-\d+/g) ?? []));
  const unlisted = inputs.filter((input) => !listed.has(input.id));
  if (unlisted.length > 0) {
    converted.push({ role: "user", content: `Attached: ${unlisted.map((input) => `[${input.id}: ${input.modality}]`).join(" ")}` });
  }
  return { messages: converted, inputs };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const EXTENSIONS: Record<string, Modality> = {
  jpg: "image",
  jpeg: "image",
  png: "image",
  gif: "image",
  webp: "image",
  bmp: "image",
  tif: "image",
  tiff: "image",
  wav: "audio",
  mp3: "audio",
  flac: "audio",
  ogg: "audio",
  m4a: "audio",
  mp4: "video",
  webm: "video",
  mov: "video",
  avi: "video",
};

/** A file a request names in its text: an http(s) URL, or (when enabled) a bare file name. */
export interface Mention {
  modality: Modality;
  value: string;
}

/**
 * Media the text mentions: http(s) URLs ending in a media extension, and,
 * with `fileNames`, bare names such as `example.jpg`. They become literal
 * choices for arguments of that modality (URLs are fetched by the engine
 * under its SSRF rules).
 */
export function findMentions(text: string, options: { fileNames?: boolean; limit?: number } = {}): Mention[] {
  const limit = options.limit ?? 8;
  const found = new Map<string, Mention>();
  const consider = (value: string) => {
    const clean = value.replace(/[)\].,;:!?'"]+$/, "");
    const extension = /\.([A-Za-z0-9]{2,5})(?:[?#].*)?$/.exec(clean)?.[1]?.toLowerCase();
    const modality = extension ? EXTENSIONS[extension] : undefined;
    if (modality && !found.has(clean) && clean.length <= 512) found.set(clean, { modality, value: clean });
  };
  for (const match of text.matchAll(/https?:\/\/[^\s'"<>]+/g)) consider(match[0]);
  if (options.fileNames) {
    for (const match of text.matchAll(/(?<![\w/.:-])[\w-]+(?:\.[\w-]+)*\.[A-Za-z0-9]{2,5}\b/g)) consider(match[0]);
  }
  return [...found.values()].slice(0, limit);
}

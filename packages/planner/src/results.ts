/**
 * Task outputs as the rest of the run uses them: the value of one modality
 * for a `<GENERATED>-k` reference (binary outputs pass through by reference,
 * never through an LLM), the artifacts in an output, and compact summaries
 * for the run record and the responder.
 */
import type { BinaryInput, Modality } from "@switchboard/protocol";
import type { ArtifactRecord, ResolvedArgument } from "./types.js";

type BinaryLike = { type: "base64"; mimeType: string; data: string; bytes?: number } | { type: "artifact"; mimeType: string; id: string; bytes?: number; url?: string };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** Whether a value is a binary output (`{type: "base64" | "artifact", mimeType, ...}`). */
export function isBinaryOutput(value: unknown): value is BinaryLike {
  if (!isObject(value) || typeof value.mimeType !== "string") return false;
  return (value.type === "base64" && typeof value.data === "string") || (value.type === "artifact" && typeof value.id === "string");
}

/** Decoded size of base64 text (padding and whitespace excluded). */
export function base64Bytes(data: string): number {
  const compact = data.replace(/\s+/g, "");
  const padding = compact.endsWith("==") ? 2 : compact.endsWith("=") ? 1 : 0;
  return Math.max(0, Math.floor((compact.length * 3) / 4) - padding);
}

const TEXT_KEYS = ["generated_text", "translation_text", "summary_text", "text", "answer"];

function textOf(value: unknown, depth = 0): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (depth > 3) return undefined;
  if (Array.isArray(value)) {
    const parts = value
      .slice(0, 16)
      .map((item) => textOf(item, depth + 1))
      .filter((part): part is string => part !== undefined && part.length > 0);
    return parts.length > 0 ? parts.join(", ") : undefined;
  }
  if (!isObject(value) || isBinaryOutput(value)) return undefined;
  for (const key of TEXT_KEYS) if (typeof value[key] === "string") return value[key] as string;
  // Token classification: the word and its entity; classifications and detections: the label.
  if (typeof value.word === "string") return typeof value.entity_group === "string" || typeof value.entity === "string" ? `${value.word} (${value.entity_group ?? value.entity})` : value.word;
  if (typeof value.label === "string") return value.label;
  return undefined;
}

function firstBinary(value: unknown, modality: Modality, depth = 0): BinaryLike | undefined {
  if (depth > 4) return undefined;
  if (isBinaryOutput(value)) return value.mimeType.startsWith(`${modality}/`) ? value : undefined;
  const children = Array.isArray(value) ? value : isObject(value) ? Object.values(value) : [];
  for (const child of children) {
    const found = firstBinary(child, modality, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** A binary output as the binary input of a later task: the same data or artifact, by reference. */
export function binaryOutputAsInput(output: BinaryLike): BinaryInput {
  return output.type === "artifact" ? { type: "artifact", id: output.id } : { type: "base64", data: output.data, mimeType: output.mimeType };
}

/**
 * The value of `modality` in a task's output, or undefined when it has none:
 * text (the answer, caption, transcript, labels), a binary output passed on
 * by reference, or embedding vectors.
 */
export function extractModality(output: unknown, modality: Modality): ResolvedArgument | undefined {
  switch (modality) {
    case "text":
    case "table":
      return textOf(output);
    case "image":
    case "audio":
    case "video": {
      const binary = firstBinary(output, modality);
      return binary ? binaryOutputAsInput(binary) : undefined;
    }
    case "embedding":
      return Array.isArray(output) && output.every((row) => Array.isArray(row)) ? (output as number[][]) : undefined;
  }
}

/** Every binary output in a task's output, with its JSON path; never its bytes. */
export function collectArtifacts(output: unknown): ArtifactRecord[] {
  const found: ArtifactRecord[] = [];
  const visit = (value: unknown, path: string, depth: number) => {
    if (depth > 4) return;
    if (isBinaryOutput(value)) {
      const bytes = value.bytes ?? (value.type === "base64" ? base64Bytes(value.data) : 0);
      const record: ArtifactRecord = { path: path || "$", type: value.type, mimeType: value.mimeType, bytes };
      if (value.type === "artifact") {
        record.id = value.id;
        if (value.url) record.url = value.url;
      }
      found.push(record);
      return;
    }
    if (Array.isArray(value)) value.forEach((item, index) => visit(item, `${path}[${index}]`, depth + 1));
    else if (isObject(value)) for (const [key, item] of Object.entries(value)) visit(item, path ? `${path}.${key}` : key, depth + 1);
  };
  visit(output, "", 0);
  return found;
}

/** A value with its binary data replaced by a description (`{type, mimeType, bytes}`), for records and prompts. */
export function describeValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") {
    if (value.startsWith("data:") && value.length > 256) {
      const mimeType = /^data:([^;,]+)/.exec(value)?.[1] ?? "application/octet-stream";
      return { type: "data-url", mimeType, bytes: base64Bytes(value.slice(value.indexOf(",") + 1)) };
    }
    return value.length > 4096 ? `${value.slice(0, 4096)}…` : value;
  }
  if (depth > 6) return null;
  if (isBinaryOutput(value)) {
    const bytes = value.bytes ?? (value.type === "base64" ? base64Bytes(value.data) : undefined);
    return value.type === "base64"
      ? { type: "base64", mimeType: value.mimeType, ...(bytes === undefined ? {} : { bytes }) }
      : { type: "artifact", id: value.id, mimeType: value.mimeType, ...(bytes === undefined ? {} : { bytes }), ...(value.url ? { url: value.url } : {}) };
  }
  if (isObject(value) && value.type === "base64" && typeof value.data === "string") {
    return { type: "base64", ...(typeof value.mimeType === "string" ? { mimeType: value.mimeType } : {}), bytes: base64Bytes(value.data) };
  }
  if (Array.isArray(value)) {
    // Long numeric arrays (embeddings, depth maps) are summarised by their shape.
    if (value.length > 32) return `[${value.length} items]`;
    return value.map((item) => describeValue(item, depth + 1));
  }
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, describeValue(item, depth + 1)]));
  return value;
}

/** A one-line summary of an output for the responder, at most `maxChars` characters. */
export function summarizeOutput(output: unknown, maxChars = 600): string {
  const text = JSON.stringify(describeValue(output)) ?? "null";
  return text.length <= maxChars ? text : `${text.slice(0, maxChars)}…`;
}

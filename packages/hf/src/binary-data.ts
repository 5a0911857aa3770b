/**
 * Binary task data: turning a {@link BinaryInput} (base64, data URL, http(s)
 * URL, artifact) into checked bytes, and bytes into a {@link BinaryOutput}.
 */
import { invalidRequest, type BinaryInput, type BinaryOutput } from "@switchboard/protocol";
import { fetchUserUrl, type FetchUserUrlOptions } from "./user-url.js";

export type MediaKind = "image" | "audio" | "video";

export interface BinaryData {
  bytes: Uint8Array;
  mimeType: string;
}

/** Looks up an artifact an earlier task produced (the artifact store, when there is one). */
export type ArtifactResolver = (id: string, signal?: AbortSignal) => Promise<BinaryData>;

export interface BinaryInputContext {
  /** Options for fetching http(s) inputs; content types are set per media kind. */
  userUrls: Omit<FetchUserUrlOptions, "allowedContentTypes" | "signal">;
  resolveArtifact?: ArtifactResolver;
  signal?: AbortSignal;
}

/** The media type the bytes start like, or undefined. */
export function sniffMedia(bytes: Uint8Array): { kind: MediaKind; mimeType: string } | undefined {
  const ascii = (start: number, end: number) => Buffer.from(bytes.subarray(start, end)).toString("latin1");
  const b = (index: number) => bytes[index] ?? -1;
  if (b(0) === 0x89 && ascii(1, 4) === "PNG") return { kind: "image", mimeType: "image/png" };
  if (b(0) === 0xff && b(1) === 0xd8 && b(2) === 0xff) return { kind: "image", mimeType: "image/jpeg" };
  if (ascii(0, 4) === "GIF8") return { kind: "image", mimeType: "image/gif" };
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return { kind: "image", mimeType: "image/webp" };
  if (ascii(0, 2) === "BM" && bytes.length > 26) return { kind: "image", mimeType: "image/bmp" };
  if (ascii(0, 4) === "II*\0" || ascii(0, 4) === "MM\0*") return { kind: "image", mimeType: "image/tiff" };
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WAVE") return { kind: "audio", mimeType: "audio/wav" };
  if (ascii(0, 4) === "fLaC") return { kind: "audio", mimeType: "audio/flac" };
  if (ascii(0, 4) === "OggS") return { kind: "audio", mimeType: "audio/ogg" };
  if (ascii(0, 3) === "ID3" || (b(0) === 0xff && (b(1) & 0xe0) === 0xe0)) return { kind: "audio", mimeType: "audio/mpeg" };
  if (b(0) === 0x1a && b(1) === 0x45 && b(2) === 0xdf && b(3) === 0xa3) return { kind: "video", mimeType: "video/webm" };
  if (ascii(4, 8) === "ftyp") return ascii(8, 11) === "M4A" ? { kind: "audio", mimeType: "audio/mp4" } : { kind: "video", mimeType: "video/mp4" };
  return undefined;
}

/** Base64 (standard or URL-safe, padding optional) to bytes; undefined when it is not base64. */
export function decodeBase64(text: string): Uint8Array | undefined {
  const compact = text.replace(/\s+/g, "");
  if (compact.length === 0 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact) || compact.replace(/=+$/, "").length % 4 === 1) return undefined;
  return new Uint8Array(Buffer.from(compact, compact.includes("-") || compact.includes("_") ? "base64url" : "base64"));
}

function parseDataUrl(url: string, param: string): BinaryData {
  const match = /^data:([^,]*?),(.*)$/s.exec(url);
  if (!match) throw invalidRequest(`'${param}' is not a valid data: URL.`, param, "invalid_binary_input");
  const meta = match[1]!.split(";");
  const mimeType = meta[0] || "application/octet-stream";
  const payload = match[2]!;
  if (meta.includes("base64")) {
    const bytes = decodeBase64(payload);
    if (!bytes) throw invalidRequest(`'${param}' is a data: URL whose base64 does not decode.`, param, "invalid_binary_input");
    return { bytes, mimeType };
  }
  return { bytes: new Uint8Array(Buffer.from(decodeURIComponent(payload), "latin1")), mimeType };
}

const KIND_NAMES: Record<MediaKind, string> = {
  image: "an image (PNG, JPEG, GIF, WebP, BMP or TIFF)",
  audio: "audio (WAV, FLAC, OGG, MP3, WebM or M4A)",
  video: "a video (MP4 or WebM)",
};

/**
 * Resolves a binary input to bytes of the expected media kind; 400 when it
 * cannot be read or is not that kind of media.
 */
export async function resolveBinaryInput(input: BinaryInput, kind: MediaKind, param: string, context: BinaryInputContext): Promise<BinaryData> {
  let data: BinaryData;
  const fetchUrl = async (url: string): Promise<BinaryData> => {
    const allowedContentTypes = kind === "audio" ? ["audio/*", "video/webm", "application/octet-stream"] : [`${kind}/*`, "application/octet-stream"];
    const fetched = await fetchUserUrl(url, { ...context.userUrls, allowedContentTypes, ...(context.signal ? { signal: context.signal } : {}) });
    return { bytes: new Uint8Array(fetched.bytes), mimeType: fetched.contentType };
  };
  if (typeof input === "string") {
    if (input.startsWith("data:")) data = parseDataUrl(input, param);
    else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) data = await fetchUrl(input);
    else {
      const bytes = decodeBase64(input);
      if (!bytes) throw invalidRequest(`'${param}' must be base64, a data: URL, or an http(s) URL.`, param, "invalid_binary_input");
      data = { bytes, mimeType: "application/octet-stream" };
    }
  } else if (input.type === "base64") {
    const bytes = decodeBase64(input.data);
    if (!bytes) throw invalidRequest(`'${param}.data' is not valid base64.`, param, "invalid_binary_input");
    data = { bytes, mimeType: input.mimeType ?? "application/octet-stream" };
  } else if (input.type === "url") {
    data = await fetchUrl(input.url);
  } else {
    if (!context.resolveArtifact) throw invalidRequest(`'${param}' names an artifact, but this worker has no artifact store.`, param, "artifact_unavailable");
    data = await context.resolveArtifact(input.id, context.signal);
  }
  const sniffed = sniffMedia(data.bytes);
  if (!sniffed || sniffed.kind !== kind) throw invalidRequest(`'${param}' is not ${KIND_NAMES[kind]}.`, param, "invalid_binary_input");
  return { bytes: data.bytes, mimeType: sniffed.mimeType };
}

/** Bytes as an inline binary output; the MIME type comes from the bytes when they say, else from the upstream. */
export function toBinaryOutput(bytes: Uint8Array, declaredType?: string): BinaryOutput {
  const mimeType = sniffMedia(bytes)?.mimeType ?? (declaredType?.split(";")[0]?.trim() || "application/octet-stream");
  return { type: "base64", mimeType, data: Buffer.from(bytes).toString("base64"), bytes: bytes.byteLength };
}

export function toBlob(data: BinaryData): Blob {
  return new Blob([data.bytes], { type: data.mimeType });
}

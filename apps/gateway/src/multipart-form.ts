/**
 * Reading `multipart/form-data` bodies (file uploads) with @fastify/multipart,
 * under the same rules as JSON bodies: a file over the limit is read to its
 * end and discarded, then answered 413 on a connection that stays usable
 * (closing mid-upload makes clients see EPIPE instead of the answer).
 */
import type { FastifyRequest } from "fastify";
import { GatewayError, invalidRequest } from "@switchboard/protocol";
import { payloadTooLarge } from "./json-body.js";

export interface UploadedFile {
  data: Buffer;
  /** As the client declared it (the engine checks the bytes themselves). */
  mimeType: string;
  filename: string;
}

export interface MultipartForm {
  fields: Map<string, string>;
  files: Map<string, UploadedFile>;
}

export interface MultipartLimits {
  /** Largest file accepted. */
  maxFileBytes: number;
  /** Largest body read and discarded before the 413; past it (by Content-Length) the answer comes at once. */
  drainLimitBytes: number;
}

const MAX_FIELDS = 32;
const MAX_FIELD_BYTES = 1024 * 1024;

/** Reads every part of a multipart body; text fields and files by name (the last one wins). */
export async function readMultipartForm(request: FastifyRequest, limits: MultipartLimits): Promise<MultipartForm> {
  if (Number(request.headers["content-length"]) > limits.drainLimitBytes) throw payloadTooLarge(limits.maxFileBytes);
  const fields = new Map<string, string>();
  const files = new Map<string, UploadedFile>();
  let tooLarge = false;
  try {
    const parts = request.parts({
      // The plugin is registered with `throwFileSizeLimit: false`: past the limit busboy
      // discards the rest of the file, so the 413 goes out on a usable connection.
      limits: { fileSize: limits.maxFileBytes, files: 8, fields: MAX_FIELDS, fieldSize: MAX_FIELD_BYTES, parts: MAX_FIELDS + 8 },
    });
    for await (const part of parts) {
      if (part.type === "file") {
        const chunks: Buffer[] = [];
        for await (const chunk of part.file) if (!tooLarge) chunks.push(chunk as Buffer);
        if (part.file.truncated) tooLarge = true;
        if (!tooLarge) files.set(part.fieldname, { data: Buffer.concat(chunks), mimeType: part.mimetype, filename: part.filename });
      } else {
        if (part.valueTruncated) throw invalidRequest(`The form field '${part.fieldname.slice(0, 64)}' is longer than ${MAX_FIELD_BYTES} bytes.`, part.fieldname);
        fields.set(part.fieldname, typeof part.value === "string" ? part.value : JSON.stringify(part.value));
      }
    }
  } catch (error) {
    if (error instanceof GatewayError) throw error;
    const code = (error as { code?: string }).code ?? "";
    if (code.includes("LIMIT")) throw invalidRequest(`The form has too many parts (at most ${MAX_FIELDS} fields and 8 files).`, null, "invalid_form");
    throw invalidRequest("The multipart/form-data body could not be read: check its boundary and parts.", null, "invalid_form");
  }
  if (tooLarge) throw payloadTooLarge(limits.maxFileBytes);
  return { fields, files };
}

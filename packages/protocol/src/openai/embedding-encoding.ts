/** Embedding vectors to the OpenAI `list` response, in either encoding. */
import type { JobEvent } from "../jobs.js";
import type { EmbeddingResponse } from "./embedding-schema.js";

export interface EmbeddingResponseInput {
  /** Catalog id of the model. */
  model: string;
  /** One vector per input, in order. */
  vectors: readonly (readonly number[])[];
  promptTokens: number;
  encodingFormat: "float" | "base64";
}

/** Base64 of the vector as little-endian float32, which is what the official SDKs decode. */
export function encodeVectorBase64(vector: readonly number[]): string {
  const floats = Float32Array.from(vector);
  const bytes = Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength);
  // Float32Array uses the platform's byte order; the wire format is little-endian.
  if (!IS_LITTLE_ENDIAN) bytes.swap32();
  return bytes.toString("base64");
}

const IS_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export function encodeEmbeddingResponse(input: EmbeddingResponseInput): EmbeddingResponse {
  return {
    object: "list",
    data: input.vectors.map((vector, index) => ({
      object: "embedding" as const,
      index,
      embedding: input.encodingFormat === "base64" ? encodeVectorBase64(vector) : [...vector],
    })),
    model: input.model,
    usage: { prompt_tokens: input.promptTokens, total_tokens: input.promptTokens },
  };
}

/** Collects the events of one embedding job; {@link toResponse} encodes them. */
export class EmbeddingAccumulator {
  readonly #model: string;
  readonly #encodingFormat: "float" | "base64";
  #promptTokens = 0;
  /** One vector per input, once the `embeddings` event arrived. */
  vectors: number[][] = [];

  constructor(model: string, encodingFormat: "float" | "base64") {
    this.#model = model;
    this.#encodingFormat = encodingFormat;
  }

  add(event: JobEvent): void {
    if (event.type === "accepted") this.#promptTokens = event.promptTokens;
    else if (event.type === "embeddings") this.vectors = event.vectors;
  }

  toResponse(): EmbeddingResponse {
    return encodeEmbeddingResponse({
      model: this.#model,
      vectors: this.vectors,
      promptTokens: this.#promptTokens,
      encodingFormat: this.#encodingFormat,
    });
  }
}

/**
 * The OpenAI wire format as Switchboard speaks it: TypeBox schemas for every
 * request and response body (validated by the gateway and published as its
 * OpenAPI document) and the encoders that turn job events into responses and
 * server-sent event chunks.
 */
import { ChatCompletionChunkSchema, ChatCompletionRequestSchema, ChatCompletionResponseSchema } from "./chat-completion-schema.js";
import { ErrorResponseSchema } from "./common-schema.js";
import { CompletionChunkSchema, CompletionRequestSchema, CompletionResponseSchema } from "./completion-schema.js";
import { EmbeddingRequestSchema, EmbeddingResponseSchema } from "./embedding-schema.js";
import { ModelListSchema, ModelSchema } from "./model-schema.js";
import { ImageGenerationRequestSchema, ImagesResponseSchema } from "./image-schema.js";
import { OrchestrationListSchema, OrchestrationRequestSchema, OrchestrationSchema, OrchestrationStreamEventSchema } from "./orchestration-schema.js";
import { SpeechRequestSchema, TranscriptionRequestSchema, TranscriptionResponseSchema, TranscriptionVerboseResponseSchema } from "./audio-schema.js";

export * from "./common-schema.js";
export * from "./chat-completion-schema.js";
export * from "./completion-schema.js";
export * from "./embedding-schema.js";
export * from "./model-schema.js";
export * from "./image-schema.js";
export * from "./audio-schema.js";
export * from "./orchestration-schema.js";
export * from "./sse.js";
export * from "./encoding-common.js";
export * from "./chat-encoding.js";
export * from "./completion-encoding.js";
export * from "./embedding-encoding.js";

/**
 * Every top-level schema with a `$id`, to register once (Fastify `addSchema`)
 * and refer to as `{ $ref: "<$id>#" }`. They become the OpenAPI document's
 * `components.schemas`, named by `$id`.
 */
export const openAISchemas = [
  ErrorResponseSchema,
  ChatCompletionRequestSchema,
  ChatCompletionResponseSchema,
  ChatCompletionChunkSchema,
  CompletionRequestSchema,
  CompletionResponseSchema,
  CompletionChunkSchema,
  EmbeddingRequestSchema,
  EmbeddingResponseSchema,
  ModelSchema,
  ModelListSchema,
  ImageGenerationRequestSchema,
  ImagesResponseSchema,
  SpeechRequestSchema,
  TranscriptionRequestSchema,
  TranscriptionResponseSchema,
  TranscriptionVerboseResponseSchema,
  OrchestrationRequestSchema,
  OrchestrationSchema,
  OrchestrationListSchema,
  OrchestrationStreamEventSchema,
] as const;

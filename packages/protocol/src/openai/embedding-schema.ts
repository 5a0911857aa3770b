/**
 * `POST /v1/embeddings`: request and response. The official SDKs ask for
 * `encoding_format: "base64"` by default and decode it as little-endian
 * float32, so both encodings must carry the same vector.
 */
import { Type, type Static } from "typebox";
import { Nullable } from "./common-schema.js";

/** OpenAI's limit on inputs per request. */
export const MAX_EMBEDDING_INPUTS = 2048;

export const EmbeddingRequestSchema = Type.Object(
  {
    model: Type.String({ description: "Model id or alias of a model with embeddings enabled." }),
    input: Type.Union(
      [
        Type.String(),
        Type.Array(Type.String(), { minItems: 1, maxItems: MAX_EMBEDDING_INPUTS }),
        Type.Array(Type.Integer(), { minItems: 1 }),
        Type.Array(Type.Array(Type.Integer()), { minItems: 1, maxItems: MAX_EMBEDDING_INPUTS }),
      ],
      {
        description:
          "Text to embed: a string or a list of up to 2048 non-empty strings (one vector each, in order). Token arrays are valid OpenAI input but not served here: they are answered with 400.",
      },
    ),
    encoding_format: Type.Optional(
      Nullable(
        Type.Enum(["float", "base64"], {
          description: "`float` (default): arrays of numbers; `base64`: each vector as base64 of little-endian float32 values.",
        }),
      ),
    ),
    dimensions: Type.Optional(
      Nullable(Type.Integer({ minimum: 1, description: "Must equal the model's native dimension when given: vectors are never truncated." })),
    ),
    user: Type.Optional(Type.String({ description: "Accepted and ignored." })),
  },
  { $id: "CreateEmbeddingRequest", description: "An embeddings request. Unknown fields are ignored." },
);
export type EmbeddingRequest = Static<typeof EmbeddingRequestSchema>;

export const EmbeddingResponseSchema = Type.Object(
  {
    object: Type.Literal("list"),
    data: Type.Array(
      Type.Object({
        object: Type.Literal("embedding"),
        index: Type.Integer({ description: "Position of the input this vector embeds." }),
        embedding: Type.Union([Type.Array(Type.Number()), Type.String()], {
          description: "The vector: numbers for `float`, a base64 string for `base64`.",
        }),
      }),
    ),
    model: Type.String({ description: "Catalog id of the model that answered." }),
    usage: Type.Object({
      prompt_tokens: Type.Integer(),
      total_tokens: Type.Integer(),
    }),
  },
  { $id: "CreateEmbeddingResponse", description: "Embedding vectors, one per input." },
);
export type EmbeddingResponse = Static<typeof EmbeddingResponseSchema>;

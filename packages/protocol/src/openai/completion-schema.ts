/**
 * `POST /v1/completions` (legacy text completion): request, response and the
 * streamed chunk. Each prompt of a list becomes one choice, in order.
 */
import { Type, type Static } from "typebox";
import { CompletionUsageSchema, Nullable, samplingProperties } from "./common-schema.js";

export const CompletionRequestSchema = Type.Object(
  {
    model: Type.String({ description: "Model id or alias from `GET /v1/models`." }),
    prompt: Type.Union(
      [
        Type.String(),
        Type.Array(Type.String(), { minItems: 1 }),
        Type.Array(Type.Integer(), { minItems: 1 }),
        Type.Array(Type.Array(Type.Integer()), { minItems: 1 }),
      ],
      {
        description:
          "The prompt: a string, or a list of strings (`n` choices per prompt, prompt by prompt). Token arrays are valid OpenAI input but not served here: they are answered with 400.",
      },
    ),
    max_tokens: Type.Optional(
      Nullable(Type.Integer({ minimum: 1, description: "Most tokens to generate per prompt. Defaults to the model's configured default; capped at its maximum." })),
    ),
    ...samplingProperties,
    echo: Type.Optional(Nullable(Type.Boolean({ description: "Not supported: `true` is answered with 400." }))),
    suffix: Type.Optional(Nullable(Type.String({ description: "Not supported: a non-empty suffix is answered with 400." }))),
    best_of: Type.Optional(Nullable(Type.Integer({ minimum: 1, description: "Only 1 is supported." }))),
    logprobs: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 5, description: "Not supported: a value is answered with 400." }))),
  },
  { $id: "CreateCompletionRequest", description: "A text completion request. Unknown fields are ignored." },
);
export type CompletionRequest = Static<typeof CompletionRequestSchema>;

const CompletionChoiceSchema = Type.Object({
  text: Type.String({ description: "Generated text (a piece of it, when streamed)." }),
  index: Type.Integer({ description: "Position of the prompt this choice answers." }),
  logprobs: Type.Null({ description: "Always null: log probabilities are not supported." }),
  finish_reason: Type.Enum(["stop", "length", "content_filter"]),
});

export const CompletionResponseSchema = Type.Object(
  {
    id: Type.String({ description: "Unique id (`cmpl-...`)." }),
    object: Type.Literal("text_completion"),
    created: Type.Integer({ description: "Unix time (seconds) when the request was accepted." }),
    model: Type.String({ description: "Catalog id of the model that answered." }),
    system_fingerprint: Type.String(),
    choices: Type.Array(CompletionChoiceSchema),
    usage: CompletionUsageSchema,
  },
  { $id: "CreateCompletionResponse", description: "A text completion." },
);
export type CompletionResponse = Static<typeof CompletionResponseSchema>;

export const CompletionChunkSchema = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("text_completion"),
    created: Type.Integer(),
    model: Type.String(),
    system_fingerprint: Type.String(),
    choices: Type.Array(
      Type.Object({
        text: Type.String(),
        index: Type.Integer(),
        logprobs: Type.Null(),
        finish_reason: Nullable(Type.Enum(["stop", "length", "content_filter"]), { description: "Null until the choice's last chunk." }),
      }),
    ),
    usage: Type.Optional(Nullable(CompletionUsageSchema, { description: "As for chat: only the final chunk of an `include_usage` stream carries numbers." })),
  },
  {
    $id: "CompletionStreamChunk",
    description: "One server-sent event of a streamed text completion. Ends with `data: [DONE]`; errors as for chat.",
  },
);
export type CompletionChunk = Static<typeof CompletionChunkSchema>;

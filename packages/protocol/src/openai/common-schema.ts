/**
 * Building blocks shared by the OpenAI wire schemas: nullable values, the
 * error body, token usage, `stop`, and a discriminated-union helper.
 *
 * The schemas are plain JSON Schema (TypeBox 1.x output), used three ways:
 * Fastify validates requests with them, @fastify/swagger publishes them as
 * the OpenAPI document, and `Static<typeof X>` gives the TypeScript type. A
 * schema carries a `$id` only at the top level (request and response bodies);
 * nested parts are inlined so each top-level schema can be registered once.
 */
import { Type, type Static, type TSchema } from "typebox";

/** `schema` or JSON `null` (OpenAPI 3.1 style: `anyOf [schema, {type: null}]`). */
export const Nullable = <T extends TSchema>(schema: T, options: Record<string, unknown> = {}) => Type.Union([schema, Type.Null()], options);

/**
 * A union discriminated by one property, written as `oneOf` plus the OpenAPI
 * `discriminator` keyword. Ajv (with `discriminator: true`) then validates only
 * the branch the tag selects, so an error names the field that is wrong in
 * that branch (`messages[0].tool_call_id`) instead of "must match a schema in
 * anyOf". Every variant must declare `properties[tag]` as a literal or enum.
 */
export function DiscriminatedUnion<T extends TSchema[]>(tag: string, variants: [...T], options: Record<string, unknown> = {}) {
  return Type.Unsafe<Static<ReturnType<typeof Type.Union<T>>>>({
    ...options,
    type: "object",
    required: [tag],
    oneOf: variants,
    discriminator: { propertyName: tag },
  });
}

/** A JSON object whose contents are not checked here (JSON Schemas, metadata). */
export const JsonObject = (options: Record<string, unknown> = {}) =>
  Type.Unsafe<Record<string, unknown>>({ type: "object", additionalProperties: true, ...options });

/** The `error` member of every error response. */
export const ErrorObjectSchema = Type.Object(
  {
    message: Type.String({ description: "What went wrong and, where possible, how to fix the request." }),
    type: Type.String({
      description:
        "Error class that clients switch on: `invalid_request_error`, `authentication_error`, `not_found_error`, `rate_limit_error`, `server_error`, `service_unavailable_error`, ...",
    }),
    param: Nullable(Type.String({ description: "The request field at fault, in OpenAI's notation (`messages[0].role`), or null." })),
    code: Nullable(Type.String({ description: "Stable machine-readable code (`model_not_found`, `context_length_exceeded`, ...), or null." })),
  },
  { description: "An OpenAI error object." },
);

/** `{"error": {...}}`: the body of every non-2xx response, and of an in-stream SSE error event. */
export const ErrorResponseSchema = Type.Object({ error: ErrorObjectSchema }, { $id: "ErrorResponse", description: "An OpenAI-shaped error." });
export type ErrorResponse = Static<typeof ErrorResponseSchema>;

/** Token counts of one request, from the model's own tokenizer. */
export const CompletionUsageSchema = Type.Object(
  {
    prompt_tokens: Type.Integer({ description: "Tokens in the prompt (all choices share it)." }),
    completion_tokens: Type.Integer({ description: "Tokens generated, summed over choices." }),
    total_tokens: Type.Integer({ description: "prompt_tokens + completion_tokens." }),
  },
  { description: "Usage statistics for the request." },
);
export type CompletionUsage = Static<typeof CompletionUsageSchema>;

/** Up to 4 sequences where generation stops; the stop text is not returned. */
export const StopSchema = Nullable(
  Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 4 })], {
    description: "Up to 4 sequences where the model stops generating; the returned text does not contain them.",
  }),
);

/** Options for streamed responses. */
export const StreamOptionsSchema = Nullable(
  Type.Object(
    {
      include_usage: Type.Optional(
        Type.Boolean({
          description: "When true, one extra chunk with `choices: []` and the request's `usage` is sent before `data: [DONE]`; every other chunk carries `usage: null`.",
        }),
      ),
    },
    { description: "Options for streaming responses; only read when `stream` is true." },
  ),
);

/** Sampling fields shared by chat and completions. */
export const samplingProperties = {
  temperature: Type.Optional(
    Nullable(
      Type.Number({
        minimum: 0,
        maximum: 2,
        description: "Sampling temperature, 0..2. Higher is more random; 0 is greedy. Defaults to the model's configured value.",
      }),
    ),
  ),
  top_p: Type.Optional(
    Nullable(Type.Number({ minimum: 0, maximum: 1, description: "Nucleus sampling: only tokens within the top `top_p` probability mass are considered." })),
  ),
  seed: Type.Optional(
    Nullable(Type.Integer({ description: "Seed for sampling; with the same seed and settings, output repeats. Has no effect at temperature 0." })),
  ),
  presence_penalty: Type.Optional(
    Nullable(Type.Number({ minimum: -2, maximum: 2, description: "-2..2. Positive values penalise tokens that already appeared." })),
  ),
  frequency_penalty: Type.Optional(
    Nullable(Type.Number({ minimum: -2, maximum: 2, description: "-2..2. Positive values penalise tokens by how often they appeared." })),
  ),
  stop: Type.Optional(StopSchema),
  stream: Type.Optional(Nullable(Type.Boolean({ description: "Stream the answer as server-sent events (`data: {chunk}` ... `data: [DONE]`)." }))),
  stream_options: Type.Optional(StreamOptionsSchema),
  n: Type.Optional(
    Nullable(Type.Integer({ minimum: 1, maximum: 128, description: "Number of choices (per prompt for text completions). Local models serve 1-8, generated one after another; with `seed`, choice i samples with seed + i. Remote models and the router serve 1; more is answered with 400." })),
  ),
  // Keys and values are checked by the gateway, not here, so a 400 names the entry as `logit_bias.<id>`.
  logit_bias: Type.Optional(
    Nullable(
      JsonObject({
        description:
          "Maps token ids (the model's own tokenizer's, as strings) to a bias from -100 to 100 added to the token's logit before sampling: -100 effectively bans the token, 100 makes it (nearly) the only choice. At most 300 entries; an id outside the vocabulary, or an end-of-generation token, is answered with 400 naming the entry (`logit_bias.50256`). Local models only; remote models and the router answer a non-empty map with 400.",
      }),
    ),
  ),
  user: Type.Optional(Type.String({ description: "End-user identifier; accepted and ignored." })),
};

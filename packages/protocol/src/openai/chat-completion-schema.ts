/**
 * `POST /v1/chat/completions`: the request as OpenAI clients send it, the
 * response, and the streamed chunk.
 *
 * Validation here is structural (types, ranges, required fields, known
 * roles). Rules that need more than a schema (`n > 1`, non-text content
 * parts, a `tool_choice` naming an undeclared tool) are checked by the
 * gateway when it builds the job, with the same OpenAI error shape.
 * Unknown top-level fields are allowed and ignored, as OpenAI-compatible
 * servers are expected to do.
 */
import { Type, type Static } from "typebox";
import { CompletionUsageSchema, DiscriminatedUnion, JsonObject, Nullable, samplingProperties } from "./common-schema.js";

// ---------------------------------------------------------------------------
// Request: messages

/**
 * One content part. Only `text` parts are served (the models are text-only);
 * the schema admits any `type` so that an image or audio part gets a specific
 * 400 from the gateway instead of a generic schema error.
 */
export const ChatContentPartSchema = Type.Object(
  {
    type: Type.String({
      description: "`text`, or `refusal` in assistant messages. `image_url` and `input_audio` are served by the `router` model (they become the run's inputs); other models refuse them with 400.",
    }),
    text: Type.Optional(Type.String({ description: "The text of a `text` part." })),
    refusal: Type.Optional(Type.String({ description: "The text of a `refusal` part (assistant messages)." })),
  },
  { description: "A content part. Text parts of one message are joined with newlines." },
);
export type ChatContentPart = Static<typeof ChatContentPartSchema>;

/** `content` of a system, developer, user or tool message: text or text parts. */
const RequiredContentSchema = Type.Union([Type.String(), Type.Array(ChatContentPartSchema)], {
  description: "The message text, or an array of content parts.",
});

const nameProperty = Type.Optional(Type.String({ description: "Optional participant name." }));

export const ChatSystemMessageSchema = Type.Object(
  {
    role: Type.Enum(["system", "developer"], { description: "`developer` is treated as `system`." }),
    content: RequiredContentSchema,
    name: nameProperty,
  },
  { description: "Instructions for the model. `developer` (newer OpenAI name) is treated as `system`." },
);

export const ChatUserMessageSchema = Type.Object(
  { role: Type.Literal("user"), content: RequiredContentSchema, name: nameProperty },
  { description: "A message from the user." },
);

/** A tool call as it appears in an earlier assistant message of the conversation. */
export const ChatMessageToolCallSchema = Type.Object(
  {
    id: Type.String({ description: "Id that the matching `tool` message refers to in `tool_call_id`." }),
    type: Type.Literal("function"),
    function: Type.Object({
      name: Type.String({ description: "Name of the function called." }),
      arguments: Type.String({ description: "Arguments as JSON text, as the model produced them." }),
    }),
  },
  { description: "A function call the model made." },
);
export type ChatMessageToolCall = Static<typeof ChatMessageToolCallSchema>;

export const ChatAssistantMessageSchema = Type.Object(
  {
    role: Type.Literal("assistant"),
    content: Type.Optional(
      Nullable(Type.Union([Type.String(), Type.Array(ChatContentPartSchema)], { description: "Text of the reply; null when it only called tools." })),
    ),
    name: nameProperty,
    refusal: Type.Optional(Nullable(Type.String({ description: "Accepted and ignored." }))),
    tool_calls: Type.Optional(Nullable(Type.Array(ChatMessageToolCallSchema, { description: "Tool calls the model made in this turn." }))),
  },
  { description: "An earlier reply of the model." },
);

export const ChatToolMessageSchema = Type.Object(
  {
    role: Type.Literal("tool"),
    content: RequiredContentSchema,
    tool_call_id: Type.String({ description: "The `id` of the tool call this message answers." }),
  },
  { description: "The result of a tool call." },
);

/** One message; the `role` selects which fields apply. */
export const ChatMessageSchema = DiscriminatedUnion("role", [ChatSystemMessageSchema, ChatUserMessageSchema, ChatAssistantMessageSchema, ChatToolMessageSchema], {
  description: "A message of the conversation: role `system`, `developer`, `user`, `assistant` or `tool`.",
});
export type ChatMessage = Static<typeof ChatMessageSchema>;

// ---------------------------------------------------------------------------
// Request: tools and output format

export const ChatToolSchema = Type.Object(
  {
    type: Type.Literal("function", { description: "Only function tools exist." }),
    function: Type.Object({
      name: Type.String({
        minLength: 1,
        maxLength: 64,
        pattern: "^[a-zA-Z0-9_-]+$",
        description: "Function name: letters, digits, `_` and `-`, at most 64 characters.",
      }),
      description: Type.Optional(Type.String({ description: "What the function does; shown to the model." })),
      parameters: Type.Optional(JsonObject({ description: "JSON Schema of the arguments object. Omitted means no arguments." })),
      strict: Type.Optional(Nullable(Type.Boolean({ description: "Accepted; arguments are always constrained to the schema by a grammar." }))),
    }),
  },
  { description: "A function the model may call." },
);
export type ChatTool = Static<typeof ChatToolSchema>;

export const ChatToolChoiceSchema = Type.Union(
  [
    Type.Enum(["none", "auto", "required"], {
      description: "`none`: no tool calls; `auto`: the model decides; `required`: the model must call at least one tool.",
    }),
    Type.Object(
      {
        type: Type.Literal("function"),
        function: Type.Object({ name: Type.String({ description: "Must be one of the declared `tools`." }) }),
      },
      { description: "Forces a call to this function." },
    ),
  ],
  { description: "Which tool, if any, the model must call. Defaults to `auto` when tools are given, `none` otherwise." },
);
export type ChatToolChoice = Static<typeof ChatToolChoiceSchema>;

export const ResponseFormatSchema = DiscriminatedUnion(
  "type",
  [
    Type.Object({ type: Type.Literal("text") }, { description: "Free text (the default)." }),
    Type.Object({ type: Type.Literal("json_object") }, { description: "Any valid JSON object, enforced by a grammar." }),
    Type.Object(
      {
        type: Type.Literal("json_schema"),
        json_schema: Type.Object({
          name: Type.String({ minLength: 1, maxLength: 64, description: "Name of the schema." }),
          description: Type.Optional(Type.String()),
          schema: Type.Optional(JsonObject({ description: "The JSON Schema the output must satisfy; enforced by a grammar. An unsupported schema is a 400." })),
          strict: Type.Optional(Nullable(Type.Boolean())),
        }),
      },
      { description: "JSON that satisfies the given schema, enforced by a grammar." },
    ),
  ],
  { description: "Constrains the output format." },
);
export type ResponseFormat = Static<typeof ResponseFormatSchema>;

// ---------------------------------------------------------------------------
// Request

export const ChatCompletionRequestSchema = Type.Object(
  {
    model: Type.String({ description: "Model id or alias from `GET /v1/models`; `default` names the configured default model." }),
    messages: Type.Array(ChatMessageSchema, { minItems: 1, description: "The conversation so far; at least one message." }),
    max_tokens: Type.Optional(
      Nullable(Type.Integer({ minimum: 1, description: "Most tokens to generate. Defaults to the model's configured default; capped at its configured maximum." })),
    ),
    max_completion_tokens: Type.Optional(
      Nullable(Type.Integer({ minimum: 1, description: "Newer name of `max_tokens`; wins when both are given." })),
    ),
    ...samplingProperties,
    response_format: Type.Optional(Nullable(ResponseFormatSchema)),
    tools: Type.Optional(Nullable(Type.Array(ChatToolSchema, { description: "Functions the model may call." }))),
    tool_choice: Type.Optional(Nullable(ChatToolChoiceSchema)),
    parallel_tool_calls: Type.Optional(Nullable(Type.Boolean({ description: "Accepted and ignored." }))),
    logprobs: Type.Optional(
      Nullable(Type.Boolean({ description: "Log probabilities of the output tokens. Remote models only (passed to the upstream server); a local model answers `true` with 400." })),
    ),
    functions: Type.Optional(Type.Unknown({ description: "Deprecated by OpenAI and not supported: declare functions in `tools`." })),
    top_logprobs: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 20, description: "How many most likely alternatives to list per output token; needs `logprobs: true`." }))),
  },
  {
    $id: "CreateChatCompletionRequest",
    description: "A chat completion request. Unknown fields are ignored; known fields of the wrong type are a 400.",
  },
);
export type ChatCompletionRequest = Static<typeof ChatCompletionRequestSchema>;

// ---------------------------------------------------------------------------
// Response

const TopLogprobSchema = Type.Object({
  token: Type.String(),
  logprob: Type.Number({ description: "Natural log of the token's probability." }),
  bytes: Nullable(Type.Array(Type.Integer(), { description: "The token's UTF-8 bytes." })),
});

const TokenLogprobSchema = Type.Object({
  ...TopLogprobSchema.properties,
  top_logprobs: Type.Array(TopLogprobSchema, { description: "The most likely tokens at this position (`top_logprobs` of the request), most likely first." }),
});

const ChoiceLogprobsSchema = Type.Object({
  content: Nullable(Type.Array(TokenLogprobSchema)),
  refusal: Type.Null(),
});

const FinishReasonSchema = Type.Enum(["stop", "length", "tool_calls", "content_filter"], {
  description: "`stop`: natural end or a stop sequence; `length`: `max_tokens` reached; `tool_calls`: the model called tools.",
});

export const ChatCompletionMessageSchema = Type.Object(
  {
    role: Type.Literal("assistant"),
    content: Nullable(Type.String({ description: "The reply text; null when the model only called tools." })),
    refusal: Type.Null({ description: "Always null: the gateway never refuses on its own." }),
    tool_calls: Type.Optional(Type.Array(ChatMessageToolCallSchema)),
    reasoning_content: Type.Optional(Type.String({ description: "The `router` model only: its progress (plan, models chosen, tasks run), one line per step." })),
  },
  { description: "The model's reply." },
);

export const ChatCompletionResponseSchema = Type.Object(
  {
    id: Type.String({ description: "Unique id of the completion (`chatcmpl-...`)." }),
    object: Type.Literal("chat.completion"),
    created: Type.Integer({ description: "Unix time (seconds) when the request was accepted." }),
    model: Type.String({ description: "Catalog id of the model that answered (aliases resolved)." }),
    system_fingerprint: Type.String({ description: "Identifies the model configuration that produced the answer." }),
    choices: Type.Array(
      Type.Object({
        index: Type.Integer(),
        message: ChatCompletionMessageSchema,
        logprobs: Nullable(ChoiceLogprobsSchema, { description: "The output tokens' log probabilities when the request asked for them (`logprobs: true`), else null." }),
        finish_reason: FinishReasonSchema,
      }),
    ),
    usage: CompletionUsageSchema,
  },
  { $id: "CreateChatCompletionResponse", description: "A chat completion." },
);
export type ChatCompletionResponse = Static<typeof ChatCompletionResponseSchema>;

export const ChatCompletionChunkSchema = Type.Object(
  {
    id: Type.String({ description: "Same for every chunk of one completion." }),
    object: Type.Literal("chat.completion.chunk"),
    created: Type.Integer(),
    model: Type.String(),
    system_fingerprint: Type.String(),
    choices: Type.Array(
      Type.Object({
        index: Type.Integer(),
        delta: Type.Object({
          role: Type.Optional(Type.Literal("assistant", { description: "Present on the first delta of each choice." })),
          content: Type.Optional(Nullable(Type.String())),
          refusal: Type.Optional(Type.Null()),
          reasoning_content: Type.Optional(Type.String({ description: "The `router` model only: one line of its progress; the chunk's `switchboard.progress` has the same as data." })),
          tool_calls: Type.Optional(
            Type.Array(
              Type.Object({
                index: Type.Integer({ description: "Position of the call in the message's `tool_calls`." }),
                id: Type.Optional(Type.String({ description: "On the first delta of each call." })),
                type: Type.Optional(Type.Literal("function", { description: "On the first delta of each call." })),
                function: Type.Object({
                  name: Type.Optional(Type.String({ description: "On the first delta of each call." })),
                  arguments: Type.String({ description: "The next piece of the arguments' JSON text." }),
                }),
              }),
            ),
          ),
        }),
        logprobs: Nullable(ChoiceLogprobsSchema, { description: "This delta's tokens when the request asked for log probabilities, else null." }),
        finish_reason: Nullable(FinishReasonSchema),
      }),
      { description: "One entry per choice that changed; empty in the final usage chunk." },
    ),
    usage: Type.Optional(
      Nullable(CompletionUsageSchema, {
        description: "With `stream_options.include_usage`: null on every chunk but the last, whose `choices` is empty and which carries the request's usage.",
      }),
    ),
    switchboard: Type.Optional(
      Type.Object(
        { progress: Type.Object({ type: Type.String(), runId: Type.String() }, { additionalProperties: true, description: "An orchestration stream event (see `OrchestrationStreamEvent`)." }) },
        { description: "The `router` model only: the progress report this chunk's `reasoning_content` describes." },
      ),
    ),
  },
  {
    $id: "CreateChatCompletionStreamResponse",
    description:
      "One server-sent event of a streamed chat completion (`data: {chunk}`). The stream ends with `data: [DONE]`; an error after the stream started arrives as `data: {\"error\": {...}}` and the stream closes without `[DONE]`.",
  },
);
export type ChatCompletionChunk = Static<typeof ChatCompletionChunkSchema>;

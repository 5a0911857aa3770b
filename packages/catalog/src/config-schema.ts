/**
 * The configuration file format (YAML or JSON), as a TypeBox schema. The
 * committed `config.schema.json` is generated from it by
 * `scripts/write-schema.ts`, and a test keeps the two equal. This is the shape
 * of the *file*: most keys are optional here and get their defaults in
 * `load-config.ts`; `types.ts` describes the resolved object apps receive.
 */
import { Type, type Static, type TSchema } from "typebox";

/**
 * Model ids and aliases: what clients send in `model`. They are only ever
 * looked up in the catalog, never used to build file paths.
 */
export const MODEL_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$";

/** Log levels the gateway's pino logger understands. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** Defaults applied by `loadConfig` when the file leaves a key out. */
export const CONFIG_DEFAULTS = {
  host: "0.0.0.0",
  port: 8080,
  bodyLimitBytes: 4 * 1024 * 1024,
  logLevel: "info",
  modelsDir: "~/.cache/switchboard/models",
  contextSize: 4096,
  sequences: 4,
  // Measured on 2 shared vCPUs: any thread count above 1 makes decoding 20-40x
  // slower (thread barriers stall when a vCPU is descheduled). Sequences give
  // the concurrency instead.
  threads: 1,
  maxWaiting: 16,
  defaultMaxTokens: 256,
  maxTokens: 2048,
  embeddings: true,
} as const;

/**
 * A union of object schemas told apart by one literal property. Ajv (with
 * `discriminator: true`) then reports only the errors of the branch the
 * value names, instead of every branch's complaints. Add a branch here when a
 * new backend arrives.
 */
function discriminatedUnion<Variants extends TSchema[]>(propertyName: string, variants: [...Variants], options: { description: string }) {
  return Type.Unsafe<Static<Variants[number]>>({
    type: "object",
    description: options.description,
    discriminator: { propertyName },
    oneOf: variants,
  });
}

const ModelIdSchema = Type.String({ pattern: MODEL_ID_PATTERN });

export const SamplingSchema = Type.Object(
  {
    temperature: Type.Optional(
      Type.Number({ minimum: 0, maximum: 2, description: "Sampling temperature; 0 is greedy (llama.cpp's own default)." }),
    ),
    topP: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: "Nucleus sampling: keep the smallest token set whose probability reaches topP." })),
    topK: Type.Optional(Type.Integer({ minimum: 0, description: "Keep only the topK most likely tokens; 0 turns the filter off." })),
    presencePenalty: Type.Optional(Type.Number({ minimum: -2, maximum: 2, description: "OpenAI-style presence penalty." })),
    frequencyPenalty: Type.Optional(Type.Number({ minimum: -2, maximum: 2, description: "OpenAI-style frequency penalty." })),
  },
  { additionalProperties: false, description: "Per-model sampling defaults; values in a request override them." },
);

export const LlamaModelSchema = Type.Object(
  {
    id: Type.String({
      pattern: MODEL_ID_PATTERN,
      description: "Public model id, as clients send it in `model`: a letter or digit, then up to 127 of letters, digits and . _ : / -.",
    }),
    aliases: Type.Optional(
      Type.Array(ModelIdSchema, {
        description:
          "Other names that resolve to this model, with the same rules as `id`. `default` may be listed only by the model named in `defaultModel`.",
        default: [],
      }),
    ),
    backend: Type.Literal("llama", { description: "`llama`: a GGUF file run in-process by node-llama-cpp." }),
    source: Type.String({
      minLength: 1,
      description:
        "Where the GGUF comes from: a file path (relative paths resolve against this file's folder; `~` is the home folder), " +
        "a node-llama-cpp model URI (`hf:user/repo:quant`, `hf:user/repo/file.gguf`, `https://...`; downloaded once into `modelsDir`), " +
        "or `generated:tiny` / `generated:25m` for the project's random-weight test models.",
    }),
    description: Type.Optional(Type.String({ description: "Shown to operators and in `/v1/models`." })),
    contextSize: Type.Optional(
      Type.Integer({
        minimum: 64,
        maximum: 1_048_576,
        default: CONFIG_DEFAULTS.contextSize,
        description: "Context window in tokens, shared by all sequences of the model.",
      }),
    ),
    sequences: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 64,
        default: CONFIG_DEFAULTS.sequences,
        description: "Generations that run in parallel (llama.cpp sequences in one context).",
      }),
    ),
    threads: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 256,
        default: CONFIG_DEFAULTS.threads,
        description:
          "CPU threads for decoding. Defaults to 1: on a 2-vCPU shared host, any value above 1 measured 20-40x slower " +
          "(thread barriers stall when a vCPU is descheduled); raise it only on dedicated cores, and use `sequences` for concurrency.",
      }),
    ),
    maxWaiting: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 100_000,
        default: CONFIG_DEFAULTS.maxWaiting,
        description: "Requests allowed to wait for a free sequence; past that the gateway answers 429 with Retry-After.",
      }),
    ),
    defaultMaxTokens: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: CONFIG_DEFAULTS.defaultMaxTokens,
        description: "`max_tokens` when a request leaves it out; at most `maxTokens` (defaults to 256, or `maxTokens` when smaller).",
      }),
    ),
    maxTokens: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: CONFIG_DEFAULTS.maxTokens,
        description: "Upper bound on `max_tokens`; at most `contextSize` (defaults to 2048, or `contextSize` when smaller).",
      }),
    ),
    sampling: Type.Optional(SamplingSchema),
    embeddings: Type.Optional(
      Type.Boolean({ default: CONFIG_DEFAULTS.embeddings, description: "Whether `/v1/embeddings` may use this model." }),
    ),
  },
  { additionalProperties: false, description: "A GGUF model served by node-llama-cpp." },
);

/** One object schema per backend, each with a literal `backend`; a new backend adds its schema here. */
const MODEL_VARIANTS = [LlamaModelSchema] as const;

/** The `backend` values the file format accepts. */
export const MODEL_BACKENDS: readonly string[] = MODEL_VARIANTS.map((variant) => variant.properties.backend.const);

export const ModelSchema = discriminatedUnion("backend", [...MODEL_VARIANTS], {
  description: "One model; `backend` says which engine serves it and which other keys apply.",
});

export const ServerSchema = Type.Object(
  {
    host: Type.Optional(
      Type.String({ minLength: 1, default: CONFIG_DEFAULTS.host, description: "Address to listen on. Environment: HOST." }),
    ),
    port: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 65535,
        default: CONFIG_DEFAULTS.port,
        description: "TCP port; 0 picks a free one. Environment: PORT.",
      }),
    ),
    bodyLimitBytes: Type.Optional(
      Type.Integer({
        minimum: 1024,
        maximum: 1024 * 1024 * 1024,
        default: CONFIG_DEFAULTS.bodyLimitBytes,
        description: "Largest request body accepted, in bytes; larger bodies get 413.",
      }),
    ),
    corsOrigins: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        default: [],
        description: "Origins allowed by CORS (`https://app.example.com`, or `*` for any); empty sends no CORS headers.",
      }),
    ),
    metricsRequireKey: Type.Optional(
      Type.Boolean({ default: false, description: "Whether `/metrics` needs an API key when keys are set." }),
    ),
    logLevel: Type.Optional(
      Type.Enum([...LOG_LEVELS], { default: CONFIG_DEFAULTS.logLevel, description: "Log level. Environment: LOG_LEVEL." }),
    ),
  },
  { additionalProperties: false, description: "The HTTP server." },
);

export const ConfigFileSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: "Path or URL of this schema, for editors." })),
    server: Type.Optional(ServerSchema),
    apiKeys: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        default: [],
        description:
          "Bearer keys clients must send; empty leaves the API open. Environment: SWITCHBOARD_API_KEYS (comma-separated) replaces this list.",
      }),
    ),
    modelsDir: Type.Optional(
      Type.String({
        minLength: 1,
        default: CONFIG_DEFAULTS.modelsDir,
        description:
          "Where downloaded and generated models are kept; relative paths resolve against this file's folder, `~` is the home folder. " +
          "Environment: SWITCHBOARD_MODELS_DIR.",
      }),
    ),
    defaultModel: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Id or alias of the model clients get when they name `default`. Defaults to the model with the alias `default`, else the first model.",
      }),
    ),
    models: Type.Optional(
      Type.Array(ModelSchema, {
        minItems: 1,
        description:
          "The models this gateway serves. When left out, the built-in list is used: a generated test model and a small instruct model from Hugging Face.",
      }),
    ),
  },
  { additionalProperties: false, description: "Switchboard gateway configuration." },
);

/** The configuration file as written (before defaults). */
export type ConfigFile = Static<typeof ConfigFileSchema>;
/** One model entry as written in the file. */
export type ModelFileEntry = Static<typeof ModelSchema>;

/** The JSON Schema document committed as `packages/catalog/config.schema.json`. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "Switchboard configuration",
    ...ConfigFileSchema,
  };
}

/** The committed file's exact text: pretty-printed, with a final newline. */
export function renderConfigJsonSchema(): string {
  return JSON.stringify(configJsonSchema(), null, 2) + "\n";
}

/**
 * The configuration file format (YAML or JSON), as a TypeBox schema. The
 * committed `config.schema.json` is generated from it by
 * `scripts/write-schema.ts`, and a test keeps the two equal. This is the shape
 * of the *file*: most keys are optional here and get their defaults in
 * `load-config.ts`; `types.ts` describes the resolved object apps receive.
 */
import { TASK_NAMES, type Modality } from "@switchboard/protocol";
import { Type, type Static, type TSchema } from "typebox";
import type { ArtifactSettings, HuggingFaceSettings, RouterSettings } from "./types.js";

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

export const HUGGING_FACE_ROUTER_URL = "https://router.huggingface.co";
export const HUGGING_FACE_HUB_URL = "https://huggingface.co";

/** Defaults of the `huggingface:` section (the token has none). */
export const HUGGING_FACE_DEFAULTS: Readonly<HuggingFaceSettings> = {
  baseUrl: HUGGING_FACE_ROUTER_URL,
  hubUrl: HUGGING_FACE_HUB_URL,
  retries: 2,
  backoffBaseMs: 200,
  backoffMaxMs: 5_000,
  maxResponseBytes: 32 * 1024 * 1024,
  circuitFailureThreshold: 5,
  circuitCoolDownMs: 30_000,
  userUrls: { allowList: [], maxBytes: 20 * 1024 * 1024, timeoutMs: 10_000 },
};

/** Per-model call budget of a remote model when the file leaves `timeoutMs` out. */
export const DEFAULT_MODEL_TIMEOUT_MS = 60_000;

/** Defaults of the `artifacts:` section. */
export const ARTIFACT_DEFAULTS: Readonly<Omit<ArtifactSettings, "dir" | "redisUrl" | "publicBaseUrl" | "secret">> = {
  ttlSeconds: 3600,
  maxBytes: 32 * 1024 * 1024,
  maxTotalBytes: 512 * 1024 * 1024,
  urlTtlSeconds: 3600,
};

/** Catalog id of the router (the HuggingGPT loop served as a model). */
export const ROUTER_MODEL_ID = "router";

/** Defaults of the `router:` section; `planner` defaults to `defaultModel`, `selector` and `responder` to `planner`. */
export const ROUTER_DEFAULTS: Readonly<Omit<RouterSettings, "planner" | "selector" | "responder">> = {
  enabled: true,
  aliases: ["hugginggpt"],
  maxTasks: 8,
  topK: 5,
  deadlineMs: 120_000,
  maxReplans: 2,
  concurrency: 16,
  runTtlSeconds: 3600,
};

/** The kinds of data models take and produce (`modalities`). */
export const MODALITIES = ["text", "image", "audio", "video", "table", "embedding"] as const satisfies readonly Modality[];

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
        description: "Context window in tokens of each sequence (each parallel generation sees up to this many tokens).",
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

const ModalityListSchema = (description: string) =>
  Type.Array(Type.Enum([...MODALITIES]), { minItems: 1, uniqueItems: true, description });

export const HfModelSchema = Type.Object(
  {
    id: Type.String({
      pattern: MODEL_ID_PATTERN,
      description: "Public model id, as clients send it in `model`: a letter or digit, then up to 127 of letters, digits and . _ : / -.",
    }),
    aliases: Type.Optional(
      Type.Array(ModelIdSchema, { description: "Other names that resolve to this model, with the same rules as `id`.", default: [] }),
    ),
    backend: Type.Literal("hf", {
      description: "`hf`: a remote model (Hugging Face Inference Providers, an Inference Endpoint, or a TGI / OpenAI-compatible server).",
    }),
    model: Type.String({
      pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)?$",
      description: "Hugging Face model id (`org/name`), as the provider or endpoint knows it.",
    }),
    task: Type.Enum([...TASK_NAMES], {
      description:
        "The task this model serves: a Hugging Face pipeline tag in kebab-case. `conversational` and `text-generation` models also serve " +
        "`/v1/chat/completions` and `/v1/completions`; `feature-extraction` models serve `/v1/embeddings`; `text-to-image` serves " +
        "`/v1/images/generations`, `automatic-speech-recognition` `/v1/audio/transcriptions`, `text-to-speech` `/v1/audio/speech`.",
    }),
    provider: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Inference provider: `hf-inference` (the default when neither this nor `endpointUrl` is set) serves every task; `auto` and other " +
          "providers (`together`, `groq`, ...) are accepted for `conversational` models only.",
      }),
    ),
    endpointUrl: Type.Optional(
      Type.String({
        pattern: "^https?://",
        description: "URL of an Inference Endpoint or any TGI / OpenAI-compatible server; no Hub lookup. Excludes `provider`.",
      }),
    ),
    sendToken: Type.Optional(
      Type.Boolean({
        description: "Send the Hugging Face token to `endpointUrl`. Default: only to `*.endpoints.huggingface.cloud` (and always to the router).",
      }),
    ),
    description: Type.Optional(Type.String({ description: "Shown to operators and to the router's model selection." })),
    downloads: Type.Optional(Type.Integer({ minimum: 0, description: "Downloads on the Hub; candidates for a task are ranked by it." })),
    likes: Type.Optional(Type.Integer({ minimum: 0, description: "Likes on the Hub; a second ranking signal." })),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 3_600_000,
        default: DEFAULT_MODEL_TIMEOUT_MS,
        description: "Budget of one call in milliseconds, Hub lookup, retries and backoff included; streams use it as an idle timeout.",
      }),
    ),
    modalities: Type.Optional(
      Type.Object(
        {
          in: ModalityListSchema("What the model takes."),
          out: ModalityListSchema("What the model produces."),
        },
        { additionalProperties: false, description: "Kinds of data in and out; defaults to the task's." },
      ),
    ),
  },
  { additionalProperties: false, description: "A remote specialist model reached through @huggingface/inference." },
);

/** One object schema per backend, each with a literal `backend`; a new backend adds its schema here. */
const MODEL_VARIANTS = [LlamaModelSchema, HfModelSchema] as const;

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

const positiveMs = (fallback: number, description: string) =>
  Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000, default: fallback, description }));

export const HuggingFaceSchema = Type.Object(
  {
    baseUrl: Type.Optional(
      Type.String({
        pattern: "^https?://",
        default: HUGGING_FACE_DEFAULTS.baseUrl,
        description: "Replaces `https://router.huggingface.co` in every inference request (a proxy, a mirror, a test server).",
      }),
    ),
    hubUrl: Type.Optional(
      Type.String({
        pattern: "^https?://",
        default: HUGGING_FACE_DEFAULTS.hubUrl,
        description: "Replaces `https://huggingface.co` for Hub API requests (provider mapping lookups).",
      }),
    ),
    token: Type.Optional(
      Type.String({
        minLength: 1,
        description: "Hugging Face token (`hf_...`). Environment: HF_TOKEN wins over the file. Never logged or echoed.",
      }),
    ),
    retries: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 10, default: HUGGING_FACE_DEFAULTS.retries, description: "Extra attempts after a retryable upstream failure (5xx, 408, 429, network)." }),
    ),
    backoffBaseMs: positiveMs(HUGGING_FACE_DEFAULTS.backoffBaseMs, "Backoff before retry n is random in [0, min(backoffMaxMs, backoffBaseMs * 2^n)], unless Retry-After says otherwise."),
    backoffMaxMs: positiveMs(HUGGING_FACE_DEFAULTS.backoffMaxMs, "Longest backoff between attempts, in milliseconds."),
    maxResponseBytes: Type.Optional(
      Type.Integer({
        minimum: 1024,
        maximum: 1024 * 1024 * 1024,
        default: HUGGING_FACE_DEFAULTS.maxResponseBytes,
        description: "Largest upstream response read, in bytes (streams: in total); larger answers are refused with 502.",
      }),
    ),
    circuitFailureThreshold: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        default: HUGGING_FACE_DEFAULTS.circuitFailureThreshold,
        description: "Consecutive upstream failures that take a model out of rotation (503 with Retry-After until a probe succeeds).",
      }),
    ),
    circuitCoolDownMs: positiveMs(HUGGING_FACE_DEFAULTS.circuitCoolDownMs, "How long a model stays out of rotation before one probe request is let through."),
    userUrls: Type.Optional(
      Type.Object(
        {
          allowList: Type.Optional(
            Type.Array(Type.String({ minLength: 1 }), {
              default: [],
              description: "Host names, IP addresses or CIDR ranges that may be fetched although they are private (loopback, LAN, link-local).",
            }),
          ),
          maxBytes: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 1024 * 1024 * 1024, default: HUGGING_FACE_DEFAULTS.userUrls.maxBytes, description: "Largest body fetched from a user URL." }),
          ),
          timeoutMs: positiveMs(HUGGING_FACE_DEFAULTS.userUrls.timeoutMs, "Time allowed for fetching a user URL, redirects included."),
        },
        { additionalProperties: false, description: "Binary task inputs given as http(s) URLs: only public addresses, size and time capped." },
      ),
    ),
  },
  { additionalProperties: false, description: "Settings shared by every remote (`backend: hf`) model." },
);

export const ArtifactsSchema = Type.Object(
  {
    dir: Type.Optional(
      Type.String({
        minLength: 1,
        description: "Folder of the embedded default's disk store (relative paths resolve against this file's folder); memory when absent.",
      }),
    ),
    redisUrl: Type.Optional(
      Type.String({
        pattern: "^rediss?://",
        description: "Redis of a shared store, reachable by every process of the fleet. Fleet-mode processes use REDIS_URL when absent.",
      }),
    ),
    ttlSeconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 30 * 24 * 3600, default: ARTIFACT_DEFAULTS.ttlSeconds, description: "How long an artifact is kept after it was last stored." }),
    ),
    maxBytes: Type.Optional(
      Type.Integer({ minimum: 1024, maximum: 512 * 1024 * 1024, default: ARTIFACT_DEFAULTS.maxBytes, description: "Largest artifact stored, in bytes." }),
    ),
    maxTotalBytes: Type.Optional(
      Type.Integer({
        minimum: 1024,
        default: ARTIFACT_DEFAULTS.maxTotalBytes,
        description: "Memory store: bytes kept in all, oldest dropped first. (Redis: use its own maxmemory policy.)",
      }),
    ),
    urlTtlSeconds: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 7 * 24 * 3600, default: ARTIFACT_DEFAULTS.urlTtlSeconds, description: "Lifetime of a signed artifact URL (never past the artifact's expiry)." }),
    ),
    publicBaseUrl: Type.Optional(
      Type.String({ pattern: "^https?://", description: "Origin used in artifact URLs behind a proxy (`https://api.example.com`); the request's own origin when absent." }),
    ),
    secret: Type.Optional(
      Type.String({
        minLength: 16,
        description:
          "HMAC key of artifact URLs; gateways behind one address must share it. Environment: SWITCHBOARD_ARTIFACT_SECRET wins. Random per process when absent.",
      }),
    ),
  },
  { additionalProperties: false, description: "Where binary task outputs (images, audio, video) are kept and how their URLs are signed." },
);

const chatModelName = (description: string) => Type.Optional(Type.String({ minLength: 1, description }));

export const RouterSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ default: ROUTER_DEFAULTS.enabled, description: "Serve the router as the model `router` (and its aliases) and at `/v1/orchestrations`." })),
    aliases: Type.Optional(
      Type.Array(Type.String({ pattern: MODEL_ID_PATTERN }), { default: [...ROUTER_DEFAULTS.aliases], description: "Other names clients may send in `model` for the router." }),
    ),
    planner: chatModelName("Id or alias of the chat model that plans (a local model plans under grammars, so every plan is valid). Default: defaultModel."),
    selector: chatModelName("Id or alias of the chat model that chooses among the top candidates of each task. Default: the planner."),
    responder: chatModelName("Id or alias of the chat model that writes the answer from the results. Default: the planner."),
    maxTasks: Type.Optional(Type.Integer({ minimum: 1, maximum: 32, default: ROUTER_DEFAULTS.maxTasks, description: "Most tasks in one plan (client plans included)." })),
    topK: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, default: ROUTER_DEFAULTS.topK, description: "Candidates per task the selector chooses among." })),
    deadlineMs: Type.Optional(
      Type.Integer({ minimum: 1000, maximum: 3_600_000, default: ROUTER_DEFAULTS.deadlineMs, description: "Time a run may spend planning, selecting and executing; the answer is written after it from what finished." }),
    ),
    maxReplans: Type.Optional(Type.Integer({ minimum: 0, maximum: 10, default: ROUTER_DEFAULTS.maxReplans, description: "Re-plans a remote planner gets after a plan that does not validate." })),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, default: ROUTER_DEFAULTS.concurrency, description: "Runs one router process (or the embedded gateway) works on at once; the rest wait in the router queue." })),
    runTtlSeconds: Type.Optional(
      Type.Integer({ minimum: 60, maximum: 30 * 24 * 3600, default: ROUTER_DEFAULTS.runTtlSeconds, description: "How long run records stay readable at `GET /v1/orchestrations/{id}`." }),
    ),
  },
  { additionalProperties: false, description: "The router: HuggingGPT's plan, select, execute, respond loop over the catalog's models." },
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
    huggingface: Type.Optional(HuggingFaceSchema),
    artifacts: Type.Optional(ArtifactsSchema),
    router: Type.Optional(RouterSchema),
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

/**
 * The validated, frozen configuration every app receives. `config.schema.json`
 * (generated from `config-schema.ts`) is the committed contract for the file format;
 * these types are what the code sees after defaults are applied.
 */
import type { Modality, TaskName } from "@switchboard/protocol";

/** Per-model sampling defaults; request values override them. */
export interface SamplingDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
}

/** A GGUF model served by node-llama-cpp. */
export interface LlamaModelConfig {
  /** Public id, as clients send it in `model`. */
  id: string;
  /** Other ids that resolve to this model. */
  aliases: string[];
  backend: "llama";
  /**
   * Where the GGUF comes from: a file path, a node-llama-cpp model URI
   * (`hf:user/repo:quant`, `https://...`), or `generated:tiny` /
   * `generated:25m` for the project's own random-weight test models.
   */
  source: string;
  description?: string;
  /** Context window in tokens of each sequence. */
  contextSize: number;
  /** Parallel generations (llama.cpp sequences) in the one context. */
  sequences: number;
  /** CPU threads for decoding; more than 1 is slower on small shared-vCPU hosts. */
  threads: number;
  /** Requests allowed to wait for a free sequence; past it the gateway answers 429. */
  maxWaiting: number;
  /** `max_tokens` when a request leaves it out. */
  defaultMaxTokens: number;
  /** Upper bound on `max_tokens`; larger requests are capped to it. */
  maxTokens: number;
  sampling: SamplingDefaults;
  /** Whether `/v1/embeddings` may use this model. */
  embeddings: boolean;
}

/**
 * A remote specialist model (`backend: "hf"`): Hugging Face Inference
 * Providers, an Inference Endpoint, or any TGI / OpenAI-compatible server,
 * reached through `@huggingface/inference`.
 */
export interface HfModelConfig {
  /** Public id, as clients send it in `model`. */
  id: string;
  aliases: string[];
  backend: "hf";
  /** Hugging Face model id (`org/name`). */
  model: string;
  /**
   * The one task this entry serves (a pipeline tag in kebab-case).
   * `conversational` and `text-generation` models also serve chat and text
   * completions; `feature-extraction` (and `sentence-similarity`) models serve
   * embeddings.
   */
  task: TaskName;
  /**
   * Inference provider. `hf-inference` (the default) for every task;
   * `auto` sends chat to the router's OpenAI-compatible endpoint. Other
   * providers are accepted for `conversational` only (their other task
   * helpers fetch result URLs outside the engine's fetch).
   */
  provider?: string;
  /** An Inference Endpoint or any TGI / OpenAI-compatible server; excludes `provider`. */
  endpointUrl?: string;
  /**
   * Whether to send the Hugging Face token. Default: yes for the router and
   * for `*.endpoints.huggingface.cloud`, no for any other `endpointUrl` (the
   * token is a Hugging Face secret, not that server's).
   */
  sendToken?: boolean;
  description?: string;
  /** Popularity on the Hub; the router and the task routes rank candidates by it. */
  downloads?: number;
  likes?: number;
  /** Budget of one call, retries and backoff included, in milliseconds. */
  timeoutMs: number;
  /** What the model takes and produces; defaults to the task's modalities. */
  modalities: { in: Modality[]; out: Modality[] };
}

export type ModelConfig = LlamaModelConfig | HfModelConfig;

/** Fetching user-supplied URLs (binary task inputs given as http(s) URLs). */
export interface UserUrlSettings {
  /** Host names, IP addresses or CIDR ranges that may be fetched even though they are private. */
  allowList: string[];
  maxBytes: number;
  timeoutMs: number;
}

/** Global Hugging Face settings (`huggingface:` in the config file). */
export interface HuggingFaceSettings {
  /** Replaces `https://router.huggingface.co` in every request. */
  baseUrl: string;
  /** Replaces `https://huggingface.co` for Hub API requests (`/api/...`). */
  hubUrl: string;
  /** `HF_TOKEN` (the environment wins over the file); never logged, never echoed. */
  token?: string;
  /** Extra attempts after a retryable failure (5xx, 429, network error). */
  retries: number;
  /** Backoff before retry n is uniformly random in [0, min(backoffMaxMs, backoffBaseMs * 2^n)] unless `Retry-After` says otherwise. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Largest upstream response body read, in bytes (streams: in total). */
  maxResponseBytes: number;
  /** Consecutive failures that open a model's circuit. */
  circuitFailureThreshold: number;
  /** How long an open circuit stays open before one probe is let through. */
  circuitCoolDownMs: number;
  userUrls: UserUrlSettings;
}

/**
 * The artifact store: binary task outputs (images, audio, video), kept by
 * content address (SHA-256) for `ttlSeconds` and served by the gateway at
 * signed, expiring URLs. Which store is used: `redisUrl` → Redis; otherwise
 * fleet-mode processes use the fleet's Redis (`REDIS_URL`), the embedded
 * default a folder (`dir`) or, without one, memory.
 */
export interface ArtifactSettings {
  /** Folder of the disk store (embedded default); memory when absent. */
  dir?: string;
  /** Redis of a shared store; fleet-mode processes use `REDIS_URL` when absent. */
  redisUrl?: string;
  /** How long an artifact is kept after it was last stored. */
  ttlSeconds: number;
  /** Largest artifact accepted, in bytes. */
  maxBytes: number;
  /** Memory store only: bytes kept in all; the oldest artifacts go first past it. */
  maxTotalBytes: number;
  /** Lifetime of a signed URL (never past the artifact's own expiry). */
  urlTtlSeconds: number;
  /** Origin for absolute artifact URLs (`https://api.example.com`) behind a proxy; the request's own origin when absent. */
  publicBaseUrl?: string;
  /**
   * HMAC key of artifact URLs (`SWITCHBOARD_ARTIFACT_SECRET` wins over the
   * file). Gateways that share artifacts behind one address need the same
   * key; when absent each process picks a random one, so its URLs stop
   * working when it restarts. Never logged, never echoed.
   */
  secret?: string;
}

/** The router (`router:` in the config file); model names are resolved to catalog ids. */
export interface RouterSettings {
  enabled: boolean;
  /** Other names of the router model (`hugginggpt`). */
  aliases: string[];
  /** Catalog ids of the chat models that plan, select and respond. */
  planner: string;
  selector: string;
  responder: string;
  maxTasks: number;
  topK: number;
  deadlineMs: number;
  maxReplans: number;
  /** Runs one process works on at once. */
  concurrency: number;
  /** How long run records are kept. */
  runTtlSeconds: number;
}

export interface ServerConfig {
  host: string;
  port: number;
  /** Largest request body accepted, in bytes; larger bodies get 413. */
  bodyLimitBytes: number;
  /** Origins allowed by CORS; empty disables CORS headers. */
  corsOrigins: string[];
  /** Whether `/metrics` needs an API key when keys are set. */
  metricsRequireKey: boolean;
  logLevel: string;
}

export interface SwitchboardConfig {
  server: ServerConfig;
  /** Bearer keys; when empty, the API is open. */
  apiKeys: string[];
  /** Where downloaded and generated models are kept. */
  modelsDir: string;
  /** Model used by clients that name `default`; the first model when unset. */
  defaultModel: string;
  models: ModelConfig[];
  /** Hugging Face settings shared by every remote model. */
  huggingface: HuggingFaceSettings;
  artifacts: ArtifactSettings;
  router: RouterSettings;
  /** Absolute path of the file this configuration was read from; absent for the built-in default or inline data. */
  configPath?: string;
}

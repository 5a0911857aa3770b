/**
 * The validated, frozen configuration every app receives. `config.schema.json`
 * (generated from `config-schema.ts`) is the committed contract for the file format;
 * these types are what the code sees after defaults are applied.
 */

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
  /** Context window in tokens, shared by all sequences. */
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

export type ModelConfig = LlamaModelConfig;

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
  /** Absolute path of the file this configuration was read from; absent for the built-in default or inline data. */
  configPath?: string;
}

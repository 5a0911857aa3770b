/**
 * What the Hugging Face engine needs from the configuration. The catalog owns
 * the file format; these are the resolved values it hands down (frozen), with
 * the defaults below applied by whoever loads the file.
 */
import type { Modality, TaskName } from "@switchboard/protocol";

/** A remote specialist model (`backend: "hf"` in the catalog). */
export interface HfModelConfig {
  /** Public id, as clients send it in `model`. */
  id: string;
  aliases: string[];
  backend: "hf";
  /** Hugging Face model id (`org/name`). */
  model: string;
  /** The one task this entry serves; `conversational` models also serve chat completions. */
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
  /** Popularity on the Hub; the router ranks candidates by it. */
  downloads?: number;
  likes?: number;
  /** Budget of one call, retries and backoff included, in milliseconds. */
  timeoutMs: number;
  modalities: { in: Modality[]; out: Modality[] };
}

/** Global Hugging Face settings (`huggingface:` in the config file). */
export interface HuggingFaceSettings {
  /** Replaces `https://router.huggingface.co` in every request. */
  baseUrl: string;
  /** Replaces `https://huggingface.co` for Hub API requests (`/api/...`). */
  hubUrl: string;
  /** `HF_TOKEN`; never logged, never echoed. */
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
  /** Fetching user-supplied URLs (binary task inputs given as http(s) URLs). */
  userUrls: UserUrlSettings;
}

export interface UserUrlSettings {
  /** Host names, IP addresses or CIDR ranges that may be fetched even though they are private. */
  allowList: string[];
  maxBytes: number;
  timeoutMs: number;
}

export const HUGGING_FACE_ROUTER_URL = "https://router.huggingface.co";
export const HUGGING_FACE_HUB_URL = "https://huggingface.co";

export const HF_DEFAULTS: HuggingFaceSettings = {
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

/** Default per-model call budget when the catalog leaves it out. */
export const DEFAULT_MODEL_TIMEOUT_MS = 60_000;

export { HfBackend, artifactResolver, chatRequestFromJob, type HfBackendOptions } from "./hf-backend.js";
export { createConfiguredHfBackend, type ConfiguredHfBackendOptions } from "./configured-backend.js";
export { HfEngine, checkHfModels, type HfCallContext, type HfChatChunk, type HfChatOutput, type HfChatRequest, type HfEngineOptions } from "./hf-engine.js";
export { TASK_RUNNERS, normalizeEmbeddings, type HfCallArgs, type TaskCall } from "./task-runners.js";
export { UpstreamFetch, parseRetryAfter, type ExpectedBody, type UpstreamCall, type UpstreamFetchOptions } from "./upstream-fetch.js";
export { CircuitBreaker, type CircuitBreakerOptions, type CircuitState, type CircuitTicket } from "./circuit-breaker.js";
export type { HfUpstreamMetrics } from "./hf-metrics.js";
export {
  CallCancelledError,
  circuitOpen,
  countsAsModelFailure,
  modelLoading,
  redactSecrets,
  upstreamBadResponse,
  upstreamFailed,
  upstreamRateLimited,
  upstreamRejectedInput,
  upstreamTimeout,
} from "./upstream-errors.js";
export { fetchUserUrl, type FetchUserUrlOptions, type FetchedUrl, type ResolvedAddress } from "./user-url.js";
export { blockedReason, isAllowListed, parseIPv4, parseIPv6 } from "./address-policy.js";
export { decodeBase64, resolveBinaryInput, sniffMedia, toBinaryOutput, type ArtifactResolver, type BinaryData, type BinaryInputContext, type MediaKind } from "./binary-data.js";
export {
  DEFAULT_MODEL_TIMEOUT_MS,
  HF_DEFAULTS,
  HUGGING_FACE_HUB_URL,
  HUGGING_FACE_ROUTER_URL,
  type HfModelConfig,
  type HuggingFaceSettings,
  type UserUrlSettings,
} from "./hf-settings.js";

/**
 * What the Hugging Face engine needs from the configuration. The catalog owns
 * the file format, the resolved types and their defaults; they are re-exported
 * here under the engine's names so callers need only this package.
 */
export {
  DEFAULT_MODEL_TIMEOUT_MS,
  HUGGING_FACE_DEFAULTS as HF_DEFAULTS,
  HUGGING_FACE_HUB_URL,
  HUGGING_FACE_ROUTER_URL,
  type HfModelConfig,
  type HuggingFaceSettings,
  type UserUrlSettings,
} from "@switchboard/catalog";

export { LlamaBackend, type LlamaBackendOptions, type LlamaGpu } from "./llama-backend.js";
export type { CheckModelFile, ResolveModelPath } from "./model-runtime.js";
export type { LlamaEngineMetrics } from "./engine-metrics.js";
export { safeErrorMessage } from "./model-runtime.js";
export {
  jsonSchemaToGbnf,
  toolCallGbnf,
  limitsForSchema,
  UnsupportedSchemaError,
  type JsonGrammarLimits,
} from "./json-schema-grammar.js";

export * from "./types.js";
export { TASK_SIGNATURES, BINARY_MODALITIES, literalAllowed, taskSignatures } from "./task-signatures.js";
export {
  DEFAULT_MAX_TASKS,
  assertValidPlan,
  containsReferenceMarker,
  deriveDep,
  generatedReference,
  inputReference,
  invalidPlanError,
  parseReference,
  validatePlan,
  type Reference,
  type ValidatePlanOptions,
} from "./plan-validation.js";
export { DONE, argumentSchema, buildPlanSchema, buildStepSchema, sourcesFor, stepMaxTokens, type StepContext, type StepSchema } from "./plan-schema.js";
export { findMentions, prepareConversation, type Mention, type PreparedConversation } from "./run-inputs.js";
export { ModelClock, callLlm, chatJob, type LlmAnswer, type LlmCallOptions } from "./llm-call.js";
export { makePlan, readStep, type PlanStageOptions, type PlanStageResult } from "./planner.js";
export { rankCandidates, scoreCandidate, selectModels, selectionSchema, type RankedCandidate, type SelectStageOptions } from "./selector.js";
export { executePlan, type ExecuteStageOptions } from "./scheduler.js";
export { binaryOutputAsInput, collectArtifacts, describeValue, extractModality, isBinaryOutput, summarizeOutput } from "./results.js";
export { createJobExecutor, parseTable, taskJobPayload, type JobExecutorOptions, type JobSubmit } from "./job-executor.js";
export { RESULT_CHARS_PER_TASK, respond, resultsText, type RespondStageOptions } from "./responder.js";
export {
  DEFAULT_ORCHESTRATION_CONFIG,
  availableTasks,
  orchestrationConfig,
  runOrchestration,
  type OrchestrationOptions,
} from "./orchestration.js";
export { ModelHealth, liveCatalogView, measuredExecutor, type LiveCatalogOptions, type ModelHealthOptions } from "./catalog-view.js";
export { MemoryRunStore, RedisRunStore, type RedisRunStoreOptions, type RunStore, type RunStoreLimits } from "./run-store.js";
export { RouterBackend, type RouterBackendOptions } from "./router-backend.js";
export { progressText } from "./progress-text.js";

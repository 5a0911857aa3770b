export * from "./errors.js";
export * from "./jobs.js";
export * from "./logger.js";
export * from "./backend.js";
export * from "./job-signal.js";
export * from "./tasks.js";
export * from "./task-http.js";
export * from "./openai/index.js";

export * from "./errors.js";
export * from "./jobs.js";
export * from "./logger.js";
export * from "./backend.js";

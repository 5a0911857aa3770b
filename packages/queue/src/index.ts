export * from "./dispatcher.js";
export * from "./in-process.js";
export * from "./queue-metrics.js";
export * from "./bullmq/index.js";

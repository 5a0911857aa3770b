export * from "./hf-worker.js";

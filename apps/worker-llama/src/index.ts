export * from "./llama-worker.js";

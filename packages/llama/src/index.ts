export * from "./engine/index.js";
export * from "./gguf/index.js";
export * from "./model-source/index.js";
export * from "./configured-backend.js";

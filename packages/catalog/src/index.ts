export * from "./types.js";
export * from "./config-schema.js";
export * from "./model-source.js";
export * from "./default-config.js";
export * from "./load-config.js";
export * from "./catalog.js";

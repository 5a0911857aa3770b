export * from "./dispatcher.js";
export * from "./in-process.js";

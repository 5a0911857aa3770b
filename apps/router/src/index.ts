export * from "./router-worker.js";

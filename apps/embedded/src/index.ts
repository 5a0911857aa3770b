export * from "./embedded.js";

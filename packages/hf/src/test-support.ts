/**
 * Shared test fixtures: a wire server with one provider-style and one
 * endpoint-style model per task, engine settings pointed at it, and a logger
 * that keeps every line so tests can search them (for the token, say).
 * Used by the tests only; not exported from the package.
 */
import { TASK_NAMES, type Logger, type TaskName } from "@switchboard/protocol";
import { startHfWireServer, type WireServer } from "@switchboard/hf-wire-server";
import { HF_DEFAULTS, type HfModelConfig, type HuggingFaceSettings } from "./hf-settings.js";

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Looks like a real token so the client sends it to the router and the Hub. */
export const TEST_TOKEN = "hf_SwItChBoArDtEsTtOkEn0123456789";

export interface CapturedLogger extends Logger {
  lines: string[];
}

export function captureLogger(bindings: Record<string, unknown> = {}, lines: string[] = []): CapturedLogger {
  const write = (level: string) => (object: object | string, message?: string) => {
    lines.push(JSON.stringify({ level, ...bindings, ...(typeof object === "string" ? { msg: object } : object), ...(message ? { msg: message } : {}) }));
  };
  return {
    lines,
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    child: (more) => captureLogger({ ...bindings, ...more }, lines),
  };
}

export const providerId = (task: TaskName) => `p-${task}`;
export const endpointId = (task: TaskName) => `e-${task}`;
export const hubModel = (task: TaskName, style: "p" | "e") => `acme/${task}-${style}`;

export function modelEntry(id: string, task: TaskName, model: string, extra: Partial<HfModelConfig> = {}): HfModelConfig {
  return { id, aliases: [], backend: "hf", model, task, timeoutMs: 5_000, modalities: { in: ["text"], out: ["text"] }, ...extra };
}

export interface WireFixture {
  server: WireServer;
  settings: HuggingFaceSettings;
  models: HfModelConfig[];
}

/** A wire server that knows `acme/<task>-p` and `acme/<task>-e` for every task, and the matching catalog entries. */
export async function startWireFixture(settings: Partial<HuggingFaceSettings> = {}): Promise<WireFixture> {
  const wireModels: Record<string, string> = {};
  for (const task of TASK_NAMES) {
    wireModels[hubModel(task, "p")] = task;
    wireModels[hubModel(task, "e")] = task;
  }
  const server = await startHfWireServer({ token: TEST_TOKEN, models: wireModels });
  const models: HfModelConfig[] = [];
  for (const task of TASK_NAMES) {
    models.push(modelEntry(providerId(task), task, hubModel(task, "p")));
    models.push(modelEntry(endpointId(task), task, hubModel(task, "e"), { endpointUrl: `${server.endpointBase}/${hubModel(task, "e")}`, sendToken: true }));
  }
  return {
    server,
    models,
    settings: {
      ...HF_DEFAULTS,
      baseUrl: server.url,
      hubUrl: server.url,
      token: TEST_TOKEN,
      backoffBaseMs: 1,
      backoffMaxMs: 5,
      ...settings,
    },
  };
}

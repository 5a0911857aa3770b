/**
 * Real pieces for the planner's end-to-end tests: the generated tiny GGUF
 * behind the real LlamaBackend, and HfBackend against the local Hugging Face
 * wire-format server, both on one InProcessDispatcher.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { LlamaModelConfig } from "@switchboard/catalog";
import { HF_DEFAULTS, HfBackend, type HfModelConfig } from "@switchboard/hf";
import { startHfWireServer, type WireServer } from "@switchboard/hf-wire-server";
import { LlamaBackend, ensureTestModel } from "@switchboard/llama";
import { TASK_MODALITIES, type TaskName } from "@switchboard/protocol";
import { InProcessDispatcher } from "@switchboard/queue";
import type { CatalogCandidate, CatalogView, ChatLlm, JobSubmit } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));

/** `../shared/taskbench/user_requests.json` relative to the repository root, when present (optional data). */
export const TASKBENCH_REQUESTS = resolve(here, "../../../../shared/taskbench/user_requests.json");

/** `count` requests spread evenly over the TaskBench file, or undefined when the data is absent. */
export async function taskbenchSample(count: number, path = TASKBENCH_REQUESTS): Promise<{ id: string; text: string }[] | undefined> {
  if (!existsSync(path)) return undefined;
  const lines = (await readFile(path, "utf8")).split("\n").filter((line) => line.trim().length > 0);
  const step = Math.max(1, Math.floor(lines.length / count));
  const sample: { id: string; text: string }[] = [];
  for (let index = 0; index < lines.length && sample.length < count; index += step) {
    const row = JSON.parse(lines[index]!) as { id: string; user_request: string };
    sample.push({ id: row.id, text: row.user_request });
  }
  return sample;
}

export interface TinyLlama {
  backend: LlamaBackend;
  /** A grammar-enforced ChatLlm on the tiny model, through the dispatcher. */
  llm: ChatLlm;
  close(): Promise<void>;
}

export function tinyModelConfig(overrides: Partial<LlamaModelConfig> = {}): LlamaModelConfig {
  return {
    id: "tiny",
    aliases: [],
    backend: "llama",
    source: "generated:tiny",
    contextSize: 4096,
    sequences: 3,
    threads: 1,
    maxWaiting: 64,
    defaultMaxTokens: 64,
    maxTokens: 4096,
    sampling: {},
    embeddings: false,
    ...overrides,
  };
}

/** The generated tiny model on the real LlamaBackend, loaded and ready. */
export async function startTinyLlama(overrides: Partial<LlamaModelConfig> = {}): Promise<TinyLlama & { directory: string }> {
  const directory = await mkdtemp(join(tmpdir(), "switchboard-planner-"));
  const modelPath = await ensureTestModel("tiny", directory);
  const config = tinyModelConfig(overrides);
  const backend = new LlamaBackend({ models: [config], resolvePath: async () => modelPath });
  backend.start();
  const state = await backend.whenReady(config.id);
  if (state.state !== "ready") throw new Error(`tiny model failed to load: ${state.error}`);
  const dispatcher = new InProcessDispatcher({ backends: [backend] });
  return {
    directory,
    backend,
    llm: { model: config.id, grammarEnforced: true, submit: (job, options) => dispatcher.submit(job, options) },
    async close() {
      await backend.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

export interface Specialists {
  server: WireServer;
  backend: HfBackend;
  models: HfModelConfig[];
  /** Task requests the wire server received (Hub lookups and chat excluded). */
  taskRequests(): number;
  close(): Promise<void>;
}

/** One endpoint-style model per entry on a local wire server, served by HfBackend. */
export async function startSpecialists(entries: { id: string; task: TaskName; downloads?: number; likes?: number }[]): Promise<Specialists> {
  const server = await startHfWireServer({ models: Object.fromEntries(entries.map((entry) => [`acme/${entry.id}`, entry.task])) });
  const models: HfModelConfig[] = entries.map((entry) => ({
    id: entry.id,
    aliases: [],
    backend: "hf",
    model: `acme/${entry.id}`,
    task: entry.task,
    endpointUrl: `${server.endpointBase}/acme/${entry.id}`,
    timeoutMs: 10_000,
    modalities: { in: [...TASK_MODALITIES[entry.task].in], out: [...TASK_MODALITIES[entry.task].out] },
    ...(entry.downloads === undefined ? {} : { downloads: entry.downloads }),
    ...(entry.likes === undefined ? {} : { likes: entry.likes }),
  }));
  const backend = new HfBackend({ settings: { ...HF_DEFAULTS, baseUrl: server.url, hubUrl: server.url, backoffBaseMs: 1, backoffMaxMs: 5 }, models });
  return {
    server,
    backend,
    models,
    taskRequests: () => server.requests.filter((request) => request.style === "endpoint").length,
    async close() {
      await backend.close();
      await server.close();
    },
  };
}

/** A catalog view over fixed candidates. */
export function catalogOf(candidates: CatalogCandidate[]): CatalogView {
  return { candidates: (task) => candidates.filter((candidate) => candidate.task === task) };
}

/** Candidates for HF models as the gateway would describe them. */
export function hfCandidates(models: readonly HfModelConfig[]): CatalogCandidate[] {
  return models.map((model) => ({
    id: model.id,
    task: model.task,
    backend: "hf",
    local: false,
    ...(model.downloads === undefined ? {} : { downloads: model.downloads }),
    ...(model.likes === undefined ? {} : { likes: model.likes }),
    circuit: "closed",
  }));
}

/** Task and chat jobs through one in-process dispatcher. */
export function dispatcherSubmit(dispatcher: InProcessDispatcher): JobSubmit {
  return (job, options) => dispatcher.submit(job, options);
}

/**
 * Planner evaluation: runs the whole router loop (plan, select, execute,
 * respond) over a sample of TaskBench requests and prints plan validity,
 * tasks per plan, re-plans, latency per stage, and the loop's own overhead
 * per run (wall time minus the time some model call was in flight).
 *
 *   npx tsx packages/planner/scripts/evaluate-planner.ts [--config file.json] [--sample 300] [--concurrency 1] [--json out.json]
 *
 * The planner (also selector and responder) is the model the config file
 * names, or the generated tiny random-weight model by default. Tasks run on
 * HfBackend against the local Hugging Face wire-format server (two models per
 * task), so execution is real job traffic with no network. Config file:
 *
 *   {
 *     "planner": { "source": "generated:tiny" | "path/to/model.gguf", "contextSize": 4096, "sequences": 3 },
 *     // or a remote OpenAI-compatible server (not grammar-enforced: validated and re-planned):
 *     // "planner": { "endpointUrl": "https://host/v1", "model": "org/name", "tokenEnv": "HF_TOKEN" },
 *     "orchestration": { "maxTasks": 8, "literalMaxLength": 160 },
 *     "taskbench": "path/to/user_requests.json",
 *     "sample": 300,
 *     "concurrency": 1,
 *     "fileNameMentions": true
 *   }
 *
 * TaskBench requests name files (`example.jpg`); here such names are offered
 * to the planner as literals and replaced by small test media when tasks run.
 * Paths in the config file are relative to the file. Overhead is exact only
 * at concurrency 1 (with more, runs share the event loop).
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { GeneratedModelSpec, LlamaModelConfig } from "@switchboard/catalog";
import { HF_DEFAULTS, HfBackend, type HfModelConfig } from "@switchboard/hf";
import { TEST_MP4, TEST_PNG, TEST_WAV, startHfWireServer } from "@switchboard/hf-wire-server";
import { LlamaBackend, checkGguf, ensureTestModel } from "@switchboard/llama";
import { TASK_MODALITIES, TASK_NAMES, type Backend } from "@switchboard/protocol";
import { InProcessDispatcher } from "@switchboard/queue";
import {
  availableTasks,
  createJobExecutor,
  findMentions,
  runOrchestration,
  validatePlan,
  type CatalogCandidate,
  type ChatLlm,
  type OrchestrationConfig,
  type RunRecord,
  type TaskExecutor,
} from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const DEFAULT_TASKBENCH = resolve(here, "../../../../shared/taskbench/user_requests.json");

interface EvaluationConfig {
  planner?: Partial<LlamaModelConfig> & { endpointUrl?: string; model?: string; tokenEnv?: string };
  orchestration?: Partial<OrchestrationConfig>;
  taskbench?: string;
  sample?: number;
  concurrency?: number;
  fileNameMentions?: boolean;
}

const BUILT_IN_REQUESTS = [
  "Please summarize this article and read the summary aloud: 'The city council voted to expand the park along the river.'",
  "Generate an image of a lighthouse at night, then describe what is in the generated image.",
  "Transcribe example.wav and translate the transcript to French.",
  "What objects are in example.jpg? Then write a short story about them.",
  "Hello! How are you today?",
];

const { values: flags } = parseArgs({
  options: {
    config: { type: "string" },
    sample: { type: "string" },
    concurrency: { type: "string" },
    json: { type: "string" },
  },
});

const configPath = flags.config ? resolve(flags.config) : undefined;
const settings: EvaluationConfig = configPath ? (JSON.parse(await readFile(configPath, "utf8")) as EvaluationConfig) : {};
const relative = (path: string) => (isAbsolute(path) || !configPath ? resolve(path) : resolve(dirname(configPath), path));
const sampleSize = Number(flags.sample ?? settings.sample ?? 300);
const concurrency = Math.max(1, Number(flags.concurrency ?? settings.concurrency ?? 1));
const fileNameMentions = settings.fileNameMentions ?? true;
const orchestration: Partial<OrchestrationConfig> = { fileNameMentions, ...settings.orchestration };

// ---------------------------------------------------------------- requests

async function loadRequests(): Promise<{ source: string; requests: string[] }> {
  const path = settings.taskbench ? relative(settings.taskbench) : DEFAULT_TASKBENCH;
  if (!existsSync(path)) return { source: `built-in requests (TaskBench data absent at ${path})`, requests: BUILT_IN_REQUESTS };
  const lines = (await readFile(path, "utf8")).split("\n").filter((line) => line.trim().length > 0);
  const step = Math.max(1, Math.floor(lines.length / sampleSize));
  const requests: string[] = [];
  for (let index = 0; index < lines.length && requests.length < sampleSize; index += step) requests.push((JSON.parse(lines[index]!) as { user_request: string }).user_request);
  return { source: `${requests.length} of ${lines.length} TaskBench requests (every ${step}th)`, requests };
}

// ---------------------------------------------------------------- models

const directory = await mkdtemp(join(tmpdir(), "switchboard-evaluate-"));
const plannerSettings = settings.planner ?? {};
const remote = plannerSettings.endpointUrl !== undefined;

const server = await startHfWireServer({ models: Object.fromEntries(TASK_NAMES.flatMap((task) => [[`acme/${task}-a`, task], [`acme/${task}-b`, task]])) });
const specialists: HfModelConfig[] = TASK_NAMES.flatMap((task, index) =>
  (["a", "b"] as const).map((variant) => ({
    id: `${task}-${variant}`,
    aliases: [],
    backend: "hf" as const,
    model: `acme/${task}-${variant}`,
    task,
    endpointUrl: `${server.endpointBase}/acme/${task}-${variant}`,
    timeoutMs: 30_000,
    modalities: { in: [...TASK_MODALITIES[task].in], out: [...TASK_MODALITIES[task].out] },
    downloads: variant === "a" ? 10_000 + index : 500,
    likes: variant === "a" ? 50 : 5,
  })),
);
if (remote) {
  specialists.push({
    id: "planner",
    aliases: [],
    backend: "hf",
    model: plannerSettings.model ?? "planner",
    task: "conversational",
    endpointUrl: plannerSettings.endpointUrl!,
    sendToken: plannerSettings.tokenEnv !== undefined,
    timeoutMs: 120_000,
    modalities: { in: ["text"], out: ["text"] },
  });
}
const token = plannerSettings.tokenEnv ? process.env[plannerSettings.tokenEnv] : undefined;
const hf = new HfBackend({ settings: { ...HF_DEFAULTS, baseUrl: server.url, hubUrl: server.url, ...(token ? { token } : {}) }, models: specialists });
const backends: Backend[] = [hf];

let plannerLabel: string;
let llama: LlamaBackend | undefined;
if (!remote) {
  const source = plannerSettings.source ?? "generated:tiny";
  const model: LlamaModelConfig = {
    id: "planner",
    aliases: [],
    backend: "llama",
    source,
    contextSize: 4096,
    sequences: Math.max(concurrency, 1),
    threads: 1,
    maxWaiting: 64,
    defaultMaxTokens: 256,
    maxTokens: 4096,
    sampling: {},
    embeddings: false,
    ...plannerSettings,
  };
  llama = new LlamaBackend({
    models: [model],
    resolvePath: async () => (source.startsWith("generated:") ? ensureTestModel(source.slice("generated:".length) as GeneratedModelSpec, directory) : relative(source)),
    checkFile: checkGguf,
  });
  llama.start();
  const state = await llama.whenReady("planner");
  if (state.state !== "ready") throw new Error(`the planner model did not load: ${state.error}`);
  backends.push(llama);
  plannerLabel = `${source} (local, grammar-enforced; context ${model.contextSize}, ${model.sequences} sequences, ${model.threads} thread)`;
} else plannerLabel = `${plannerSettings.model} at ${plannerSettings.endpointUrl} (remote: validated, re-planned)`;

const dispatcher = new InProcessDispatcher({ backends });
const llm: ChatLlm = { model: "planner", grammarEnforced: !remote, submit: (job, options) => dispatcher.submit(job, options) };
const jobs = createJobExecutor({ submit: (job, options) => dispatcher.submit(job, options) });

// TaskBench's file names stand for small test media when tasks run.
const MEDIA: Record<string, string> = {
  image: `data:image/png;base64,${TEST_PNG.toString("base64")}`,
  audio: `data:audio/wav;base64,${TEST_WAV.toString("base64")}`,
  video: `data:video/mp4;base64,${TEST_MP4.toString("base64")}`,
};
const executor: TaskExecutor = {
  run(execution, signal) {
    const args = Object.fromEntries(
      Object.entries(execution.args).map(([name, value]) => {
        if (typeof value !== "string") return [name, value];
        const mention = findMentions(value, { fileNames: true })[0];
        return [name, mention && mention.value === value ? (MEDIA[mention.modality] ?? value) : value];
      }),
    );
    return jobs.run({ ...execution, args }, signal);
  },
};

const candidates: CatalogCandidate[] = specialists
  .filter((model) => model.id !== "planner")
  .map((model) => ({ id: model.id, task: model.task, backend: "hf", local: false, downloads: model.downloads ?? 0, likes: model.likes ?? 0, circuit: "closed" }));
const catalogView = { candidates: (task: string) => candidates.filter((candidate) => candidate.task === task) };
const available = availableTasks(catalogView);

// ---------------------------------------------------------------- run

const { source, requests } = await loadRequests();
console.log(`planner: ${plannerLabel}`);
console.log(`requests: ${source}; concurrency ${concurrency}`);
console.log(`orchestration: ${JSON.stringify(orchestration)}`);

const records: RunRecord[] = new Array(requests.length);
const validity: boolean[] = new Array(requests.length);
let next = 0;
let completed = 0;
const began = performance.now();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < requests.length) {
      const index = next++;
      const record = await runOrchestration({
        messages: [{ role: "user", content: requests[index]! }],
        signal: new AbortController().signal,
        llm: { planner: llm },
        executor,
        catalogView,
        availableTasks: available,
        config: orchestration,
        runId: `eval-${index}`,
      });
      records[index] = record;
      validity[index] = validatePlan(record.plan, available, { maxTasks: orchestration.maxTasks ?? 8 }).length === 0;
      completed += 1;
      if (completed % 25 === 0) console.log(`  ${completed}/${requests.length} runs (${((performance.now() - began) / 1000).toFixed(0)} s)`);
    }
  }),
);

// ---------------------------------------------------------------- report

const quantile = (values: number[], q: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
const row = (label: string, values: number[], unit = "ms") =>
  `${label.padEnd(22)} p50 ${quantile(values, 0.5).toFixed(1).padStart(8)}  p95 ${quantile(values, 0.95).toFixed(1).padStart(8)}  max ${Math.max(...values).toFixed(1).padStart(8)}  mean ${mean(values).toFixed(1).padStart(8)} ${unit}`;

const sizes = records.map((record) => record.plan.length);
const histogram = new Map<number, number>();
for (const size of sizes) histogram.set(size, (histogram.get(size) ?? 0) + 1);
const statuses = new Map<string, number>();
for (const record of records) statuses.set(record.status, (statuses.get(record.status) ?? 0) + 1);
const taskOutcomes = new Map<string, number>();
for (const task of records.flatMap((record) => record.tasks)) taskOutcomes.set(task.status, (taskOutcomes.get(task.status) ?? 0) + 1);
const sum = (pick: (record: RunRecord) => number) => records.reduce((total, record) => total + pick(record), 0);
const chained = records.filter((record) => record.plan.some((task) => task.dep[0] !== -1)).length;

const summary = {
  planner: plannerLabel,
  requests: source,
  runs: records.length,
  wallSeconds: (performance.now() - began) / 1000,
  plansValid: validity.filter(Boolean).length,
  runStatuses: Object.fromEntries(statuses),
  tasksPerPlan: { mean: mean(sizes), histogram: Object.fromEntries([...histogram].sort((a, b) => a[0] - b[0])) },
  plansWithChains: chained,
  replans: sum((record) => record.replans),
  fallbacks: records.filter((record) => record.planner.fallbackReason !== undefined).length,
  plannerCalls: sum((record) => record.planner.calls),
  rejectedSteps: sum((record) => record.planner.rejectedSteps),
  truncatedSteps: sum((record) => record.planner.truncatedSteps),
  neutralisedLiterals: sum((record) => record.planner.neutralisedLiterals),
  selectionsByLlm: records.flatMap((record) => record.selections).filter((selection) => selection.byLlm).length,
  // Tasks of the same name share one choice: one selector call per distinct task name chosen by the LLM.
  selectorCalls: sum((record) => new Set(record.selections.filter((selection) => selection.byLlm).map((selection) => selection.task)).size),
  taskOutcomes: Object.fromEntries(taskOutcomes),
  wireViolations: server.violations().length,
};

console.log("");
console.log(`plans that validate     ${summary.plansValid}/${summary.runs} (${((100 * summary.plansValid) / summary.runs).toFixed(1)}%)`);
console.log(`run statuses            ${JSON.stringify(summary.runStatuses)}`);
console.log(`tasks per plan          mean ${summary.tasksPerPlan.mean.toFixed(2)}; ${JSON.stringify(summary.tasksPerPlan.histogram)}`);
console.log(`plans with a chain      ${chained}`);
console.log(`re-plans                ${summary.replans} (fallbacks to plain chat: ${summary.fallbacks})`);
console.log(`planner calls           ${summary.plannerCalls}; steps rejected ${summary.rejectedSteps}, cut by max_tokens ${summary.truncatedSteps}, literals neutralised ${summary.neutralisedLiterals}`);
console.log(`selections by the LLM   ${summary.selectionsByLlm} tasks (${summary.selectorCalls} selector calls)`);
console.log(`task outcomes           ${JSON.stringify(summary.taskOutcomes)}; wire-server spec violations ${summary.wireViolations}`);
console.log("");
const timing = (pick: (record: RunRecord) => number | undefined) => records.map(pick).filter((value): value is number => value !== undefined);
console.log(row("plan", timing((record) => record.timings.planMs)));
console.log(row("select", timing((record) => record.timings.selectMs)));
console.log(row("execute", timing((record) => record.timings.executeMs)));
console.log(row("respond", timing((record) => record.timings.respondMs)));
console.log(row("run total", timing((record) => record.timings.totalMs)));
console.log(row("model time", timing((record) => record.timings.modelMs)));
console.log(row("loop overhead", timing((record) => record.timings.overheadMs)));
const overheads = timing((record) => record.timings.overheadMs);
console.log(`loop overhead < 20 ms in ${overheads.filter((value) => value < 20).length}/${overheads.length} runs`);

if (flags.json) {
  await writeFile(
    resolve(flags.json),
    JSON.stringify({ summary, timings: records.map((record) => record.timings), plans: records.map((record) => record.plan) }, null, 2),
  );
  console.log(`wrote ${resolve(flags.json)}`);
}

await Promise.all([hf.close(), llama?.close()]);
await server.close();
await rm(directory, { recursive: true, force: true });

/**
 * The catalog as the router sees it at the start of a run: every configured
 * model that can serve a task and is loaded somewhere now, with the latency
 * and error rate the router measured on its own calls, and a circuit that
 * takes a failing model out of rotation for a while.
 */
import { servesTask, type ModelConfig } from "@switchboard/catalog";
import { TASK_NAMES, type ModelState, type TaskName } from "@switchboard/protocol";
import type { CatalogCandidate, CatalogView, CircuitState, TaskExecution, TaskExecutionResult, TaskExecutor } from "./types.js";

/** Tasks a local (llama) model serves as a chat model. */
const LOCAL_TASKS: readonly TaskName[] = ["conversational", "text-generation"];

export interface ModelHealthOptions {
  /** Calls per model the latency and error rate are computed over. Default 20. */
  window?: number;
  /** Consecutive failures that open a model's circuit. Default 5. */
  failureThreshold?: number;
  /** How long an open circuit stays open before one call may probe it. Default 30 s. */
  coolDownMs?: number;
  now?: () => number;
}

interface ModelCalls {
  /** Recent calls, oldest first: duration and outcome. */
  recent: { ms: number; ok: boolean }[];
  consecutiveFailures: number;
  openedAt?: number;
}

/** What the router measured of each model it called. */
export class ModelHealth {
  readonly #models = new Map<string, ModelCalls>();
  readonly #window: number;
  readonly #failureThreshold: number;
  readonly #coolDownMs: number;
  readonly #now: () => number;

  constructor(options: ModelHealthOptions = {}) {
    this.#window = options.window ?? 20;
    this.#failureThreshold = options.failureThreshold ?? 5;
    this.#coolDownMs = options.coolDownMs ?? 30_000;
    this.#now = options.now ?? Date.now;
  }

  record(model: string, call: { ms: number; ok: boolean }): void {
    const calls = this.#models.get(model) ?? { recent: [], consecutiveFailures: 0 };
    calls.recent.push(call);
    if (calls.recent.length > this.#window) calls.recent.shift();
    if (call.ok) {
      calls.consecutiveFailures = 0;
      delete calls.openedAt;
    } else if (++calls.consecutiveFailures >= this.#failureThreshold) calls.openedAt = this.#now();
    this.#models.set(model, calls);
  }

  /** Median duration of recent successful calls, milliseconds. */
  latencyMs(model: string): number | undefined {
    const durations = (this.#models.get(model)?.recent ?? []).filter((call) => call.ok).map((call) => call.ms);
    if (durations.length === 0) return undefined;
    durations.sort((a, b) => a - b);
    return durations[Math.floor(durations.length / 2)];
  }

  /** Share of recent calls that failed, 0..1. */
  errorRate(model: string): number | undefined {
    const recent = this.#models.get(model)?.recent ?? [];
    return recent.length === 0 ? undefined : recent.filter((call) => !call.ok).length / recent.length;
  }

  circuit(model: string): CircuitState {
    const openedAt = this.#models.get(model)?.openedAt;
    if (openedAt === undefined) return "closed";
    return this.#now() - openedAt < this.#coolDownMs ? "open" : "half-open";
  }
}

/** Runs tasks through `executor` and records each call's time and outcome in `health`. */
export function measuredExecutor(executor: TaskExecutor, health: ModelHealth): TaskExecutor {
  return {
    async run(execution: TaskExecution, signal: AbortSignal): Promise<TaskExecutionResult> {
      const started = performance.now();
      try {
        const result = await executor.run(execution, signal);
        health.record(result.model ?? execution.model, { ms: performance.now() - started, ok: true });
        return result;
      } catch (error) {
        // A cancelled run says nothing about the model.
        if (!signal.aborted) health.record(execution.model, { ms: performance.now() - started, ok: false });
        throw error;
      }
    },
  };
}

const CIRCUIT_ORDER: readonly CircuitState[] = ["closed", "half-open", "open"];
const worse = (a: CircuitState, b: CircuitState | undefined): CircuitState => (b !== undefined && CIRCUIT_ORDER.indexOf(b) > CIRCUIT_ORDER.indexOf(a) ? b : a);

export interface LiveCatalogOptions {
  models: readonly ModelConfig[];
  /** Load state of the models some backend or worker serves now; others are left out. */
  states: readonly ModelState[];
  health?: ModelHealth;
  /** Circuit state from an engine in this process (the embedded default's Hugging Face engine). */
  circuitOf?: (model: string) => CircuitState | undefined;
}

/** Candidates of every task: configured models that are ready somewhere now. */
export function liveCatalogView(options: LiveCatalogOptions): CatalogView {
  const ready = new Set(options.states.filter((state) => state.state === "ready").map((state) => state.id));
  const byTask = new Map<string, CatalogCandidate[]>();
  for (const model of options.models) {
    if (!ready.has(model.id)) continue;
    const tasks = model.backend === "llama" ? LOCAL_TASKS : TASK_NAMES.filter((task) => servesTask(model, task));
    const latencyMs = options.health?.latencyMs(model.id);
    const errorRate = options.health?.errorRate(model.id);
    const circuit = worse(options.health?.circuit(model.id) ?? "closed", options.circuitOf?.(model.id));
    for (const task of tasks) {
      const candidate: CatalogCandidate = {
        id: model.id,
        task,
        backend: model.backend,
        local: model.backend === "llama",
        circuit,
        ...(model.description ? { description: model.description } : {}),
        ...(model.backend === "hf" && model.downloads !== undefined ? { downloads: model.downloads } : {}),
        ...(model.backend === "hf" && model.likes !== undefined ? { likes: model.likes } : {}),
        ...(latencyMs === undefined ? {} : { latencyMs }),
        ...(errorRate === undefined ? {} : { errorRate }),
      };
      const list = byTask.get(task) ?? [];
      list.push(candidate);
      byTask.set(task, list);
    }
  }
  return { candidates: (task) => byTask.get(task) ?? [] };
}

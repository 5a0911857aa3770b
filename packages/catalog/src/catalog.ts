/**
 * The model catalog: looks models up by id or alias. Lookups are exact
 * matches against the configuration; a model name is never turned into a
 * file path.
 */
import type { TaskName } from "@switchboard/protocol";
import type { HfModelConfig, LlamaModelConfig, ModelConfig, SwitchboardConfig } from "./types.js";

/** The name that always resolves to the configured default model. */
export const DEFAULT_MODEL_NAME = "default";

export class Catalog {
  readonly #models: readonly ModelConfig[];
  readonly #byName = new Map<string, ModelConfig>();
  readonly #defaultModel: ModelConfig;

  /** Takes a validated configuration (from `loadConfig` or `parseConfig`). */
  constructor(config: Pick<SwitchboardConfig, "models" | "defaultModel">) {
    this.#models = config.models;
    for (const model of config.models) {
      for (const name of [model.id, ...model.aliases]) {
        if (this.#byName.has(name)) throw new Error(`Model name '${name}' is used twice in the catalog`);
        this.#byName.set(name, model);
      }
    }
    const defaultModel = this.#byName.get(config.defaultModel);
    if (defaultModel === undefined) throw new Error(`defaultModel '${config.defaultModel}' is not in the catalog`);
    this.#defaultModel = defaultModel;
    this.#byName.set(DEFAULT_MODEL_NAME, defaultModel);
  }

  /** The model a client's `model` value names: exact id or alias; `default` is the default model. */
  resolve(idOrAlias: string): ModelConfig | undefined {
    return this.#byName.get(idOrAlias);
  }

  /** Every model, in configuration order. */
  list(): ModelConfig[] {
    return [...this.#models];
  }

  /** The model clients get when they name `default`. */
  get defaultModel(): ModelConfig {
    return this.#defaultModel;
  }
}

/** Type guard for local GGUF models. */
export function isLlamaModel(model: ModelConfig): model is LlamaModelConfig {
  return model.backend === "llama";
}

/** Type guard for remote (Hugging Face) models. */
export function isHfModel(model: ModelConfig): model is HfModelConfig {
  return model.backend === "hf";
}

/**
 * Whether a remote model serves `task`: its own task, plus what the same
 * upstream API answers. A TGI / OpenAI-compatible server (`endpointUrl`)
 * answers chat and text generation alike; through a provider the client
 * checks the Hub's task mapping, so there only the model's own task works.
 * Sentence-similarity models also embed (feature extraction), in both styles.
 */
export function servesTask(model: ModelConfig, task: TaskName): boolean {
  if (model.backend !== "hf") return false;
  if (model.task === task) return true;
  const text = (name: TaskName) => name === "conversational" || name === "text-generation";
  if (text(task) && text(model.task)) return model.endpointUrl !== undefined;
  return task === "feature-extraction" && model.task === "sentence-similarity";
}

/**
 * The remote models whose own task is `task`, best first: by downloads, then
 * likes, then configuration order. The first is the task's default model.
 */
export function modelsForTask(models: readonly ModelConfig[], task: TaskName): HfModelConfig[] {
  const candidates = models.filter((model): model is HfModelConfig => model.backend === "hf" && model.task === task);
  return candidates
    .map((model, order) => ({ model, order }))
    .sort((a, b) => (b.model.downloads ?? 0) - (a.model.downloads ?? 0) || (b.model.likes ?? 0) - (a.model.likes ?? 0) || a.order - b.order)
    .map(({ model }) => model);
}

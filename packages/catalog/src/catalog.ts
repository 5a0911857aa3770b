/**
 * The model catalog: looks models up by id or alias. Lookups are exact
 * matches against the configuration; a model name is never turned into a
 * file path.
 */
import type { ModelConfig, SwitchboardConfig } from "./types.js";

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

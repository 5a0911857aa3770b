/**
 * Which label values a process may use, decided once from its catalog:
 * models only from the catalog, backends and providers only those the catalog
 * names, queues only those the fleet transport would make for it, tasks only
 * the protocol's task names. Everything else is folded into `other`.
 */
import { TASK_NAMES } from "@switchboard/protocol";
import { KnownValues, llamaQueueLabel, NONE, OTHER, providerOf, type ModelLabelSource } from "./labels.js";

/** The id of the router as a model; always a known model label. */
export const ROUTER_MODEL = "router";

/** Engines every process may name even when its catalog has none of their models. */
const ENGINES = ["llama", "hf", "router"];

/** Job kinds of the protocol (`Job["kind"]`). */
const JOB_KINDS = ["chat", "completion", "embedding", "task"];

export interface LabelPolicyOptions {
  /** The catalog's models (ids, not aliases). */
  models?: readonly ModelLabelSource[];
  /** Queue names; by default the fleet's: `llama.<id>` per local model, `hf`, `router`. */
  queues?: readonly string[];
  /** Task names; by default the protocol's. */
  tasks?: readonly string[];
  /** Extra backend names (a test's scripted backend). */
  backends?: readonly string[];
}

export class LabelPolicy {
  readonly #models: KnownValues;
  readonly #backendOf = new Map<string, string>();
  readonly #providerOf = new Map<string, string>();
  readonly #backends: KnownValues;
  readonly #providers: KnownValues;
  readonly #queues: KnownValues;
  readonly #tasks: KnownValues;
  readonly #kinds = new KnownValues(JOB_KINDS);

  constructor(options: LabelPolicyOptions = {}) {
    const models = options.models ?? [];
    this.#models = new KnownValues([...models.map((model) => model.id), ROUTER_MODEL]);
    for (const model of models) {
      this.#backendOf.set(model.id, model.backend);
      if (model.backend === "hf") this.#providerOf.set(model.id, providerOf(model));
    }
    this.#backendOf.set(ROUTER_MODEL, "router");
    this.#backends = new KnownValues([...ENGINES, ...models.map((model) => model.backend), ...(options.backends ?? [])]);
    this.#providers = new KnownValues(this.#providerOf.values());
    this.#queues = new KnownValues(
      options.queues ?? [...models.filter((model) => model.backend === "llama").map((model) => llamaQueueLabel(model.id)), "hf", "router"],
    );
    this.#tasks = new KnownValues(options.tasks ?? TASK_NAMES);
  }

  /** A catalog id, `none` when absent, `other` when the catalog does not have it. */
  model(id: string | null | undefined): string {
    return this.#models.fold(id);
  }

  /** The engine serving a catalog model (`none` for unknown models). */
  backendOfModel(id: string | null | undefined): string {
    return (id === null || id === undefined ? undefined : this.#backendOf.get(id)) ?? NONE;
  }

  backend(name: string | null | undefined): string {
    return this.#backends.fold(name);
  }

  /** The provider label of a remote model: from the catalog entry, else the value given, folded. */
  provider(model: string, provider?: string): string {
    return this.#providerOf.get(model) ?? (provider === undefined ? NONE : this.#providers.has(provider) ? provider : OTHER);
  }

  queue(name: string | null | undefined): string {
    return this.#queues.fold(name);
  }

  task(name: string | null | undefined): string {
    return this.#tasks.fold(name);
  }

  kind(name: string | null | undefined): string {
    return this.#kinds.fold(name);
  }

  /** Every model label value this policy can produce (for tests and dashboards). */
  modelValues(): string[] {
    return [...this.#models.values(), NONE, OTHER];
  }
}

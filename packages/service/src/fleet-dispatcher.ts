/**
 * Fleet mode's dispatcher, the same for every process that submits jobs (the
 * gateway, and the router for its LLM calls and tasks): which queue a job
 * goes to, how many may wait on it, and the queues metrics report.
 *
 * Each local model has its own queue, served by the `worker-llama` processes
 * that loaded it; remote (Hugging Face) models share one queue served by
 * `worker-hf`; the router has its own.
 */
import { ROUTER_MODEL_ID, type ModelConfig, type SwitchboardConfig } from "@switchboard/catalog";
import type { Job, Logger } from "@switchboard/protocol";
import { BullmqDispatcher, HF_QUEUE, ROUTER_QUEUE, llamaQueueName, type QueueMetrics } from "@switchboard/queue";

/** Waiting jobs allowed per queue when the model's config sets no bound (remote models, the router). */
export const DEFAULT_MAX_WAITING = 64;

/** A `queueFor` for `BullmqDispatcher`: `router`, `hf` for remote models, `llama.<id>` for local ones. */
export function queueForCatalog(catalog: { resolve(name: string): Pick<ModelConfig, "backend"> | undefined }): (job: Job) => string {
  return (job) => {
    if (job.model === ROUTER_MODEL_ID) return ROUTER_QUEUE;
    return catalog.resolve(job.model)?.backend === "hf" ? HF_QUEUE : llamaQueueName(job.model);
  };
}

/** Every queue the config's models (and the router) use. */
export function fleetQueues(config: Pick<SwitchboardConfig, "models" | "router">): string[] {
  return [...new Set(config.models.map((model) => (model.backend === "hf" ? HF_QUEUE : llamaQueueName(model.id)))), ...(config.router.enabled ? [ROUTER_QUEUE] : [])];
}

export interface FleetDispatcherOptions {
  redisUrl: string;
  /** BullMQ prefix; every process of the fleet must use the same one. */
  prefix?: string;
  logger: Logger;
  metrics?: QueueMetrics;
}

export function createFleetDispatcher(config: Pick<SwitchboardConfig, "models" | "router">, options: FleetDispatcherOptions): BullmqDispatcher {
  const byName = new Map(config.models.flatMap((model) => [model.id, ...model.aliases].map((name) => [name, model] as const)));
  return new BullmqDispatcher({
    connection: options.redisUrl,
    prefix: options.prefix,
    queueFor: queueForCatalog({ resolve: (name) => byName.get(name) }),
    maxWaiting: (job) => {
      const model = byName.get(job.model);
      return model && "maxWaiting" in model ? model.maxWaiting : DEFAULT_MAX_WAITING;
    },
    logger: options.logger,
    ...(options.metrics ? { metrics: options.metrics, queues: fleetQueues(config) } : {}),
  });
}

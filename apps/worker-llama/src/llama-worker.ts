/**
 * A fleet-mode llama worker: the configured llama engine served from its
 * models' BullMQ queues (one queue per model, as many concurrent jobs as the
 * model has sequences), plus `/health`, `/ready` and `/metrics` on the
 * workers' small HTTP server (`startServiceHttp`).
 */
import type { Server } from "node:http";
import { createConfiguredLlamaBackend, type ConfiguredBackendOptions, type LlamaBackend } from "@switchboard/llama";
import { createMetrics, type SwitchboardMetrics } from "@switchboard/metrics";
import { llamaQueueName, type BackendServer } from "@switchboard/queue";
import { fleetServiceSettings, startWorkerService, type FleetWorkerOptions } from "@switchboard/service";

export interface LlamaWorkerOptions extends FleetWorkerOptions {
  /** Serve only these model ids; every llama model of the config when absent. */
  modelIds?: string[];
  onDownloadProgress?: ConfiguredBackendOptions["onDownloadProgress"];
}

export interface LlamaWorker {
  backend: LlamaBackend;
  server: BackendServer;
  /** What `/metrics` serves: model loads, sequences, jobs and tokens, re-run and stalled jobs, the process. */
  metrics: SwitchboardMetrics;
  http: Server;
  /** Base URL of the HTTP server. */
  url: string;
  /** Stops taking jobs, drains (or cancels) running ones, unloads the models, closes HTTP. */
  close(): Promise<void>;
}

export async function startLlamaWorker(options: LlamaWorkerOptions): Promise<LlamaWorker> {
  const { config, logger } = options;
  // One metrics object for the engine and /metrics, labelled by the catalog's model ids.
  const metrics = createMetrics({ registry: options.metricsRegistry, models: config.models });
  const backend = createConfiguredLlamaBackend(config, {
    metrics: metrics.llama,
    modelIds: options.modelIds,
    logger: logger.child({ component: "llama" }),
    onDownloadProgress: options.onDownloadProgress,
  });
  const models = config.models.flatMap((model) => (model.backend === "llama" && backend.models().includes(model.id) ? [model] : []));
  if (models.length === 0) throw new Error("This worker has no llama model to serve: check SWITCHBOARD_WORKER_MODELS and the config's models.");
  backend.start();
  const unwatch = metrics.llama.watch(() => backend.queueStates());
  // Each model's queue is served once the model is ready, with one job per sequence.
  const service = await startWorkerService({
    backend,
    queues: models.map((model) => ({ name: llamaQueueName(model.id), models: [model.id], concurrency: model.sequences })),
    ...fleetServiceSettings(options),
    queueMetrics: metrics.queue,
    registry: metrics.registry,
    release: unwatch,
  });
  logger.info({ url: service.url, workerId: service.server.workerId, models: models.map((model) => model.id) }, "llama worker started");
  return { backend, metrics, ...service };
}

/**
 * A fleet-mode Hugging Face worker: the remote models of the config served
 * from the one `hf` queue on Redis, with binary outputs written to the
 * fleet's artifact store (the same Redis unless `artifacts.redisUrl` says
 * otherwise), plus `/health`, `/ready` and `/metrics` on the workers' small
 * HTTP server (`startServiceHttp`). Remote calls are I/O bound, so one worker
 * runs many jobs at once.
 */
import type { Server } from "node:http";
import { createArtifactStore, type ArtifactStore } from "@switchboard/artifacts";
import { createConfiguredHfBackend, type HfBackend } from "@switchboard/hf";
import { createMetrics, type SwitchboardMetrics } from "@switchboard/metrics";
import { HF_QUEUE, type BackendServer } from "@switchboard/queue";
import { fleetServiceSettings, startWorkerService, type FleetWorkerOptions } from "@switchboard/service";

/** Jobs one worker runs at once when not told otherwise: remote calls mostly wait on the network. */
export const DEFAULT_HF_CONCURRENCY = 32;

export interface HfWorkerOptions extends FleetWorkerOptions {
  /** Jobs run at once. Default {@link DEFAULT_HF_CONCURRENCY}. */
  concurrency?: number;
  /** The network under the engine's owned fetch (benchmarks); `globalThis.fetch` by default. */
  upstreamTransport?: typeof fetch;
}

export interface HfWorker {
  backend: HfBackend;
  server: BackendServer;
  artifacts: ArtifactStore;
  /** What `/metrics` serves: upstream calls and circuits, re-run and stalled jobs, the process. */
  metrics: SwitchboardMetrics;
  http: Server;
  /** Base URL of the HTTP server. */
  url: string;
  /** Stops taking jobs, drains (or cancels) running ones, closes the store and HTTP. */
  close(): Promise<void>;
}

export async function startHfWorker(options: HfWorkerOptions): Promise<HfWorker> {
  const { config, logger } = options;
  // Labelled by the catalog's model ids; prom-client's process metrics included.
  const metrics = createMetrics({ registry: options.metricsRegistry, models: config.models });
  const artifacts = createArtifactStore(config.artifacts, { fleetRedisUrl: options.redisUrl, ...(options.prefix ? { prefix: options.prefix } : {}) });
  const backend = createConfiguredHfBackend(config, {
    logger: logger.child({ component: "hf" }),
    artifacts,
    ...(options.workerId ? { worker: options.workerId } : {}),
    ...(options.upstreamTransport ? { transport: options.upstreamTransport } : {}),
    metrics: metrics.hf,
  });
  if (!backend) {
    await artifacts.close();
    throw new Error("This worker has no remote model to serve: the config has no model with backend: hf.");
  }
  const unwatchCircuits = metrics.hf.watchCircuits(() => backend.engine.models().map((model) => ({ model: model.id, state: backend.engine.breaker.state(model.id) })));
  const concurrency = options.concurrency ?? DEFAULT_HF_CONCURRENCY;
  const service = await startWorkerService({
    backend,
    queues: [{ name: HF_QUEUE, models: backend.models(), concurrency }],
    ...fleetServiceSettings(options),
    queueMetrics: metrics.queue,
    registry: metrics.registry,
    release: async () => {
      await artifacts.close();
      unwatchCircuits();
    },
  });
  logger.info({ url: service.url, workerId: service.server.workerId, models: backend.models(), concurrency, artifacts: artifacts.kind }, "hf worker started");
  return { backend, artifacts, metrics, ...service };
}

/**
 * The all-in-one composition: the gateway, the llama engine and (when the
 * config has remote models) the Hugging Face engine in one process on the
 * in-process transport, sharing one artifact store (memory, or `artifacts.dir`
 * on disk). No Redis, no other services.
 */
import type { SwitchboardConfig } from "@switchboard/catalog";
import { Catalog } from "@switchboard/catalog";
import { ArtifactUrlSigner, createArtifactStore, type ArtifactStore } from "@switchboard/artifacts";
import { buildGateway, type RecentRunsProvider } from "@switchboard/gateway";
import { createConfiguredHfBackend, type HfBackend } from "@switchboard/hf";
import { createConfiguredLlamaBackend, type ConfiguredBackendOptions, type LlamaBackend } from "@switchboard/llama";
import { createMetrics, type Registry, type SwitchboardMetrics } from "@switchboard/metrics";
import { InProcessDispatcher } from "@switchboard/queue";
import type { FastifyInstance } from "fastify";
import { pino, type Logger as PinoLogger } from "pino";

export interface EmbeddedOptions {
  config: SwitchboardConfig;
  /** A pino logger; one at the config's level on stdout when absent. */
  logger?: PinoLogger;
  onDownloadProgress?: ConfiguredBackendOptions["onDownloadProgress"];
  /** Record metrics (default true); off, `/metrics` serves process metrics only (benchmarks of their cost). */
  recordMetrics?: boolean;
  /** The registry `/metrics` serves; a fresh one when absent. */
  metricsRegistry?: Registry;
  /** The router's recent runs, for the console at `/`. */
  recentRuns?: RecentRunsProvider;
}

export interface EmbeddedServer {
  app: FastifyInstance;
  backend: LlamaBackend;
  /** The in-process transport every job goes through (the router's LLM calls too). */
  dispatcher: InProcessDispatcher;
  /** The metrics `/metrics` serves (`metrics.router` is the router's observer). */
  metrics: SwitchboardMetrics;
  /** The remote models' engine; absent when the config has none. */
  hfBackend: HfBackend | undefined;
  /** Where binary task outputs are kept; served at signed URLs under `/v1/artifacts`. */
  artifacts: ArtifactStore;
  /** Stops taking requests, then unloads the models. */
  close(): Promise<void>;
}

export async function createEmbeddedServer(options: EmbeddedOptions): Promise<EmbeddedServer> {
  const { config } = options;
  const logger = options.logger ?? pino({ level: config.server.logLevel });
  // One set of metrics for the whole process: gateway, transport and engines.
  const metrics = createMetrics({ registry: options.metricsRegistry, models: config.models });
  const record = options.recordMetrics !== false;
  const backend = createConfiguredLlamaBackend(config, {
    logger: logger.child({ component: "llama" }),
    onDownloadProgress: options.onDownloadProgress,
    ...(record ? { metrics: metrics.llama } : {}),
  });
  const artifacts = createArtifactStore(config.artifacts);
  const hfBackend = createConfiguredHfBackend(config, { logger: logger.child({ component: "hf" }), artifacts, worker: "embedded", ...(record ? { metrics: metrics.hf } : {}) });
  if (hfBackend && config.artifacts.secret === undefined) {
    logger.info("Artifact URLs are signed with a random key of this process: they stop working when it restarts. Set SWITCHBOARD_ARTIFACT_SECRET to keep them.");
  }
  if (record) {
    metrics.llama.watch(() => backend.queueStates());
    if (hfBackend) metrics.hf.watchCircuits(() => hfBackend.engine.models().map((model) => ({ model: model.id, state: hfBackend.engine.breaker.state(model.id) })));
  }
  const dispatcher = new InProcessDispatcher({
    backends: hfBackend ? [backend, hfBackend] : [backend],
    logger,
    // Queue metrics, and worker metrics from the events it passes on (metrics.queue.observeJob).
    ...(record ? { metrics: metrics.queue } : {}),
  });
  const app = await buildGateway({
    config,
    catalog: new Catalog(config),
    dispatcher,
    logger,
    metrics,
    recordMetrics: record,
    ...(options.recentRuns ? { recentRuns: options.recentRuns } : {}),
    artifacts: {
      store: artifacts,
      signer: new ArtifactUrlSigner(config.artifacts.secret),
      urlTtlSeconds: config.artifacts.urlTtlSeconds,
      ...(config.artifacts.publicBaseUrl ? { publicBaseUrl: config.artifacts.publicBaseUrl } : {}),
    },
  });
  backend.start();
  let closing: Promise<void> | undefined;
  return {
    app,
    backend,
    dispatcher,
    metrics,
    hfBackend,
    artifacts,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await dispatcher.close();
        await artifacts.close();
      })()),
  };
}

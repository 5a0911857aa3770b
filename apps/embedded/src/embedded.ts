/**
 * The all-in-one composition: the gateway, the llama engine and (when the
 * config has remote models) the Hugging Face engine in one process on the
 * in-process transport, sharing one artifact store (memory, or `artifacts.dir`
 * on disk). No Redis, no other services.
 */
import { Catalog, ROUTER_MODEL_ID, type SwitchboardConfig } from "@switchboard/catalog";
import { ArtifactUrlSigner, createArtifactStore, type ArtifactStore } from "@switchboard/artifacts";
import { buildGateway, type RecentRunsProvider } from "@switchboard/gateway";
import { createConfiguredHfBackend, type HfBackend } from "@switchboard/hf";
import { createConfiguredLlamaBackend, type ConfiguredBackendOptions, type LlamaBackend } from "@switchboard/llama";
import { createMetrics, type Registry, type SwitchboardMetrics } from "@switchboard/metrics";
import { MemoryRunStore, RouterBackend, type OrchestrationConfig, type RunStore } from "@switchboard/planner";
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
  /** The router's recent runs, for the console at `/`; the router's own run store by default. */
  recentRuns?: RecentRunsProvider;
  /** Router run settings beyond the config file's (token limits of each role); tests keep runs short with it. */
  orchestration?: Partial<OrchestrationConfig>;
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
  /** The router (absent when `router.enabled` is false) and its run records. */
  router: RouterBackend | undefined;
  runs: RunStore;
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
  // The router submits its LLM and task jobs to the same dispatcher it is served by.
  const runs = new MemoryRunStore({ ttlSeconds: config.router.runTtlSeconds });
  const router = config.router.enabled
    ? new RouterBackend({
        config,
        submit: (job, submitOptions) => dispatcher.submit(job, submitOptions),
        modelStates: () => dispatcher.modelStates(),
        runs,
        artifacts,
        logger: logger.child({ component: "router" }),
        ...(record ? { observer: metrics.router } : {}),
        ...(hfBackend ? { circuitOf: (model: string) => (hfBackend.models().includes(model) ? hfBackend.engine.breaker.state(model) : undefined) } : {}),
        ...(options.orchestration ? { orchestration: options.orchestration } : {}),
      })
    : undefined;
  const dispatcher: InProcessDispatcher = new InProcessDispatcher({
    backends: [backend, ...(hfBackend ? [hfBackend] : []), ...(router ? [router] : [])],
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
    ...(router ? { router: { id: ROUTER_MODEL_ID, aliases: config.router.aliases, runs } } : {}),
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
    router,
    runs,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await dispatcher.close();
        await runs.close();
        await artifacts.close();
      })()),
  };
}

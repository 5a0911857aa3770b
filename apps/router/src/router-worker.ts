/**
 * The fleet's router: serves the `router` queue on Redis with the router
 * engine (`RouterBackend`), whose LLM calls and tasks go back onto the fleet's
 * queues as jobs, so they run on the llama and Hugging Face workers, in
 * parallel where the plan allows. Run records go to the fleet's Redis, where
 * every gateway reads them. `/health`, `/ready` and `/metrics` (router stages,
 * plans, tasks, runs; re-run and stalled jobs; the process) on its own port.
 */
import type { Server } from "node:http";
import { createArtifactStore } from "@switchboard/artifacts";
import { createMetrics, type SwitchboardMetrics } from "@switchboard/metrics";
import { RedisRunStore, RouterBackend, type OrchestrationConfig } from "@switchboard/planner";
import { ROUTER_QUEUE, type BackendServer, type BullmqDispatcher } from "@switchboard/queue";
import { createFleetDispatcher, fleetServiceSettings, startWorkerService, type FleetWorkerOptions } from "@switchboard/service";

export interface RouterWorkerOptions extends FleetWorkerOptions {
  /** Settings of a run beyond the config file's (token limits of each role). */
  orchestration?: Partial<OrchestrationConfig>;
}

export interface RouterWorker {
  backend: RouterBackend;
  server: BackendServer;
  /** Where the router submits its LLM calls and tasks. */
  dispatcher: BullmqDispatcher;
  metrics: SwitchboardMetrics;
  http: Server;
  url: string;
  /** Stops taking runs, drains (or cancels) running ones, closes queues, store and HTTP. */
  close(): Promise<void>;
}

export async function startRouterWorker(options: RouterWorkerOptions): Promise<RouterWorker> {
  const { config, logger } = options;
  if (!config.router.enabled) throw new Error("The router is disabled in this config (router.enabled: false, or no chat model to plan with).");
  const metrics = createMetrics({ registry: options.metricsRegistry, models: config.models });
  const prefix = options.prefix ? { prefix: options.prefix } : {};
  const dispatcher = createFleetDispatcher(config, { redisUrl: options.redisUrl, ...prefix, logger: logger.child({ component: "queue" }), metrics: metrics.queue });
  const runs = new RedisRunStore({ connection: options.redisUrl, ...prefix, ttlSeconds: config.router.runTtlSeconds });
  // The request's inline files are stored once in the fleet's store; tasks on other workers get references.
  const artifacts = createArtifactStore(config.artifacts, { fleetRedisUrl: options.redisUrl, ...prefix });
  const backend = new RouterBackend({
    config,
    submit: (job, submitOptions) => dispatcher.submit(job, submitOptions),
    modelStates: () => dispatcher.modelStates(),
    runs,
    artifacts,
    observer: metrics.router,
    logger: logger.child({ component: "router" }),
    ...(options.orchestration ? { orchestration: options.orchestration } : {}),
  });
  const service = await startWorkerService({
    backend,
    queues: [{ name: ROUTER_QUEUE, models: backend.models(), concurrency: config.router.concurrency }],
    ...fleetServiceSettings(options),
    queueMetrics: metrics.queue,
    registry: metrics.registry,
    release: async () => {
      await dispatcher.close();
      await runs.close();
      await artifacts.close();
    },
  });
  logger.info({ url: service.url, workerId: service.server.workerId, planner: config.router.planner, concurrency: config.router.concurrency }, "router started");
  return { backend, dispatcher, metrics, ...service };
}

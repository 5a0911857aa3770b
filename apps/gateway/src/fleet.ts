/**
 * Fleet mode: the gateway runs no models. Every job goes onto a BullMQ queue
 * on Redis and workers on any machine stream the results back.
 */
import { ArtifactUrlSigner, createArtifactStore } from "@switchboard/artifacts";
import { Catalog, ROUTER_MODEL_ID, type SwitchboardConfig } from "@switchboard/catalog";
import { createMetrics, type SwitchboardMetrics } from "@switchboard/metrics";
import { RedisRunStore } from "@switchboard/planner";
import type { BullmqDispatcher } from "@switchboard/queue";
import { createFleetDispatcher } from "@switchboard/service";
import type { FastifyInstance } from "fastify";
import type { Logger as PinoLogger } from "pino";
import { buildGateway } from "./gateway.js";

export interface FleetGatewayOptions {
  config: SwitchboardConfig;
  redisUrl: string;
  /** BullMQ prefix; every worker of the fleet must use the same one. */
  prefix?: string;
  logger: PinoLogger;
}

export interface FleetGateway {
  app: FastifyInstance;
  dispatcher: BullmqDispatcher;
  /** What `/metrics` serves: requests, queues (wait, run time, outcomes, depth), the process. */
  metrics: SwitchboardMetrics;
  close(): Promise<void>;
}

export async function createFleetGateway(options: FleetGatewayOptions): Promise<FleetGateway> {
  const { config, logger } = options;
  const catalog = new Catalog(config);
  const metrics = createMetrics({ models: config.models });
  const dispatcher = createFleetDispatcher(config, { redisUrl: options.redisUrl, prefix: options.prefix, logger: logger.child({ component: "queue" }), metrics: metrics.queue });
  // Router runs are written by router workers to the fleet's Redis; any gateway reads them.
  const runs = config.router.enabled ? new RedisRunStore({ connection: options.redisUrl, ...(options.prefix ? { prefix: options.prefix } : {}), ttlSeconds: config.router.runTtlSeconds }) : undefined;
  // Workers store binary outputs in the fleet's Redis; the gateway serves them at signed URLs.
  const artifacts = createArtifactStore(config.artifacts, { fleetRedisUrl: options.redisUrl, ...(options.prefix ? { prefix: options.prefix } : {}) });
  const app = await buildGateway({
    config,
    catalog,
    dispatcher,
    logger,
    metrics,
    readiness: "transport",
    ...(runs ? { router: { id: ROUTER_MODEL_ID, aliases: config.router.aliases, runs } } : {}),
    artifacts: {
      store: artifacts,
      signer: new ArtifactUrlSigner(config.artifacts.secret),
      urlTtlSeconds: config.artifacts.urlTtlSeconds,
      ...(config.artifacts.publicBaseUrl ? { publicBaseUrl: config.artifacts.publicBaseUrl } : {}),
    },
  });
  let closing: Promise<void> | undefined;
  return {
    app,
    dispatcher,
    metrics,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await dispatcher.close();
        await runs?.close();
        await artifacts.close();
      })()),
  };
}

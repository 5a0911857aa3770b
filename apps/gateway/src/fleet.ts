/**
 * Fleet mode: the gateway runs no models. Every job goes onto a BullMQ queue
 * on Redis and workers on any machine stream the results back.
 */
import { ArtifactUrlSigner, createArtifactStore } from "@switchboard/artifacts";
import { Catalog, type SwitchboardConfig } from "@switchboard/catalog";
import { BullmqDispatcher } from "@switchboard/queue";
import type { FastifyInstance } from "fastify";
import type { Logger as PinoLogger } from "pino";
import { queueForCatalog } from "./fleet-routing.js";
import { buildGateway } from "./gateway.js";

/** Waiting jobs allowed per queue when the model's config sets no bound (remote models). */
const DEFAULT_MAX_WAITING = 64;

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
  close(): Promise<void>;
}

export async function createFleetGateway(options: FleetGatewayOptions): Promise<FleetGateway> {
  const { config, logger } = options;
  const catalog = new Catalog(config);
  const dispatcher = new BullmqDispatcher({
    connection: options.redisUrl,
    prefix: options.prefix,
    queueFor: queueForCatalog(catalog),
    maxWaiting: (job) => {
      const model = catalog.resolve(job.model);
      return model && "maxWaiting" in model ? model.maxWaiting : DEFAULT_MAX_WAITING;
    },
    logger: logger.child({ component: "queue" }),
  });
  // Workers store binary outputs in the fleet's Redis; the gateway serves them at signed URLs.
  const artifacts = createArtifactStore(config.artifacts, { fleetRedisUrl: options.redisUrl, ...(options.prefix ? { prefix: options.prefix } : {}) });
  const app = await buildGateway({
    config,
    catalog,
    dispatcher,
    logger,
    readiness: "transport",
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
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await dispatcher.close();
        await artifacts.close();
      })()),
  };
}

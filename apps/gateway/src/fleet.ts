/**
 * Fleet mode: the gateway runs no models. Every job goes onto a BullMQ queue
 * on Redis and workers on any machine stream the results back.
 */
import { Catalog, type SwitchboardConfig } from "@switchboard/catalog";
import type { Job } from "@switchboard/protocol";
import { BullmqDispatcher, HF_QUEUE, llamaQueueName, ROUTER_QUEUE } from "@switchboard/queue";
import type { FastifyInstance } from "fastify";
import type { Logger as PinoLogger } from "pino";
import { buildGateway } from "./gateway.js";

/** Catalog id of the router model; its jobs go to the router's queue. */
export const ROUTER_MODEL_ID = "router";

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

/** Which queue a job travels on: one per local model, one for remote models, one for the router. */
export function fleetQueueFor(catalog: Catalog): (job: Job) => string {
  return (job) => {
    if (job.model === ROUTER_MODEL_ID) return ROUTER_QUEUE;
    return catalog.resolve(job.model)?.backend === "hf" ? HF_QUEUE : llamaQueueName(job.model);
  };
}

export async function createFleetGateway(options: FleetGatewayOptions): Promise<FleetGateway> {
  const { config, logger } = options;
  const catalog = new Catalog(config);
  const dispatcher = new BullmqDispatcher({
    connection: options.redisUrl,
    prefix: options.prefix,
    queueFor: fleetQueueFor(catalog),
    maxWaiting: (job) => {
      const model = catalog.resolve(job.model);
      return model && "maxWaiting" in model ? model.maxWaiting : DEFAULT_MAX_WAITING;
    },
    logger: logger.child({ component: "queue" }),
  });
  const app = await buildGateway({ config, catalog, dispatcher, logger, readiness: "transport" });
  let closing: Promise<void> | undefined;
  return {
    app,
    dispatcher,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await dispatcher.close();
      })()),
  };
}

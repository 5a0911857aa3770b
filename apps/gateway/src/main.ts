/**
 * `start:gateway`: the fleet-mode gateway. It loads no models; workers
 * (`start:worker-llama`, `start:worker-hf`, `start:router`) take its jobs from
 * Redis. Requires REDIS_URL; SWITCHBOARD_QUEUE_PREFIX must match the workers'.
 */
import { loadConfigOrExit, requireRedisUrl, stopOnSignals } from "@switchboard/service";
import { pino } from "pino";
import { createFleetGateway } from "./fleet.js";

const redisUrl = requireRedisUrl(process.env, "The fleet-mode gateway sends every request to its workers");
const config = await loadConfigOrExit(process.env);

const logger = pino({ level: config.server.logLevel });
const gateway = await createFleetGateway({ config, redisUrl, prefix: process.env.SWITCHBOARD_QUEUE_PREFIX || undefined, logger });
await gateway.app.listen({ port: config.server.port, host: config.server.host });

stopOnSignals(logger, "shutting down: finishing in-flight requests", () => gateway.close());

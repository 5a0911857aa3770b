/**
 * `start:gateway`: the fleet-mode gateway. It loads no models; workers
 * (`start:worker-llama`, `start:worker-hf`, `start:router`) take its jobs from
 * Redis. Requires REDIS_URL; SWITCHBOARD_QUEUE_PREFIX must match the workers'.
 */
import { ConfigError, loadConfig } from "@switchboard/catalog";
import { pino } from "pino";
import { createFleetGateway } from "./fleet.js";

const redisUrl = process.env.REDIS_URL?.trim();
if (!redisUrl) {
  console.error(
    "REDIS_URL is not set. The fleet-mode gateway sends every request to workers through Redis: start it with " +
      "REDIS_URL=redis://host:6379 (the workers' Redis). To run everything in one process without Redis, use `pnpm start`.",
  );
  process.exit(1);
}

let config;
try {
  config = await loadConfig({ path: process.env.SWITCHBOARD_CONFIG, env: process.env });
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}

const logger = pino({ level: config.server.logLevel });
const gateway = await createFleetGateway({ config, redisUrl, prefix: process.env.SWITCHBOARD_QUEUE_PREFIX || undefined, logger });
await gateway.app.listen({ port: config.server.port, host: config.server.host });

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, "shutting down: finishing in-flight requests");
    gateway.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}

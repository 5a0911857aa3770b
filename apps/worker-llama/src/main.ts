/**
 * `start:worker-llama`: a fleet-mode worker serving the configured llama
 * models' queues on Redis. Requires REDIS_URL.
 *
 * Environment: REDIS_URL (required), SWITCHBOARD_CONFIG, PORT (health and
 * metrics; default 8081 so it can share a host with a gateway on 8080), HOST,
 * LOG_LEVEL, SWITCHBOARD_QUEUE_PREFIX (default `switchboard`; the gateway's
 * must match), SWITCHBOARD_WORKER_MODELS (comma-separated ids: serve only
 * these), SWITCHBOARD_WORKER_ID, SWITCHBOARD_DRAIN_TIMEOUT_MS (default 30000).
 */
import { ConfigError, loadConfig } from "@switchboard/catalog";
import { pino } from "pino";
import { startLlamaWorker } from "./llama-worker.js";

/** Health/metrics port when PORT is unset: beside a gateway on 8080. */
const DEFAULT_WORKER_PORT = 8081;

const redisUrl = process.env.REDIS_URL?.trim();
if (!redisUrl) {
  console.error(
    "REDIS_URL is not set. A fleet-mode worker takes its jobs from Redis: start it with REDIS_URL=redis://host:6379 " +
      "(the same Redis as the gateway's). To run everything in one process without Redis, use `pnpm start`.",
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
const modelIds = process.env.SWITCHBOARD_WORKER_MODELS?.split(",")
  .map((id) => id.trim())
  .filter((id) => id.length > 0);
const drainTimeoutMs = Number(process.env.SWITCHBOARD_DRAIN_TIMEOUT_MS ?? 30_000);

const worker = await startLlamaWorker({
  config,
  redisUrl,
  prefix: process.env.SWITCHBOARD_QUEUE_PREFIX || undefined,
  modelIds: modelIds && modelIds.length > 0 ? modelIds : undefined,
  workerId: process.env.SWITCHBOARD_WORKER_ID || undefined,
  port: process.env.PORT ? config.server.port : DEFAULT_WORKER_PORT,
  host: config.server.host,
  logger,
  transport: { drainTimeoutMs: Number.isFinite(drainTimeoutMs) ? drainTimeoutMs : 30_000 },
});

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, "stopping: no new jobs, draining running ones");
    worker.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}

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
import { loadConfigOrExit, requireRedisUrl, stopOnSignals } from "@switchboard/service";
import { pino } from "pino";
import { startLlamaWorker } from "./llama-worker.js";

/** Health/metrics port when PORT is unset: beside a gateway on 8080. */
const DEFAULT_WORKER_PORT = 8081;

const redisUrl = requireRedisUrl(process.env, "A fleet-mode worker takes its jobs");
const config = await loadConfigOrExit(process.env);

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

stopOnSignals(logger, "stopping: no new jobs, draining running ones", () => worker.close());

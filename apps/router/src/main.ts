/**
 * `start:router`: the fleet's router (HuggingGPT's loop) serving the `router`
 * queue on Redis. Requires REDIS_URL.
 *
 * Environment: REDIS_URL (required), SWITCHBOARD_CONFIG, PORT (health and
 * metrics; default 8083), HOST, LOG_LEVEL, SWITCHBOARD_QUEUE_PREFIX (default
 * `switchboard`; the gateway's must match), SWITCHBOARD_WORKER_ID,
 * SWITCHBOARD_DRAIN_TIMEOUT_MS (default 30000).
 */
import { loadConfigOrExit, requireRedisUrl, stopOnSignals } from "@switchboard/service";
import { pino } from "pino";
import { startRouterWorker } from "./router-worker.js";

/** Health/metrics port when PORT is unset: beside a gateway (8080) and workers (8081, 8082). */
const DEFAULT_ROUTER_PORT = 8083;

const redisUrl = requireRedisUrl(process.env, "The router takes its runs and submits its tasks");
const config = await loadConfigOrExit(process.env);
const logger = pino({ level: config.server.logLevel });
const drainTimeoutMs = Number(process.env.SWITCHBOARD_DRAIN_TIMEOUT_MS ?? 30_000);

const router = await startRouterWorker({
  config,
  redisUrl,
  prefix: process.env.SWITCHBOARD_QUEUE_PREFIX || undefined,
  workerId: process.env.SWITCHBOARD_WORKER_ID || undefined,
  port: process.env.PORT ? config.server.port : DEFAULT_ROUTER_PORT,
  host: config.server.host,
  logger,
  transport: { drainTimeoutMs: Number.isFinite(drainTimeoutMs) ? drainTimeoutMs : 30_000 },
});

stopOnSignals(logger, "stopping: no new runs, draining running ones", () => router.close());

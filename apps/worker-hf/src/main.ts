/**
 * `start:worker-hf`: a fleet-mode worker serving the remote (Hugging Face)
 * models' queue on Redis. Requires REDIS_URL.
 *
 * Environment: REDIS_URL (required; also the artifact store unless the
 * config sets `artifacts.redisUrl`), SWITCHBOARD_CONFIG, HF_TOKEN,
 * SWITCHBOARD_ARTIFACT_SECRET (not needed here: gateways sign URLs), PORT
 * (health and metrics; default 8082 so it can share a host with a gateway on
 * 8080 and a llama worker on 8081), HOST, LOG_LEVEL, SWITCHBOARD_QUEUE_PREFIX
 * (default `switchboard`; the gateway's must match), SWITCHBOARD_WORKER_ID,
 * SWITCHBOARD_HF_CONCURRENCY (jobs at once, default 32),
 * SWITCHBOARD_DRAIN_TIMEOUT_MS (default 30000).
 */
import { loadConfigOrExit, requireRedisUrl, stopOnSignals } from "@switchboard/service";
import { pino } from "pino";
import { DEFAULT_HF_CONCURRENCY, startHfWorker } from "./hf-worker.js";

/** Health/metrics port when PORT is unset. */
const DEFAULT_WORKER_PORT = 8082;

const redisUrl = requireRedisUrl(process.env, "A fleet-mode worker takes its jobs");
const config = await loadConfigOrExit(process.env);

const logger = pino({ level: config.server.logLevel, redact: { paths: ["token", "*.token", "authorization", "*.authorization"], censor: "[redacted]" } });
const concurrency = Number(process.env.SWITCHBOARD_HF_CONCURRENCY ?? DEFAULT_HF_CONCURRENCY);
const drainTimeoutMs = Number(process.env.SWITCHBOARD_DRAIN_TIMEOUT_MS ?? 30_000);

let worker;
try {
  worker = await startHfWorker({
    config,
    redisUrl,
    prefix: process.env.SWITCHBOARD_QUEUE_PREFIX || undefined,
    concurrency: Number.isInteger(concurrency) && concurrency > 0 ? concurrency : DEFAULT_HF_CONCURRENCY,
    workerId: process.env.SWITCHBOARD_WORKER_ID || undefined,
    port: process.env.PORT ? config.server.port : DEFAULT_WORKER_PORT,
    host: config.server.host,
    logger,
    transport: { drainTimeoutMs: Number.isFinite(drainTimeoutMs) ? drainTimeoutMs : 30_000 },
  });
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}

stopOnSignals(logger, "stopping: no new jobs, draining running ones", () => worker.close());

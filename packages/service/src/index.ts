/**
 * What every process entry point (`start`, `start:gateway`, the workers) does
 * before and after its own work: refuse to start without a required setting,
 * load the config or print every problem and exit, and stop cleanly on
 * SIGINT/SIGTERM. Only entry points use these; they exit the process.
 * Processes without an API of their own (the workers) also share one small
 * HTTP server for `/health`, `/ready` and `/metrics` ({@link startServiceHttp}).
 * Processes that submit jobs in fleet mode share one dispatcher setup
 * (`createFleetDispatcher`).
 */
import { ConfigError, loadConfig, type SwitchboardConfig } from "@switchboard/catalog";
import type { Logger } from "@switchboard/protocol";

export { DEFAULT_MAX_WAITING, createFleetDispatcher, fleetQueues, queueForCatalog, type FleetDispatcherOptions } from "./fleet-dispatcher.js";
export { fleetServiceSettings, startWorkerService, type FleetWorkerOptions, type WorkerService, type WorkerServiceOptions, type WorkerTransportSettings } from "./worker-service.js";
export { startServiceHttp, workerProbes, type MetricsSource, type ReadyAnswer, type ServiceHttp, type ServiceHttpOptions, type WorkerStatusSource } from "./service-http.js";

type Environment = Record<string, string | undefined>;

/** REDIS_URL, or a message saying why `role` needs it, then exit 1. */
export function requireRedisUrl(env: Environment, role: string): string {
  const redisUrl = env.REDIS_URL?.trim();
  if (redisUrl) return redisUrl;
  console.error(
    `REDIS_URL is not set. ${role} through Redis: start it with REDIS_URL=redis://host:6379 ` +
      "(the same Redis as the rest of the fleet). To run everything in one process without Redis, use `pnpm start`.",
  );
  process.exit(1);
}

/** The validated config (SWITCHBOARD_CONFIG or the built-in default); every problem printed, then exit 1. */
export async function loadConfigOrExit(env: Environment): Promise<SwitchboardConfig> {
  try {
    return await loadConfig({ path: env.SWITCHBOARD_CONFIG, env });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(1);
  }
}

/** On the first SIGINT/SIGTERM runs `close` and exits 0 (1 if it fails); a second signal exits at once. */
export function stopOnSignals(logger: Logger, message: string, close: () => Promise<void>): void {
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1);
      stopping = true;
      logger.info({ signal }, message);
      close().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
    });
  }
}

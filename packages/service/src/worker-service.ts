/**
 * What every fleet worker does around its engine: serve the engine's queues
 * on Redis, answer `/health`, `/ready` and `/metrics` on its own port, and
 * close in order (stop taking jobs and drain, close the engine and what it
 * uses, then HTTP). A port that is taken closes what was started.
 */
import type { Server } from "node:http";
import type { SwitchboardConfig } from "@switchboard/catalog";
import type { Registry } from "@switchboard/metrics";
import type { Backend, Logger } from "@switchboard/protocol";
import { serveBackend, type BackendServer, type QueueMetrics, type ServeBackendOptions } from "@switchboard/queue";
import { startServiceHttp, workerProbes, type MetricsSource } from "./service-http.js";

/** What every fleet worker process is started with; each worker adds its own settings. */
export interface FleetWorkerOptions {
  config: SwitchboardConfig;
  /** Redis URL of the fleet (queues and, by default, artifacts and run records). */
  redisUrl: string;
  /** BullMQ prefix shared with the gateway and the other workers. */
  prefix?: string;
  workerId?: string;
  /** Port of `/health`, `/ready` and `/metrics`; 0 picks a free one. */
  port: number;
  host?: string;
  logger: Logger;
  /** Lock, stall, heartbeat and drain timings (see `ServeBackendOptions`). */
  transport?: WorkerTransportSettings;
  /** The registry `/metrics` serves; a fresh one when absent. */
  metricsRegistry?: Registry;
}

/** What a worker's service takes from the worker's own options: Redis, identity, timings, HTTP, logs. */
export function fleetServiceSettings(options: FleetWorkerOptions): Pick<WorkerServiceOptions, "redisUrl" | "prefix" | "workerId" | "transport" | "port" | "host" | "logger"> {
  return {
    redisUrl: options.redisUrl,
    prefix: options.prefix,
    workerId: options.workerId,
    transport: options.transport,
    port: options.port,
    host: options.host,
    logger: options.logger,
  };
}

export type WorkerTransportSettings = Omit<ServeBackendOptions, "connection" | "prefix" | "queues" | "logger" | "workerId" | "metrics">;

export interface WorkerServiceOptions {
  backend: Backend;
  /** The queues served, each with its models and how many jobs run at once. */
  queues: ServeBackendOptions["queues"];
  redisUrl: string;
  /** BullMQ prefix shared with the rest of the fleet. */
  prefix?: string | undefined;
  workerId?: string | undefined;
  transport?: WorkerTransportSettings | undefined;
  /** Re-run and stalled jobs of the served queues. */
  queueMetrics?: Pick<QueueMetrics, "jobRetried" | "jobStalled" | "queueServed">;
  /** Port of `/health`, `/ready` and `/metrics`; 0 picks a free one. */
  port: number;
  host?: string;
  logger: Logger;
  registry: MetricsSource;
  /** Closes what the engine uses (stores, watchers, dispatchers), after the engine. */
  release?: () => Promise<void> | void;
}

export interface WorkerService {
  server: BackendServer;
  http: Server;
  /** Base URL of the HTTP server. */
  url: string;
  /** Stops taking jobs, drains (or cancels) running ones, closes the engine, what it uses, and HTTP. Once. */
  close(): Promise<void>;
}

export async function startWorkerService(options: WorkerServiceOptions): Promise<WorkerService> {
  const server = serveBackend(options.backend, {
    ...options.transport,
    connection: options.redisUrl,
    prefix: options.prefix,
    workerId: options.workerId,
    logger: options.logger,
    queues: options.queues,
    ...(options.queueMetrics ? { metrics: options.queueMetrics } : {}),
  });
  const stopServing = async () => {
    await server.close();
    await options.backend.close();
    await options.release?.();
  };
  let http: Awaited<ReturnType<typeof startServiceHttp>>;
  try {
    http = await startServiceHttp({ port: options.port, host: options.host, logger: options.logger, registry: options.registry, ...workerProbes(server) });
  } catch (error) {
    await stopServing();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    server,
    http: http.server,
    url: http.url,
    close: () =>
      (closing ??= (async () => {
        await stopServing();
        await http.close();
      })()),
  };
}

/**
 * A fleet-mode llama worker: the configured llama engine served from its
 * models' BullMQ queues (one queue per model, as many concurrent jobs as the
 * model has sequences), plus `/health`, `/ready` and `/metrics` on a small
 * HTTP server of its own.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { SwitchboardConfig } from "@switchboard/catalog";
import { createConfiguredLlamaBackend, type ConfiguredBackendOptions, type LlamaBackend } from "@switchboard/llama";
import { createMetrics } from "@switchboard/metrics";
import type { Logger } from "@switchboard/protocol";
import { llamaQueueName, serveBackend, type BackendServer, type ServeBackendOptions } from "@switchboard/queue";

export interface LlamaWorkerOptions {
  config: SwitchboardConfig;
  /** Redis URL of the fleet. */
  redisUrl: string;
  /** BullMQ prefix shared with the gateway. */
  prefix?: string;
  /** Serve only these model ids; every llama model of the config when absent. */
  modelIds?: string[];
  workerId?: string;
  /** Port of `/health`, `/ready` and `/metrics`; 0 picks a free one. */
  port: number;
  host?: string;
  logger: Logger;
  /** Lock, stall, heartbeat and drain timings (see `ServeBackendOptions`). */
  transport?: Omit<ServeBackendOptions, "connection" | "prefix" | "queues" | "logger" | "workerId">;
  onDownloadProgress?: ConfiguredBackendOptions["onDownloadProgress"];
}

export interface LlamaWorker {
  backend: LlamaBackend;
  server: BackendServer;
  http: Server;
  /** Base URL of the HTTP server. */
  url: string;
  /** Stops taking jobs, drains (or cancels) running ones, unloads the models, closes HTTP. */
  close(): Promise<void>;
}

export async function startLlamaWorker(options: LlamaWorkerOptions): Promise<LlamaWorker> {
  const { config, logger } = options;
  // One metrics object for the engine and /metrics, labelled by the catalog's model ids.
  const metrics = createMetrics({ models: config.models });
  const backend = createConfiguredLlamaBackend(config, {
    metrics: metrics.llama,
    modelIds: options.modelIds,
    logger: logger.child({ component: "llama" }),
    onDownloadProgress: options.onDownloadProgress,
  });
  const models = config.models.flatMap((model) => (model.backend === "llama" && backend.models().includes(model.id) ? [model] : []));
  if (models.length === 0) throw new Error("This worker has no llama model to serve: check SWITCHBOARD_WORKER_MODELS and the config's models.");
  backend.start();
  // Each model's queue is served once the model is ready, with one job per sequence.
  const server = serveBackend(backend, {
    ...options.transport,
    connection: options.redisUrl,
    prefix: options.prefix,
    workerId: options.workerId,
    logger,
    queues: models.map((model) => ({ name: llamaQueueName(model.id), models: [model.id], concurrency: model.sequences })),
  });

  metrics.llama.watch(() => backend.queueStates());
  const http = createServer((request, response) => void answer(request, response));
  async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? "/").split("?")[0];
    const send = (status: number, body: string, type = "application/json") => {
      response.writeHead(status, { "content-type": type });
      response.end(body);
    };
    if (request.method !== "GET") return send(405, JSON.stringify({ error: "method not allowed" }));
    if (path === "/health") return send(200, JSON.stringify({ status: "ok", ...server.status() }));
    if (path === "/ready") {
      const status = server.status();
      const serving = status.queues.some((queue) => queue.serving);
      return send(serving ? 200 : 503, JSON.stringify({ ready: serving, models: status.models }));
    }
    if (path === "/metrics") {
      try {
        return send(200, await metrics.registry.metrics(), metrics.registry.contentType);
      } catch (error) {
        logger.error({ err: error }, "metrics failed");
        return send(500, JSON.stringify({ error: "metrics failed" }));
      }
    }
    send(404, JSON.stringify({ error: "not found" }));
  }
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port, options.host ?? "0.0.0.0", () => resolve());
  });
  const address = http.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  logger.info({ url, workerId: server.workerId, models: models.map((model) => model.id) }, "llama worker started");

  let closing: Promise<void> | undefined;
  return {
    backend,
    server,
    http,
    url,
    close: () =>
      (closing ??= (async () => {
        await server.close();
        await backend.close();
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      })()),
  };
}

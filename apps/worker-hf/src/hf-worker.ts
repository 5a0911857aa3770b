/**
 * A fleet-mode Hugging Face worker: the remote models of the config served
 * from the one `hf` queue on Redis, with binary outputs written to the
 * fleet's artifact store (the same Redis unless `artifacts.redisUrl` says
 * otherwise), plus `/health`, `/ready` and `/metrics` on a small HTTP server
 * of its own. Remote calls are I/O bound, so one worker runs many jobs at
 * once.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createArtifactStore, type ArtifactStore } from "@switchboard/artifacts";
import type { SwitchboardConfig } from "@switchboard/catalog";
import { createConfiguredHfBackend, type HfBackend } from "@switchboard/hf";
import { createMetrics } from "@switchboard/metrics";
import type { Logger } from "@switchboard/protocol";
import { HF_QUEUE, serveBackend, type BackendServer, type ServeBackendOptions } from "@switchboard/queue";

/** Jobs one worker runs at once when not told otherwise: remote calls mostly wait on the network. */
export const DEFAULT_HF_CONCURRENCY = 32;

export interface HfWorkerOptions {
  config: SwitchboardConfig;
  /** Redis URL of the fleet (queue and, by default, artifacts). */
  redisUrl: string;
  /** BullMQ prefix shared with the gateway. */
  prefix?: string;
  /** Jobs run at once. Default {@link DEFAULT_HF_CONCURRENCY}. */
  concurrency?: number;
  workerId?: string;
  /** Port of `/health`, `/ready` and `/metrics`; 0 picks a free one. */
  port: number;
  host?: string;
  logger: Logger;
  /** Lock, stall, heartbeat and drain timings (see `ServeBackendOptions`). */
  transport?: Omit<ServeBackendOptions, "connection" | "prefix" | "queues" | "logger" | "workerId">;
  /** The network under the engine's owned fetch (benchmarks); `globalThis.fetch` by default. */
  upstreamTransport?: typeof fetch;
}

export interface HfWorker {
  backend: HfBackend;
  server: BackendServer;
  artifacts: ArtifactStore;
  http: Server;
  /** Base URL of the HTTP server. */
  url: string;
  /** Stops taking jobs, drains (or cancels) running ones, closes the store and HTTP. */
  close(): Promise<void>;
}

export async function startHfWorker(options: HfWorkerOptions): Promise<HfWorker> {
  const { config, logger } = options;
  const artifacts = createArtifactStore(config.artifacts, { fleetRedisUrl: options.redisUrl, ...(options.prefix ? { prefix: options.prefix } : {}) });
  const backend = createConfiguredHfBackend(config, {
    logger: logger.child({ component: "hf" }),
    artifacts,
    ...(options.workerId ? { worker: options.workerId } : {}),
    ...(options.upstreamTransport ? { transport: options.upstreamTransport } : {}),
  });
  if (!backend) {
    await artifacts.close();
    throw new Error("This worker has no remote model to serve: the config has no model with backend: hf.");
  }
  const concurrency = options.concurrency ?? DEFAULT_HF_CONCURRENCY;
  const server = serveBackend(backend, {
    ...options.transport,
    connection: options.redisUrl,
    prefix: options.prefix,
    workerId: options.workerId,
    logger,
    queues: [{ name: HF_QUEUE, models: backend.models(), concurrency }],
  });

  const metrics = createMetrics();
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
  logger.info({ url, workerId: server.workerId, models: backend.models(), concurrency, artifacts: artifacts.kind }, "hf worker started");

  let closing: Promise<void> | undefined;
  return {
    backend,
    server,
    artifacts,
    http,
    url,
    close: () =>
      (closing ??= (async () => {
        await server.close();
        await backend.close();
        await artifacts.close();
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      })()),
  };
}

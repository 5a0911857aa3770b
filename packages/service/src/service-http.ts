/**
 * The small HTTP server of a process that serves no API of its own (the
 * workers): `/health`, `/ready` and `/metrics`, nothing else. Plain
 * `node:http`: a worker needs no framework for three GET routes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GatewayError, toOpenAIError, type Logger } from "@switchboard/protocol";

/** What `/metrics` serves: a prom-client `Registry`, or anything with its two members. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** The answer of `/ready`: 200 with `body` when `ready`, else 503 with it. */
export interface ReadyAnswer {
  ready: boolean;
  body: object;
}

export interface ServiceHttpOptions {
  /** 0 picks a free port (tests). */
  port: number;
  /** Default `0.0.0.0`. */
  host?: string;
  logger: Logger;
  registry: MetricsSource;
  /** Body of `/health`, always 200 while the process answers. */
  health(): object;
  /** Whether the process can take work now, and what to say about it. */
  ready(): ReadyAnswer | Promise<ReadyAnswer>;
}

export interface ServiceHttp {
  /** Base URL, e.g. `http://127.0.0.1:8081`. */
  readonly url: string;
  readonly server: Server;
  /** Stops listening and drops open connections (scrapers keep theirs alive). */
  close(): Promise<void>;
}

/** What a fleet worker publishes about itself (`BackendServer.status()` of `@switchboard/queue`, structurally). */
export interface WorkerStatusSource {
  status(): { models: readonly unknown[]; queues: readonly { serving: boolean }[] } & object;
}

/**
 * `/health` and `/ready` of a fleet worker: health is its published status;
 * it is ready while it serves at least one queue (a model loaded, not draining).
 */
export function workerProbes(worker: WorkerStatusSource): Pick<ServiceHttpOptions, "health" | "ready"> {
  return {
    health: () => worker.status(),
    ready: () => {
      const status = worker.status();
      const serving = status.queues.some((queue) => queue.serving);
      return { ready: serving, body: { ready: serving, models: status.models } };
    },
  };
}

/** Starts the server; resolves once it listens (rejects if the port is taken). */
export async function startServiceHttp(options: ServiceHttpOptions): Promise<ServiceHttp> {
  const { logger } = options;
  const server = createServer((request, response) => {
    answer(options, request, response).catch((error: unknown) => {
      logger.error({ err: error, path: request.url }, "service route failed");
      send(response, 500, toJson(new GatewayError("The server had an error while answering.", { status: 500, type: "server_error", code: "internal_error" })));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (error: Error) => logger.error({ err: error }, "service HTTP server error"));
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    server,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}

const ROUTES = ["/health", "/ready", "/metrics"];

async function answer(options: ServiceHttpOptions, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? "/").split("?")[0]!;
  if (!ROUTES.includes(path)) {
    const shown = path.slice(0, 200);
    return send(response, 404, toJson(new GatewayError(`Unknown URL: ${shown}. This server answers GET ${ROUTES.join(", ")}.`, { status: 404, type: "invalid_request_error", code: "unknown_url" })));
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.setHeader("allow", "GET, HEAD");
    return send(response, 405, toJson(new GatewayError(`${path} answers GET only, not ${request.method}.`, { status: 405, type: "invalid_request_error", code: "method_not_allowed" })));
  }
  if (path === "/health") return send(response, 200, JSON.stringify({ status: "ok", ...options.health() }));
  if (path === "/ready") {
    const ready = await options.ready();
    return send(response, ready.ready ? 200 : 503, JSON.stringify(ready.body));
  }
  send(response, 200, await options.registry.metrics(), options.registry.contentType);
}

function toJson(error: GatewayError): string {
  return JSON.stringify(toOpenAIError(error));
}

function send(response: ServerResponse, status: number, body: string, type = "application/json"): void {
  if (response.headersSent) return void response.end();
  response.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  response.end(response.req.method === "HEAD" ? undefined : body);
}

/**
 * The Switchboard gateway: a Fastify app that serves the OpenAI API by
 * turning every request into a job for the injected {@link Dispatcher}. It
 * imports no engine; whether jobs run in this process or on workers across
 * Redis is the dispatcher's business.
 *
 * Access: when `config.apiKeys` is non-empty, every `/v1` route needs
 * `Authorization: Bearer <key>` (and `/metrics` too with
 * `server.metricsRequireKey`). `/health` and `/ready` stay open for probes.
 * `/docs` and `/openapi.json` stay open as well: the document is generated
 * from the static request/response schemas and holds no model ids, keys or
 * configuration, so it discloses nothing a caller of the public OpenAI API
 * would not know.
 */
import fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import fastifyCors from "@fastify/cors";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import type { SwitchboardConfig } from "@switchboard/catalog";
import { createMetrics, type Registry, type SwitchboardMetrics } from "@switchboard/metrics";
import { GatewayError, openAISchemas, unauthorized } from "@switchboard/protocol";
import type { Dispatcher } from "@switchboard/queue";
import { ApiKeys } from "./api-keys.js";
import { installErrorHandling, sendError, toGatewayError } from "./error-handling.js";
import { installGracefulClose } from "./graceful-close.js";
import { installJsonBodyParser } from "./json-body.js";
import { registerConsoleRoutes, type ConsoleRunRecord, type RecentRunsProvider } from "./console-routes.js";
import { installObservability } from "./observability.js";
import { JobRunner } from "./job-runner.js";
import type { GatewayArtifacts } from "./artifact-links.js";
import { SPECIALIST_TAGS, documentForms, registerSpecialistRoutes } from "./specialist-routes.js";
import { registerOpenAIRoutes, type GatewayCatalog } from "./openai-routes.js";
import { registerOperationsRoutes } from "./operations-routes.js";
import { REQUEST_ID_HEADER, requestIdFor } from "./request-id.js";
import { registerRouterRoutes, type RouterEndpoint } from "./router-routes.js";

export interface GatewayOptions {
  /** The validated, frozen configuration (server settings, keys, models). */
  config: SwitchboardConfig;
  /** Model lookups by id or alias (`Catalog` from `@switchboard/catalog`). */
  catalog: GatewayCatalog;
  /** Where jobs run: in-process or over BullMQ. The gateway does not close it. */
  dispatcher: Dispatcher;
  /**
   * A pino logger to use (its level wins). Without one, Fastify makes a pino
   * logger at `config.server.logLevel` writing JSON lines to stdout.
   */
  logger?: FastifyBaseLogger;
  /**
   * Where the gateway's own pino logger writes JSON lines when no `logger` is
   * given; stdout when absent.
   */
  logStream?: { write(line: string): void };
  /**
   * Registry for `/metrics`; a fresh one when absent. Metrics are defined on it
   * with `createMetrics`, so a registry can back only one gateway.
   */
  metricsRegistry?: Registry;
  /**
   * The process's metrics, when the composition shares them with the
   * dispatcher and the engines (`createMetrics` of `@switchboard/metrics`);
   * made on `metricsRegistry` from the catalog when absent.
   */
  metrics?: SwitchboardMetrics;
  /** Record request and job metrics (default true); off, `/metrics` serves process metrics only (benchmarks). */
  recordMetrics?: boolean;
  /** The router's recent runs, drawn by the console at `/`; the router's run store by default. */
  recentRuns?: RecentRunsProvider;
  /**
   * The router model (`router` and its aliases) and where its run records
   * are read: adds it to `/v1/models`, chat completions and
   * `/v1/orchestrations`. Absent: the router is disabled.
   */
  router?: RouterEndpoint;
  /** What `/ready` waits for: the models (embedded, the default) or the transport (fleet mode). */
  readiness?: "models" | "transport";
  /**
   * The artifact store the engines write binary outputs to (shared with them:
   * the same object in-process, the same Redis in fleet mode) and the key
   * that signs artifact URLs. Without it, binary outputs are answered inline
   * (`b64_json`) only and `/v1/artifacts` does not exist.
   */
  artifacts?: GatewayArtifacts;
}

/** Oversized uploads up to this many times the body limit (at least 64 MiB) are drained before the 413. */
const DRAIN_FACTOR = 16;
const MIN_DRAIN_BYTES = 64 * 1024 * 1024;

/** Log paths that must never be printed. */
const REDACTED_LOG_PATHS = [
  "req.headers.authorization",
  "request.headers.authorization",
  "headers.authorization",
  "authorization",
  "apiKeys",
  "*.apiKeys",
];

declare module "fastify" {
  interface FastifyContextConfig {
    /** The route needs a bearer key when keys are configured. */
    auth?: boolean;
  }
}

/**
 * Builds the gateway (routes, hooks, docs, metrics); the caller listens and
 * closes it. Closing the app does not close the dispatcher.
 */
export async function buildGateway(options: GatewayOptions): Promise<FastifyInstance> {
  const { config, catalog, dispatcher } = options;
  const server = config.server;
  const loggerOptions = options.logger
    ? { loggerInstance: options.logger }
    : {
        logger: {
          level: server.logLevel,
          redact: { paths: REDACTED_LOG_PATHS, censor: "[redacted]" },
          ...(options.logStream ? { stream: options.logStream } : {}),
        },
      };

  const app = fastify({
    ...loggerOptions,
    genReqId: requestIdFor,
    // The header is read by genReqId, which validates it first.
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: "requestId" }),
    bodyLimit: server.bodyLimitBytes,
    routerOptions: { maxParamLength: 1024 },
    ajv: {
      customOptions: {
        // "1" must not pass as 1, nor "true" as true: wrong types are a 400.
        coerceTypes: false,
        allErrors: false,
        removeAdditional: false,
        useDefaults: false,
        // Select a message's schema by its `role` instead of trying every branch.
        discriminator: true,
        // Errors carry their schema and data, for messages that say what to send.
        verbose: true,
      },
    },
    // Answered by the onRequest hook below, in the OpenAI shape.
    return503OnClosing: false,
    // Malformed URLs fail before routing; answer them in the OpenAI shape too.
    frameworkErrors: (error, request, reply) => sendError(request, reply, toGatewayError(error, request), error),
  });

  // Serialise responses with JSON.stringify: response schemas document the API,
  // they are not compiled into serializers (which would drop fields silently).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  const metrics = options.metrics ?? createMetrics({ registry: options.metricsRegistry, models: catalog.list() });
  // First onRequest hook, so requests refused by the ones below are counted too.
  const observeJob = installObservability(app, { metrics, catalog, enabled: options.recordMetrics });
  const keys = new ApiKeys(config.apiKeys);

  installErrorHandling(app);
  installGracefulClose(app);
  installJsonBodyParser(app, {
    limitBytes: server.bodyLimitBytes,
    drainLimitBytes: Math.max(server.bodyLimitBytes * DRAIN_FACTOR, MIN_DRAIN_BYTES),
  });

  if (server.corsOrigins.length > 0) {
    await app.register(fastifyCors, {
      origin: server.corsOrigins.includes("*") ? "*" : server.corsOrigins,
      exposedHeaders: [REQUEST_ID_HEADER, "retry-after"],
      maxAge: 600,
    });
  }

  let closing = false;
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });

  app.addHook("onRequest", (request, reply, done) => {
    reply.header(REQUEST_ID_HEADER, request.id);
    if (closing) {
      // A request that reached a closing server (pipelined on a busy connection): send it elsewhere.
      done(
        new GatewayError("The server is shutting down; retry on another instance or shortly.", {
          status: 503,
          type: "service_unavailable_error",
          code: "shutting_down",
          retryAfterSeconds: 1,
        }),
      );
      return;
    }
    if (keys.enabled && request.routeOptions.config.auth === true && !keys.authorizes(request.headers.authorization)) {
      done(
        unauthorized(
          request.headers.authorization === undefined
            ? "You didn't provide an API key. Send it in the Authorization header as 'Bearer <key>'."
            : "Incorrect API key provided.",
        ),
      );
      return;
    }
    done();
  });

  for (const schema of openAISchemas) app.addSchema(schema);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Switchboard",
        description:
          "An OpenAI-compatible gateway for local and remote models. Point any OpenAI SDK at `/v1`. Errors are OpenAI error objects; streams are server-sent events ending with `data: [DONE]`.",
        version: "0.1.0",
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: "http", scheme: "bearer", description: "Needed on `/v1` routes when the server has API keys configured." },
        },
      },
      tags: [
        { name: "Chat", description: "Chat completions" },
        { name: "Completions", description: "Legacy text completions" },
        { name: "Embeddings", description: "Vector embeddings" },
        { name: "Models", description: "The model catalog" },
        { name: "Router", description: "HuggingGPT's plan, select, execute, respond loop over the catalog's models (also the `router` chat model)" },
        ...SPECIALIST_TAGS,
        { name: "Operations", description: "Health, readiness and metrics" },
      ],
    },
    // Shared schemas become components named by their $id.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, index) => (typeof json.$id === "string" ? json.$id : `def-${index}`) },
    transform: ({ schema, url }) => {
      // Form bodies (uploads) are read by their routes; the document still describes them.
      if (url !== "/v1/models/*") return { schema: documentForms(schema as Record<string, unknown>, url) as typeof schema, url };
      // The wildcard that lets model ids contain `/` is one path parameter to API clients.
      return {
        url: "/v1/models/{model}",
        schema: {
          ...schema,
          params: {
            type: "object",
            properties: { model: { type: "string", description: "Model id or alias; may contain `/` and `:`." } },
            required: ["model"],
          },
        },
      };
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });

  const runner = new JobRunner({
    dispatcher,
    ...(observeJob ? { observeJob } : {}),
  });
  registerOpenAIRoutes(app, { catalog, runner, ...(options.router ? { router: options.router } : {}) });
  if (options.router) registerRouterRoutes(app, { runner, router: options.router });
  await registerSpecialistRoutes(app, {
    catalog,
    runner,
    ...(options.artifacts ? { artifacts: options.artifacts } : {}),
    multipart: { maxFileBytes: server.bodyLimitBytes, drainLimitBytes: Math.max(server.bodyLimitBytes * DRAIN_FACTOR, MIN_DRAIN_BYTES) },
  });
  registerOperationsRoutes(app, {
    catalog,
    dispatcher,
    registry: metrics.registry,
    metricsRequireKey: server.metricsRequireKey,
    readiness: options.readiness ?? "models",
  });
  const recentRuns = options.recentRuns ?? (options.router ? consoleRuns(options.router.runs) : undefined);
  registerConsoleRoutes(app, { metrics, catalog, dispatcher, ...(recentRuns ? { recentRuns } : {}) });

  return app;
}


/** The console reads the router's run store. */
function consoleRuns(runs: RouterEndpoint["runs"]): RecentRunsProvider {
  return {
    list: async (limit) => (await runs.list(limit)) as unknown as ConsoleRunRecord[],
    get: async (id) => (await runs.get(id)) as unknown as ConsoleRunRecord | undefined,
  };
}

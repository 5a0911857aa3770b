/**
 * Routes for operators and orchestrators: liveness, readiness, Prometheus
 * metrics and the OpenAPI document. None of them touches a model.
 */
import type { FastifyInstance } from "fastify";
import { Type, type Static } from "typebox";
import type { Dispatcher } from "@switchboard/queue";
import type { Registry } from "@switchboard/metrics";
import type { GatewayCatalog } from "./openai-routes.js";

export const ReadinessSchema = Type.Object(
  {
    status: Type.Enum(["ready", "degraded", "not_ready"], {
      description:
        "`ready`: every model is loaded. `degraded` (still 200): nothing is loading any more and some model serves, but others failed or have no worker. `not_ready` (503): the transport is down, a model is still downloading or loading, or no model can serve.",
    }),
    transport: Type.Enum(["ready", "unavailable"], { description: "Whether the dispatcher can take work (Redis reachable in fleet mode)." }),
    models: Type.Array(
      Type.Object({
        id: Type.String(),
        state: Type.Enum(["downloading", "loading", "ready", "failed", "unavailable"], {
          description: "`unavailable`: in the catalog, but no backend or worker serves it.",
        }),
        progress: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: "0..1 while downloading." })),
        error: Type.Optional(Type.String({ description: "Why the model failed to load." })),
      }),
    ),
  },
  {
    $id: "Readiness",
    description:
      "Embedded: 200 once no model is downloading or loading and at least one serves. Fleet mode: 200 while Redis is reachable; models are listed as the workers report them.",
  },
);
export type Readiness = Static<typeof ReadinessSchema>;

export interface OperationsRoutesOptions {
  catalog: GatewayCatalog;
  dispatcher: Dispatcher;
  registry: Registry;
  /** Whether `/metrics` needs a key when keys are configured. */
  metricsRequireKey: boolean;
  /**
   * What `/ready` waits for: `models` (embedded: the models this process
   * loads) or `transport` (fleet mode: Redis; workers come and go).
   */
  readiness: "models" | "transport";
}

export function registerOperationsRoutes(app: FastifyInstance, options: OperationsRoutesOptions): void {
  const { catalog, dispatcher, registry } = options;
  app.addSchema(ReadinessSchema);

  app.get(
    "/health",
    {
      schema: {
        operationId: "health",
        tags: ["Operations"],
        summary: "Liveness: 200 while the process serves HTTP",
        response: { 200: Type.Object({ status: Type.Literal("ok") }) },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/ready",
    {
      schema: {
        operationId: "ready",
        tags: ["Operations"],
        summary: "Readiness: 200 when the gateway can serve, 503 listing what is still downloading, loading or failed",
        response: { 200: { $ref: "Readiness#" }, 503: { $ref: "Readiness#" } },
      },
    },
    async (_request, reply): Promise<Readiness> => {
      const [states, transportReady] = await Promise.all([dispatcher.modelStates(), dispatcher.ready()]);
      const byId = new Map(states.map((state) => [state.id, state]));
      const models: Readiness["models"] = catalog.list().map((model) => {
        const state = byId.get(model.id);
        byId.delete(model.id);
        return state ? { ...state } : { id: model.id, state: "unavailable" };
      });
      // Models some backend serves outside the catalog still count.
      for (const state of byId.values()) models.push({ ...state });
      const allReady = models.every((model) => model.state === "ready");
      const pending = models.some((model) => model.state === "downloading" || model.state === "loading");
      const someServe = models.some((model) => model.state === "ready");
      const serving = options.readiness === "transport" ? transportReady : transportReady && !pending && someServe;
      reply.code(serving ? 200 : 503);
      const status = !serving ? "not_ready" : allReady ? "ready" : "degraded";
      return { status, transport: transportReady ? "ready" : "unavailable", models };
    },
  );

  app.get(
    "/metrics",
    {
      config: { auth: options.metricsRequireKey },
      schema: {
        operationId: "metrics",
        tags: ["Operations"],
        summary: "Prometheus metrics (text exposition format)",
        response: { 200: { description: "Prometheus text format.", content: { "text/plain": { schema: { type: "string" } } } } },
      },
    },
    async (_request, reply) => {
      reply.type(registry.contentType);
      return registry.metrics();
    },
  );

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
}

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
    status: Type.Enum(["ready", "not_ready"]),
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
  { $id: "Readiness", description: "Ready when the transport is up and every model is loaded." },
);
export type Readiness = Static<typeof ReadinessSchema>;

export interface OperationsRoutesOptions {
  catalog: GatewayCatalog;
  dispatcher: Dispatcher;
  registry: Registry;
  /** Whether `/metrics` needs a key when keys are configured. */
  metricsRequireKey: boolean;
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
        summary: "Readiness: 200 when every model is loaded, 503 listing what is still downloading, loading or failed",
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
      const ready = transportReady && models.every((model) => model.state === "ready");
      reply.code(ready ? 200 : 503);
      return { status: ready ? "ready" : "not_ready", transport: transportReady ? "ready" : "unavailable", models };
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

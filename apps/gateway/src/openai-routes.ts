/**
 * The OpenAI routes under `/v1`. Each one resolves the model through the
 * catalog, builds a job, and lets the {@link JobRunner} answer from the job's
 * events. Request bodies are validated by Fastify against the schemas in
 * `@switchboard/protocol` before a handler runs.
 */
import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Catalog, ModelConfig } from "@switchboard/catalog";
import {
  ChatCompletionAccumulator,
  ChatStreamEncoder,
  CompletionAccumulator,
  CompletionStreamEncoder,
  EmbeddingAccumulator,
  invalidRequest,
  modelNotFound,
  type ChatCompletionRequest,
  type CompletionIdentity,
  type CompletionRequest,
  type EmbeddingRequest,
  type Model,
  type ModelList,
} from "@switchboard/protocol";
import { buildChatJob, buildCompletionJob, buildEmbeddingJob } from "./job-builders.js";
import type { JobRunner } from "./job-runner.js";
import { newJobId } from "./request-id.js";
import { isRouterName, routerChatCompletion, type RouterEndpoint } from "./router-routes.js";

/** The catalog surface the gateway needs: lookups by id or alias, and the list. */
export type GatewayCatalog = Pick<Catalog, "resolve" | "list">;

export interface OpenAIRoutesOptions {
  catalog: GatewayCatalog;
  runner: JobRunner;
  /** The router model, listed with the catalog and answering chat completions; absent when disabled. */
  router?: RouterEndpoint;
}

const errorResponses = {
  "4xx": { $ref: "ErrorResponse#" },
  "5xx": { $ref: "ErrorResponse#" },
};
/** Marks a route as needing a key when keys are configured (read by the auth hook). */
const authenticated = { auth: true };
const security = [{ bearerAuth: [] }];

export function registerOpenAIRoutes(app: FastifyInstance, options: OpenAIRoutesOptions): void {
  const { catalog, runner, router } = options;
  const createdAt = Math.floor(Date.now() / 1000);
  const fingerprints = new WeakMap<ModelConfig, string>();

  const resolveModel = (name: string, route?: string): ModelConfig => {
    if (route !== undefined && isRouterName(router, name))
      throw invalidRequest(`The router model '${name}' serves chat completions and /v1/orchestrations, not ${route}.`, "model", "model_not_supported");
    const model = catalog.resolve(name);
    if (!model) throw modelNotFound(name);
    return model;
  };
  const modelObject = (model: Pick<ModelConfig, "id">): Model => ({ id: model.id, object: "model", created: createdAt, owned_by: "switchboard" });
  const routerModel = router ? [modelObject(router)] : [];
  /** Names the model configuration that answered, as OpenAI's `system_fingerprint` does. */
  const fingerprint = (model: ModelConfig): string => {
    let value = fingerprints.get(model);
    if (value === undefined) {
      value = "fp_" + createHash("sha256").update(JSON.stringify(model)).digest("hex").slice(0, 12);
      fingerprints.set(model, value);
    }
    return value;
  };
  const identity = (prefix: string, jobId: string, model: ModelConfig): CompletionIdentity => ({
    id: prefix + jobId,
    model: model.id,
    created: Math.floor(Date.now() / 1000),
    systemFingerprint: fingerprint(model),
  });
  const routerFingerprint = router ? "fp_" + createHash("sha256").update(JSON.stringify(router.aliases)).digest("hex").slice(0, 12) : "";
  const logJob = (request: FastifyRequest, job: unknown) => {
    // Prompts are user data: only at debug (pino skips serialising below its level).
    request.log.debug({ job }, "job built");
  };

  app.get(
    "/v1/models",
    {
      config: authenticated,
      schema: {
        operationId: "listModels",
        tags: ["Models"],
        summary: "List the models this gateway serves",
        security,
        response: { 200: { $ref: "ListModelsResponse#" }, ...errorResponses },
      },
    },
    async (): Promise<ModelList> => ({ object: "list", data: [...catalog.list().map(modelObject), ...routerModel] }),
  );

  // A wildcard, because model ids may contain `/` and `:` (`org/model:q4`).
  app.get<{ Params: { "*": string } }>(
    "/v1/models/*",
    {
      config: authenticated,
      schema: {
        operationId: "retrieveModel",
        tags: ["Models"],
        summary: "Describe one model (an alias resolves to its model)",
        security,
        response: { 200: { $ref: "Model#" }, ...errorResponses },
      },
    },
    async (request): Promise<Model> => (router && isRouterName(router, request.params["*"]) ? modelObject(router) : modelObject(resolveModel(request.params["*"]))),
  );

  app.post<{ Body: ChatCompletionRequest }>(
    "/v1/chat/completions",
    {
      config: authenticated,
      schema: {
        operationId: "createChatCompletion",
        tags: ["Chat"],
        summary: "Create a chat completion (streamed as server-sent events with `stream: true`)",
        security,
        body: { $ref: "CreateChatCompletionRequest#" },
        response: {
          200: {
            description: "A chat completion, or with `stream: true` a stream of `data: {chunk}` events ending with `data: [DONE]`.",
            content: {
              "application/json": { schema: { $ref: "CreateChatCompletionResponse#" } },
              "text/event-stream": { schema: { $ref: "CreateChatCompletionStreamResponse#" } },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (router && isRouterName(router, body.model))
        return routerChatCompletion(request, reply, {
          runner,
          router,
          identity: (prefix, jobId) => ({ id: prefix + jobId, model: router.id, created: Math.floor(Date.now() / 1000), systemFingerprint: routerFingerprint }),
        });
      const model = resolveModel(body.model);
      const job = buildChatJob(body, model, { id: newJobId(), requestId: request.id });
      logJob(request, job);
      const base = identity("chatcmpl-", job.id, model);
      if (body.stream === true) {
        await runner.stream(request, reply, job, new ChatStreamEncoder({ ...base, includeUsage: body.stream_options?.include_usage === true }));
        return reply;
      }
      const accumulator = new ChatCompletionAccumulator(base);
      if (!(await runner.collect(request, reply, job, accumulator))) return reply;
      return accumulator.toResponse();
    },
  );

  app.post<{ Body: CompletionRequest }>(
    "/v1/completions",
    {
      config: authenticated,
      schema: {
        operationId: "createCompletion",
        tags: ["Completions"],
        summary: "Create a text completion (n choices per prompt)",
        security,
        body: { $ref: "CreateCompletionRequest#" },
        response: {
          200: {
            description: "A text completion, or with `stream: true` a stream of `data: {chunk}` events ending with `data: [DONE]`.",
            content: {
              "application/json": { schema: { $ref: "CreateCompletionResponse#" } },
              "text/event-stream": { schema: { $ref: "CompletionStreamChunk#" } },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const model = resolveModel(body.model, "text completions");
      const job = buildCompletionJob(body, model, { id: newJobId(), requestId: request.id });
      logJob(request, job);
      const base = identity("cmpl-", job.id, model);
      if (body.stream === true) {
        await runner.stream(request, reply, job, new CompletionStreamEncoder({ ...base, includeUsage: body.stream_options?.include_usage === true }));
        return reply;
      }
      const accumulator = new CompletionAccumulator(base, job.prompts.length);
      if (!(await runner.collect(request, reply, job, accumulator))) return reply;
      return accumulator.toResponse();
    },
  );

  app.post<{ Body: EmbeddingRequest }>(
    "/v1/embeddings",
    {
      config: authenticated,
      schema: {
        operationId: "createEmbedding",
        tags: ["Embeddings"],
        summary: "Embed texts (float or base64-encoded float32 vectors)",
        security,
        body: { $ref: "CreateEmbeddingRequest#" },
        response: { 200: { $ref: "CreateEmbeddingResponse#" }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const model = resolveModel(body.model, "embeddings");
      const job = buildEmbeddingJob(body, model, { id: newJobId(), requestId: request.id });
      logJob(request, job);
      const accumulator = new EmbeddingAccumulator(model.id, body.encoding_format ?? "float");
      if (!(await runner.collect(request, reply, job, accumulator))) return reply;
      const dimension = accumulator.vectors[0]?.length;
      if (body.dimensions != null && dimension !== undefined && body.dimensions !== dimension)
        throw invalidRequest(`The model '${model.id}' makes ${dimension}-dimensional embeddings; 'dimensions' must be ${dimension} or left out.`, "dimensions");
      return accumulator.toResponse();
    },
  );
}

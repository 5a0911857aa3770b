/**
 * The router (HuggingGPT's plan, select, execute, respond loop) over HTTP:
 * `POST /v1/orchestrations` starts a run (its record as JSON, or its events
 * as server-sent events), `GET /v1/orchestrations/{id}` reads a run back
 * while it runs and after, and chat completions on the `router` model run
 * the same loop with its progress streamed as `reasoning_content`. Runs are
 * `orchestration` jobs on the dispatcher like any other job: in-process in
 * the embedded default, on the router queue in fleet mode.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  ChatCompletionAccumulator,
  ChatStreamEncoder,
  GatewayError,
  invalidRequest,
  type ChatCompletionRequest,
  type CompletionIdentity,
  type JobEvent,
  type OrchestrationJob,
  type OrchestrationJobMessage,
  type OrchestrationRequest,
  type RouterRunRecord,
} from "@switchboard/protocol";
import type { JobRunner, StreamEncoder } from "./job-runner.js";
import { newJobId } from "./request-id.js";

/** Where gateways read run records (the router's run store). */
export interface RunReader {
  get(id: string): Promise<RouterRunRecord | undefined>;
  /** Newest first, at most `limit`. */
  list(limit: number): Promise<RouterRunRecord[]>;
}

export interface RouterEndpoint {
  /** Catalog id of the router model (`router`). */
  id: string;
  aliases: readonly string[];
  runs: RunReader;
}

/** Whether `model` names the router. */
export function isRouterName(router: RouterEndpoint | undefined, model: string): boolean {
  return router !== undefined && (model === router.id || router.aliases.includes(model));
}

/** A run record as the API serves it. */
export function orchestrationObject(record: RouterRunRecord): Record<string, unknown> {
  return { object: "orchestration", ...record };
}

function orchestrationJob(messages: OrchestrationJobMessage[], routerId: string, requestId: string, extra: Pick<OrchestrationJob, "dryRun" | "plan"> = {}): OrchestrationJob {
  return { kind: "orchestration", id: `run_${newJobId()}`, requestId, model: routerId, messages, ...extra };
}

/** Refuses chat fields the router cannot honour, naming each. */
function checkRouterChat(body: ChatCompletionRequest): void {
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw invalidRequest("The router writes one answer: 'n' must be 1.", "n");
  if (body.tools !== undefined && body.tools !== null && body.tools.length > 0)
    throw invalidRequest("The router does not call client tools: leave out 'tools' (it runs the catalog's models itself).", "tools");
  if (body.response_format !== undefined && body.response_format !== null && body.response_format.type !== "text")
    throw invalidRequest("The router writes free text: leave out 'response_format' or set it to {\"type\": \"text\"}.", "response_format");
  if (body.logprobs === true) throw invalidRequest("Log probabilities are not supported: leave out 'logprobs' or set it to false.", "logprobs");
  // Token ids mean nothing across the several models a run calls.
  if (body.logit_bias !== undefined && body.logit_bias !== null && Object.keys(body.logit_bias).length > 0)
    throw invalidRequest("The router does not take 'logit_bias' (its runs call several models, each with its own tokens): leave it out.", "logit_bias");
}

/** Answers a chat completion on the router model: the run's answer as the reply, its progress as reasoning. */
export async function routerChatCompletion(
  request: FastifyRequest<{ Body: ChatCompletionRequest }>,
  reply: FastifyReply,
  options: { runner: JobRunner; router: RouterEndpoint; identity: (prefix: string, jobId: string) => CompletionIdentity },
): Promise<unknown> {
  const body = request.body;
  checkRouterChat(body);
  const job = orchestrationJob(body.messages as OrchestrationJobMessage[], options.router.id, request.id);
  const base = options.identity("chatcmpl-", job.id);
  if (body.stream === true) {
    await options.runner.stream(request, reply, job, new ChatStreamEncoder({ ...base, includeUsage: body.stream_options?.include_usage === true }));
    return reply;
  }
  const accumulator = new ChatCompletionAccumulator(base);
  if (!(await options.runner.collect(request, reply, job, accumulator))) return reply;
  return accumulator.toResponse();
}

/** A run's events as orchestration stream events (`data: {event}`). */
class OrchestrationStreamEncoder implements StreamEncoder {
  #runId = "";

  encode(event: JobEvent): string | undefined {
    switch (event.type) {
      case "accepted":
        this.#runId = event.jobId;
        return JSON.stringify({ type: "run-started", runId: event.jobId });
      case "progress":
        return JSON.stringify(event.progress);
      case "text-delta":
        return JSON.stringify({ type: "answer-delta", runId: this.#runId, text: event.text });
      case "run":
        return JSON.stringify({ type: "run", runId: event.record.id, run: orchestrationObject(event.record) });
      default:
        return undefined;
    }
  }

  end(): string | undefined {
    return undefined;
  }
}

/** Keeps the run record of a non-streamed run. */
class RunCollector {
  record: RouterRunRecord | undefined;
  add(event: JobEvent): void {
    if (event.type === "run") this.record = event.record;
  }
}

const errorResponses = {
  "4xx": { $ref: "ErrorResponse#" },
  "5xx": { $ref: "ErrorResponse#" },
};
const authenticated = { auth: true };
const security = [{ bearerAuth: [] }];

export function registerRouterRoutes(app: FastifyInstance, options: { runner: JobRunner; router: RouterEndpoint }): void {
  const { runner, router } = options;

  app.post<{ Body: OrchestrationRequest }>(
    "/v1/orchestrations",
    {
      config: authenticated,
      schema: {
        operationId: "createOrchestration",
        tags: ["Router"],
        summary: "Run the router: plan tasks, choose a model for each, run them, write the answer",
        description:
          "The HuggingGPT loop over the catalog's models. With `dry_run` it plans and selects only; with `plan` it executes the given plan (validated first). The run record stays readable at `GET /v1/orchestrations/{id}`.",
        security,
        body: { $ref: "CreateOrchestrationRequest#" },
        response: {
          200: {
            description: "The run record, or with `stream: true` its events as server-sent events (`data: {event}`) ending with `data: [DONE]`.",
            content: {
              "application/json": { schema: { $ref: "Orchestration#" } },
              "text/event-stream": { schema: { $ref: "OrchestrationStreamEvent#" } },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (body.model !== undefined && !isRouterName(router, body.model))
        throw invalidRequest(`'model' must be '${router.id}' (or one of its aliases: ${router.aliases.map((alias) => `'${alias}'`).join(", ") || "none"}) or left out.`, "model", "model_not_found");
      const job = orchestrationJob(body.messages as OrchestrationJobMessage[], router.id, request.id, {
        ...(body.dry_run === true ? { dryRun: true } : {}),
        ...(body.plan === undefined ? {} : { plan: body.plan }),
      });
      if (body.stream === true) {
        await runner.stream(request, reply, job, new OrchestrationStreamEncoder());
        return reply;
      }
      const collector = new RunCollector();
      try {
        if (!(await runner.collect(request, reply, job, collector))) return reply;
      } catch (error) {
        // A run that started and failed still has its record: the record says what went wrong.
        if (collector.record && error instanceof GatewayError) return orchestrationObject(collector.record);
        throw error;
      }
      if (!collector.record) throw new GatewayError("The router ended the run without its record.", { status: 502, type: "server_error", code: "no_run_record" });
      return orchestrationObject(collector.record);
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/orchestrations/:id",
    {
      config: authenticated,
      schema: {
        operationId: "retrieveOrchestration",
        tags: ["Router"],
        summary: "Read a run: plan, selections with reasons, each task's inputs, outputs, artifacts, timings and errors",
        security,
        params: { type: "object", properties: { id: { type: "string", description: "The run's id (`run_...`)." } }, required: ["id"] },
        response: { 200: { $ref: "Orchestration#" }, ...errorResponses },
      },
    },
    async (request) => {
      const record = await router.runs.get(request.params.id);
      if (!record)
        throw new GatewayError(`No run '${request.params.id}': the id is wrong, or the run is older than router.runTtlSeconds.`, {
          status: 404,
          type: "invalid_request_error",
          param: "id",
          code: "run_not_found",
        });
      return orchestrationObject(record);
    },
  );

  app.get<{ Querystring: { limit?: string } }>(
    "/v1/orchestrations",
    {
      config: authenticated,
      schema: {
        operationId: "listOrchestrations",
        tags: ["Router"],
        summary: "List recent runs, newest first",
        security,
        querystring: { type: "object", properties: { limit: { type: "string", pattern: "^[0-9]{1,3}$", description: "Most runs returned, 1 to 100 (default 20)." } } },
        response: { 200: { $ref: "OrchestrationList#" }, ...errorResponses },
      },
    },
    async (request) => {
      const limit = Math.min(100, Math.max(1, Number(request.query.limit ?? 20)));
      return { object: "list", data: (await router.runs.list(limit)).map(orchestrationObject) };
    },
  );
}

/**
 * `POST /v1/tasks/{task}` for every task in `TASK_NAMES`: the specialist
 * models, as plain REST. One route per task (so the OpenAPI document shows
 * each task's own request and response), each a task job through the
 * dispatcher like every other route.
 *
 * Bodies are JSON (binary inputs as base64, `data:` URLs, http(s) URLs, or
 * `{type: "artifact", id}`) or `multipart/form-data`: a file part `inputs`
 * (or, for object inputs, a part per member: `image`, `question`, ...), text
 * parts for the rest, `parameters` as JSON text. A form is turned into the
 * JSON shape before validation, so both are checked by the same schema.
 *
 * `model` is optional: the catalog's best model for the task answers, and the
 * task's other models are its fallbacks when it is loading, out of rotation
 * or failing upstream.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Value } from "typebox/value";
import type { TSchema } from "typebox";
import { modelsForTask, servesTask, type HfModelConfig } from "@switchboard/catalog";
import {
  GatewayError,
  TASK_NAMES,
  TaskRequestSchemas,
  internalError,
  invalidRequest,
  modelNotFound,
  taskSchemaId,
  type BinaryInput,
  type BinaryResponseFormat,
  type JobEvent,
  type TaskHttpResponse,
  type TaskJob,
  type TaskName,
  type TaskResultEvent,
} from "@switchboard/protocol";
import type { ArtifactLinks } from "./artifact-links.js";
import type { EventCollector, JobRunner } from "./job-runner.js";
import { readMultipartForm, type MultipartLimits, type UploadedFile } from "./multipart-form.js";
import type { GatewayCatalog } from "./openai-routes.js";
import { newJobId } from "./request-id.js";

export interface TaskRoutesOptions {
  catalog: GatewayCatalog;
  runner: JobRunner;
  links: ArtifactLinks;
  multipart: MultipartLimits;
}

const errorResponses = { "4xx": { $ref: "ErrorResponse#" }, "5xx": { $ref: "ErrorResponse#" } };
const security = [{ bearerAuth: [] }];

/** The model that answers a task request, and the ones to try after it. */
export interface TaskModelChoice {
  model: HfModelConfig;
  fallbackModels: string[];
}

/**
 * `name` when given (it must be a remote model that serves the task), else
 * the catalog's best model for the task with the others as fallbacks.
 */
export function chooseTaskModel(catalog: GatewayCatalog, task: TaskName, name: string | null | undefined, param = "model"): TaskModelChoice {
  if (name !== undefined && name !== null) {
    const model = catalog.resolve(name);
    if (!model) throw modelNotFound(name);
    if (model.backend !== "hf") {
      throw invalidRequest(
        `The model '${model.id}' is a local chat model; it does not serve ${task}. Use /v1/chat/completions for it, or name a ${task} model.`,
        param,
        "model_task_mismatch",
      );
    }
    if (!servesTask(model, task)) {
      throw invalidRequest(`The model '${model.id}' serves ${model.task}, not ${task}.`, param, "model_task_mismatch");
    }
    return { model, fallbackModels: [] };
  }
  const [model, ...others] = modelsForTask(catalog.list(), task);
  if (!model) {
    throw new GatewayError(`No model serves ${task} here. Configure one (backend: hf, task: ${task}) or name a model.`, {
      status: 404,
      type: "invalid_request_error",
      param,
      code: "model_not_found",
    });
  }
  return { model, fallbackModels: others.map((other) => other.id) };
}

/** Collects the one `task-result` of a task job. */
export class TaskResultCollector implements EventCollector {
  result: TaskResultEvent | undefined;

  add(event: JobEvent): void {
    if (event.type === "task-result") this.result = event;
  }

  take(): TaskResultEvent {
    if (!this.result) throw internalError("The model ended the task without a result.", "empty_response");
    return this.result;
  }
}

/**
 * Runs one task job and returns its result, or undefined when the client
 * went away (the reply is then hijacked and must not be touched).
 */
export async function runTask(runner: JobRunner, request: FastifyRequest, reply: Parameters<JobRunner["collect"]>[1], job: TaskJob): Promise<TaskResultEvent | undefined> {
  const collector = new TaskResultCollector();
  if (!(await runner.collect(request, reply, job, collector))) return undefined;
  return collector.take();
}

/** An uploaded file as a binary input: a reference into the artifact store when there is one (jobs stay small), else inline base64. */
export async function uploadAsInput(file: UploadedFile, links: ArtifactLinks): Promise<BinaryInput> {
  const mimeType = /^[\w.+-]+\/[\w.+-]+$/.test(file.mimeType) ? file.mimeType : "application/octet-stream";
  if (links.store) {
    const info = await links.store.put(file.data, mimeType);
    return { type: "artifact", id: info.id };
  }
  return { type: "base64", data: file.data.toString("base64"), mimeType };
}

/** A text field as the schema wants it: the text itself when it fits, else parsed JSON (lists, objects, numbers). */
function fieldValue(text: string, schema: TSchema): unknown {
  if (Value.Check(schema, text)) return text;
  try {
    return JSON.parse(text);
  } catch {
    // Not JSON either: the schema check reports it, naming the field.
    return text;
  }
}

/** A multipart form turned into the task's JSON request shape. */
async function formToTaskBody(task: TaskName, request: FastifyRequest, options: TaskRoutesOptions): Promise<Record<string, unknown>> {
  const form = await readMultipartForm(request, options.multipart);
  const requestSchema = TaskRequestSchemas[task] as unknown as { properties: { inputs: TSchema & { properties?: Record<string, TSchema> } } };
  const inputsSchema = requestSchema.properties.inputs;
  const members = inputsSchema.properties;
  const body: Record<string, unknown> = {};
  const inputs: Record<string, unknown> = {};

  for (const [name, text] of form.fields) {
    if (name === "model" || name === "response_format") body[name] = text;
    else if (name === "parameters") {
      try {
        body.parameters = JSON.parse(text);
      } catch {
        throw invalidRequest("The form field 'parameters' must be a JSON object.", "parameters");
      }
    } else if (name === "inputs") body.inputs = fieldValue(text, inputsSchema);
    else {
      const member = name.startsWith("inputs.") ? name.slice("inputs.".length) : name;
      if (members?.[member]) inputs[member] = fieldValue(text, members[member]);
    }
  }
  for (const [name, file] of form.files) {
    const value = await uploadAsInput(file, options.links);
    if (name === "inputs" || name === "file") body.inputs = value;
    else {
      const member = name.startsWith("inputs.") ? name.slice("inputs.".length) : name;
      if (members?.[member]) inputs[member] = value;
    }
  }
  if (Object.keys(inputs).length > 0) {
    body.inputs = { ...(typeof body.inputs === "object" && body.inputs !== null ? body.inputs : {}), ...inputs };
  }
  return body;
}

interface TaskBody {
  model?: string;
  inputs: unknown;
  parameters?: Record<string, unknown>;
  response_format?: BinaryResponseFormat;
}

export function registerTaskRoutes(app: FastifyInstance, options: TaskRoutesOptions): void {
  const { catalog, runner, links } = options;

  for (const task of TASK_NAMES) {
    app.post<{ Body: TaskBody }>(
      `/v1/tasks/${task}`,
      {
        config: { auth: true },
        schema: {
          operationId: `task_${task.replaceAll("-", "_")}`,
          tags: ["Tasks"],
          summary: `Run ${task} on a remote specialist model`,
          description:
            "JSON body, or multipart/form-data: a file part `inputs` (or one per member of object inputs: `image`, `question`, ...), text parts for the rest, `parameters` as JSON text.",
          security,
          body: { $ref: `${taskSchemaId(task, "Request")}#` },
          response: { 200: { $ref: `${taskSchemaId(task, "Response")}#` }, ...errorResponses },
        },
        preValidation: async (request) => {
          if (request.isMultipart()) request.body = (await formToTaskBody(task, request, options)) as unknown as TaskBody;
        },
      },
      async (request, reply) => {
        const body = request.body;
        const format = body.response_format ?? links.defaultFormat();
        links.checkFormat(format);
        const { model, fallbackModels } = chooseTaskModel(catalog, task, body.model);
        const job = {
          kind: "task",
          id: newJobId(),
          requestId: request.id,
          model: model.id,
          task,
          inputs: body.inputs,
          ...(body.parameters !== undefined ? { parameters: body.parameters } : {}),
          ...(fallbackModels.length > 0 ? { fallbackModels } : {}),
        } as TaskJob;
        request.log.debug({ job: { ...job, inputs: undefined } }, "task job built");
        const result = await runTask(runner, request, reply, job);
        if (!result) return reply;
        const response: TaskHttpResponse = {
          id: `task-${job.id}`,
          object: "task.result",
          created: Math.floor(Date.now() / 1000),
          task,
          model: result.model,
          output: await links.present(result.output, format, request),
        };
        return response;
      },
    );
  }

  // Any other task name: a 404 that lists the served ones, instead of "unknown URL".
  app.post<{ Params: { task: string } }>("/v1/tasks/:task", { config: { auth: true }, schema: { hide: true } }, async (request) => {
    throw new GatewayError(`Unknown task '${request.params.task.slice(0, 64)}'. Tasks: ${TASK_NAMES.join(", ")}.`, {
      status: 404,
      type: "invalid_request_error",
      param: "task",
      code: "unknown_task",
    });
  });
}

/** The multipart alternative of each task route, for the OpenAPI document only. */
export function taskMultipartDocs(task: TaskName): Record<string, unknown> {
  const inputs = TaskRequestSchemas[task] as unknown as { properties: { inputs: { properties?: Record<string, unknown> } } };
  const file = { type: "string", contentMediaType: "application/octet-stream", description: "A file (image, audio)." };
  const members = inputs.properties.inputs.properties;
  const properties: Record<string, unknown> = {
    model: { type: "string", description: "Catalog id; the task's default model when absent." },
    parameters: { type: "string", contentMediaType: "application/json", description: "The task's parameters as JSON text." },
    response_format: { type: "string", enum: ["url", "b64_json"] },
  };
  if (members) for (const name of Object.keys(members)) properties[name] = { description: `inputs.${name}: text, or a file for binary members.` };
  else properties.inputs = { anyOf: [file, { type: "string" }], description: "A file for binary inputs, text otherwise." };
  return { type: "object", properties };
}

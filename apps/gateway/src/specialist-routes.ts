/**
 * The routes of the remote specialists in one place: `/v1/tasks/{task}`,
 * OpenAI's image and audio routes, and `/v1/artifacts/{id}` (when the gateway
 * has an artifact store), plus what they need from Fastify: multipart bodies
 * and the task schemas.
 */
import fastifyMultipart from "@fastify/multipart";
import type { FastifyInstance } from "fastify";
import { TASK_NAMES, taskHttpSchemas, taskSchemaId, type TaskName } from "@switchboard/protocol";
import { ArtifactLinks, type GatewayArtifacts } from "./artifact-links.js";
import { registerArtifactRoutes } from "./artifact-routes.js";
import type { JobRunner } from "./job-runner.js";
import { registerMediaRoutes } from "./media-routes.js";
import type { MultipartLimits } from "./multipart-form.js";
import type { GatewayCatalog } from "./openai-routes.js";
import { registerTaskRoutes, taskMultipartDocs } from "./task-routes.js";

export interface SpecialistRoutesOptions {
  catalog: GatewayCatalog;
  runner: JobRunner;
  artifacts?: GatewayArtifacts;
  multipart: MultipartLimits;
}

/** Tags of these routes in the OpenAPI document. */
export const SPECIALIST_TAGS = [
  { name: "Tasks", description: "Remote specialist models (Hugging Face pipeline tags), as plain REST" },
  { name: "Images", description: "Image generation (text-to-image)" },
  { name: "Audio", description: "Speech (text-to-speech) and transcription (automatic speech recognition)" },
  { name: "Artifacts", description: "Binary outputs at signed, expiring URLs" },
];

export async function registerSpecialistRoutes(app: FastifyInstance, options: SpecialistRoutesOptions): Promise<void> {
  // Limits are given per form (see multipart-form.ts); a file over its limit is read
  // to its end and discarded rather than thrown on mid-upload.
  await app.register(fastifyMultipart, { limits: { fileSize: options.multipart.maxFileBytes }, throwFileSizeLimit: false });
  for (const schema of taskHttpSchemas) app.addSchema(schema);
  const links = new ArtifactLinks(options.artifacts);
  registerTaskRoutes(app, { catalog: options.catalog, runner: options.runner, links, multipart: options.multipart });
  registerMediaRoutes(app, { catalog: options.catalog, runner: options.runner, links, multipart: options.multipart });
  if (options.artifacts) registerArtifactRoutes(app, options.artifacts);
}

const TASK_URLS = new Map<string, TaskName>(TASK_NAMES.map((task) => [`/v1/tasks/${task}`, task]));

/**
 * For the OpenAPI document only (a swagger `transform`): the request bodies
 * that are forms — the multipart alternative of each task route, and the
 * transcription upload. Validation is unaffected.
 */
export function documentForms(schema: Record<string, unknown>, url: string): Record<string, unknown> {
  const task = TASK_URLS.get(url);
  if (task) {
    return {
      ...schema,
      body: {
        content: {
          "application/json": { schema: { $ref: `${taskSchemaId(task, "Request")}#` } },
          "multipart/form-data": { schema: taskMultipartDocs(task) },
        },
      },
    };
  }
  if (url === "/v1/audio/transcriptions") {
    return { ...schema, body: { content: { "multipart/form-data": { schema: { $ref: "CreateTranscriptionRequest#" } } } } };
  }
  return schema;
}

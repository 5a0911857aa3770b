/**
 * `POST /v1/tasks/{task}` on the wire: one request and one response schema
 * per task, each with a `$id` so the OpenAPI document lists them as
 * components. Requests are the task's {@link TaskRequestSchemas} plus
 * `response_format`; responses wrap the task's output in an envelope that
 * says which model answered (a fallback may have).
 *
 * Binary outputs are {@link BinaryOutput}s: `artifact` with a signed,
 * expiring `url` by default, or inline `base64` with
 * `response_format: "b64_json"`.
 */
import { Type, type Static, type TSchema } from "typebox";
import { TASK_NAMES, TaskOutputSchemas, TaskRequestSchemas, type BinaryOutput, type TaskName, type TaskOutput } from "./tasks.js";

/** How binary outputs come back: a signed URL (`url`) or inline base64 (`b64_json`). */
export const BinaryResponseFormatSchema = Type.Enum(["url", "b64_json"], {
  description:
    "How images, audio and video come back: `url` (default when the server has an artifact store) — an artifact with a signed, expiring `url` a browser can open; `b64_json` — inline base64.",
});
export type BinaryResponseFormat = Static<typeof BinaryResponseFormatSchema>;

/** `text-to-image` → `TextToImage`. */
function pascal(task: TaskName): string {
  return task
    .split("-")
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join("");
}

/** The `$id` of a task's request or response schema (`TextToImageTaskRequest`). */
export function taskSchemaId(task: TaskName, kind: "Request" | "Response"): string {
  return `${pascal(task)}Task${kind}`;
}

function httpRequestSchema(task: TaskName): TSchema {
  const base = TaskRequestSchemas[task] as unknown as { properties: Record<string, TSchema>; description?: string };
  return Type.Object(
    { ...base.properties, response_format: Type.Optional(BinaryResponseFormatSchema) },
    {
      $id: taskSchemaId(task, "Request"),
      description: `${base.description ?? task} \`model\` is optional: the catalog's most popular ${task} model answers, and the others are tried in turn when it is unavailable.`,
    },
  );
}

function httpResponseSchema(task: TaskName): TSchema {
  return Type.Object(
    {
      id: Type.String({ description: "Id of this task run (`task-...`)." }),
      object: Type.Literal("task.result"),
      created: Type.Integer({ description: "Unix time (seconds) of the answer." }),
      task: Type.Literal(task),
      model: Type.String({ description: "Catalog id of the model that answered." }),
      output: TaskOutputSchemas[task],
    },
    { $id: taskSchemaId(task, "Response"), description: `The output of ${task}, in the @huggingface/tasks output shape (binary data as artifacts).` },
  );
}

/** Request body schema of `POST /v1/tasks/{task}`, by task. */
export const TaskHttpRequestSchemas = Object.fromEntries(TASK_NAMES.map((task) => [task, httpRequestSchema(task)])) as Record<TaskName, TSchema>;
/** Response body schema of `POST /v1/tasks/{task}`, by task. */
export const TaskHttpResponseSchemas = Object.fromEntries(TASK_NAMES.map((task) => [task, httpResponseSchema(task)])) as Record<TaskName, TSchema>;

/** Every task schema with a `$id`, to register once with Fastify. */
export const taskHttpSchemas: TSchema[] = TASK_NAMES.flatMap((task) => [TaskHttpRequestSchemas[task], TaskHttpResponseSchemas[task]]);

/** The body of a `POST /v1/tasks/{task}` answer. */
export interface TaskHttpResponse<T extends TaskName = TaskName> {
  id: string;
  object: "task.result";
  created: number;
  task: T;
  model: string;
  output: TaskOutput<T>;
}

// ---------------------------------------------------------------------------
// Binary outputs inside task outputs

/** Whether a value is a {@link BinaryOutput} (inline or artifact). */
export function isBinaryOutput(value: unknown): value is BinaryOutput {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const candidate = value as Record<string, unknown>;
  return (
    (candidate.type === "base64" || candidate.type === "artifact") && typeof candidate.mimeType === "string" && typeof candidate.bytes === "number"
  );
}

/**
 * A copy of `value` (a task output) with every {@link BinaryOutput} replaced
 * by `transform`'s answer. Outputs are checked against their task schema
 * before anyone calls this, so a binary output is never confused with text.
 */
export async function mapBinaryOutputs<T>(value: T, transform: (binary: BinaryOutput) => Promise<BinaryOutput>): Promise<T> {
  if (isBinaryOutput(value)) return (await transform(value)) as T;
  if (Array.isArray(value)) return (await Promise.all(value.map((item) => mapBinaryOutputs(item, transform)))) as T;
  if (typeof value === "object" && value !== null) {
    const entries = await Promise.all(Object.entries(value).map(async ([key, item]) => [key, await mapBinaryOutputs(item, transform)] as const));
    return Object.fromEntries(entries) as T;
  }
  return value;
}

/** Every binary output inside `value`, in document order. */
export function binaryOutputsOf(value: unknown): BinaryOutput[] {
  if (isBinaryOutput(value)) return [value];
  if (Array.isArray(value)) return value.flatMap(binaryOutputsOf);
  if (typeof value === "object" && value !== null) return Object.values(value).flatMap(binaryOutputsOf);
  return [];
}

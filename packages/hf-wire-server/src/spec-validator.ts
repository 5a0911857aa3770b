/**
 * Validates requests and responses against the input/output JSON schemas that
 * `@huggingface/tasks` ships (`src/tasks/<task>/spec/*.json`), compiled with
 * Ajv. The schemas are read from the installed package, never copied, so the
 * server checks the engine against Hugging Face's definition rather than
 * against our own reading of it.
 *
 * Three wire shapes have no spec in `@huggingface/tasks`; they get small local
 * schemas here, marked as such in every error message: `completions` (the
 * OpenAI-style `/v1/completions` route the client uses for text generation on
 * hf-inference), `tabular-classification` and `audio-to-audio`.
 */
import { readFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import AjvModule, { type ValidateFunction } from "ajv";

// ajv is CommonJS; under NodeNext its default export is the module object.
const Ajv = AjvModule as unknown as typeof AjvModule.default;

/** Spec directory names in `@huggingface/tasks`, plus the local ones. */
export type SpecName = string;

/**
 * Known mistakes in the published specs, patched before compiling, each with
 * the reason. Keep this list short and specific.
 */
const ERRATA: Record<string, (schema: Record<string, unknown>) => void> = {
  // The output spec requires `generatedText` while declaring `generated_text`;
  // every implementation (and the client's own check) uses `generated_text`.
  "image-to-text/output": (schema) => {
    schema.required = ["generated_text"];
  },
};

const LOCAL_SCHEMAS: Record<string, { input: object; output: object }> = {
  completions: {
    input: {
      type: "object",
      required: ["prompt"],
      properties: {
        model: { type: "string" },
        prompt: { type: "string" },
        max_tokens: { type: "integer", minimum: 1 },
        temperature: { type: "number", minimum: 0 },
        top_p: { type: "number", exclusiveMinimum: 0, maximum: 1 },
        stop: { type: "array", items: { type: "string" } },
        seed: { type: "integer" },
        stream: { type: "boolean" },
      },
    },
    output: {
      type: "object",
      required: ["id", "object", "created", "model", "choices"],
      properties: {
        choices: {
          type: "array",
          minItems: 1,
          items: { type: "object", required: ["index", "text", "finish_reason"], properties: { text: { type: "string" }, index: { type: "integer" } } },
        },
      },
    },
  },
  "tabular-classification": {
    input: {
      type: "object",
      required: ["inputs"],
      properties: {
        inputs: {
          type: "object",
          required: ["data"],
          properties: { data: { type: "object", additionalProperties: { type: "array", items: { type: ["string", "number"] } } } },
        },
      },
    },
    output: { type: "array", items: { type: "number" } },
  },
  "audio-to-audio": {
    input: { type: "object", required: ["inputs"], properties: { inputs: { type: "string" } } },
    output: {
      type: "array",
      items: {
        type: "object",
        required: ["label", "blob", "content-type"],
        properties: { label: { type: "string" }, blob: { type: "string" }, "content-type": { type: "string" } },
      },
    },
  },
};

function specsDirectory(): string {
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve("@huggingface/tasks/package.json");
  const directory = join(dirname(packageJson), "src", "tasks");
  if (!existsSync(join(directory, "common-definitions.json"))) {
    throw new Error(`@huggingface/tasks does not ship its specs where expected (${directory})`);
  }
  return directory;
}

/**
 * Prepares a published schema for Ajv: drops `$schema` (the specs declare
 * draft-06 but use `$defs`; Ajv reads them fine without the meta-schema
 * check), and turns OpenAPI's `nullable: true` next to `allOf`/`$ref` (where
 * Ajv accepts it only beside a `type`) into `anyOf [schema, null]`.
 */
function prepareSchema(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(prepareSchema);
  if (value && typeof value === "object") {
    const result: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) if (key !== "$schema") result[key] = prepareSchema(child);
    if (result.nullable === true && result.type === undefined) {
      delete result.nullable;
      return { anyOf: [result, { type: "null" }] };
    }
    return result;
  }
  return value;
}

export class SpecValidator {
  private readonly ajv: InstanceType<typeof Ajv>;
  private readonly directory: string;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor() {
    this.directory = specsDirectory();
    // The specs are OpenAPI-flavoured JSON Schema (`nullable`, `example`,
    // `comment`, formats such as `int32`): not strict, unknown keywords ignored.
    this.ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
    this.ajv.addFormat("float", { type: "number", validate: (value: number) => Number.isFinite(value) });
    this.ajv.addFormat("int32", { type: "number", validate: (value: number) => Number.isInteger(value) && Math.abs(value) <= 2 ** 31 });
    this.ajv.addFormat("int64", { type: "number", validate: (value: number) => Number.isSafeInteger(value) });
    this.ajv.addSchema(prepareSchema(JSON.parse(readFileSync(join(this.directory, "common-definitions.json"), "utf8"))) as object);
  }

  /** Whether `@huggingface/tasks` ships a spec for this name (the local ones excluded). */
  hasPublishedSpec(name: SpecName): boolean {
    return existsSync(join(this.directory, name, "spec", "input.json"));
  }

  private validator(name: SpecName, kind: "input" | "output" | "stream_output"): ValidateFunction {
    const key = `${name}/${kind}`;
    let validate = this.compiled.get(key);
    if (validate) return validate;
    let schema: Record<string, unknown>;
    const local = LOCAL_SCHEMAS[name];
    if (local && kind !== "stream_output") {
      schema = structuredClone(local[kind]) as Record<string, unknown>;
    } else {
      const file = join(this.directory, name, "spec", `${kind}.json`);
      if (!existsSync(file)) throw new Error(`no ${kind} spec for task '${name}'`);
      schema = prepareSchema(JSON.parse(readFileSync(file, "utf8"))) as Record<string, unknown>;
      // Each spec carries its own `$id`; compile it standalone so the same id
      // can never be registered twice.
      delete schema.$id;
    }
    ERRATA[key]?.(schema);
    validate = this.ajv.compile(schema);
    this.compiled.set(key, validate);
    return validate;
  }

  /** Problems with `value` as a `kind` of `name`, as readable strings; empty when valid. */
  check(name: SpecName, kind: "input" | "output" | "stream_output", value: unknown): string[] {
    const validate = this.validator(name, kind);
    if (validate(value)) return [];
    const origin = LOCAL_SCHEMAS[name] ? "local schema" : "@huggingface/tasks spec";
    return (validate.errors ?? []).map((error) => `${name} ${kind} (${origin}): ${error.instancePath || "/"} ${error.message ?? "is invalid"}`);
  }
}

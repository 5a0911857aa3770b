/**
 * The official OpenAI OpenAPI document (optional data at
 * `../shared/openai-openapi/openapi.json`, relative to the repository root),
 * loaded as JSON Schema validators for response objects.
 *
 * The document mixes OpenAPI 3.1 `anyOf [..., {type: null}]` with 3.0-style
 * `nullable: true`; the latter is rewritten to "or null" before Ajv sees it.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
/** Where the document is looked for: `<repo>/../shared/openai-openapi/openapi.json`. */
export const OPENAI_SPEC_PATH = resolve(repositoryRoot, "../shared/openai-openapi/openapi.json");

export interface OpenAISpec {
  /** A validator for `#/components/schemas/<name>`. */
  validator(name: string): ValidateFunction;
}

/** The validators, or undefined when the document is not there. */
export function loadOpenAISpec(path = OPENAI_SPEC_PATH): OpenAISpec | undefined {
  if (!existsSync(path)) return undefined;
  const document = nullableToJsonSchema(JSON.parse(readFileSync(path, "utf8")));
  const ajv = new Ajv2020({ strict: false, validateFormats: false, validateSchema: false, allErrors: true });
  ajv.addSchema(document as object, "openai");
  return {
    validator(name) {
      const validate = ajv.getSchema(`openai#/components/schemas/${name}`);
      if (!validate) throw new Error(`The OpenAI document has no schema ${name}`);
      return validate;
    },
  };
}

/** Rewrites OpenAPI 3.0 `nullable: true` into JSON Schema "or null", everywhere in `node`. */
export function nullableToJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(nullableToJsonSchema);
  if (node === null || typeof node !== "object") return node;
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) result[key] = nullableToJsonSchema(value);
  if (result.nullable !== true) return result;
  delete result.nullable;
  if (typeof result.type === "string" && result.$ref === undefined) {
    result.type = [result.type, "null"];
    if (Array.isArray(result.enum)) result.enum = [...result.enum, null];
    return result;
  }
  const { description, title, deprecated, ...rest } = result;
  const wrapped: Record<string, unknown> = { anyOf: [rest, { type: "null" }] };
  if (description !== undefined) wrapped.description = description;
  if (title !== undefined) wrapped.title = title;
  if (deprecated !== undefined) wrapped.deprecated = deprecated;
  return wrapped;
}

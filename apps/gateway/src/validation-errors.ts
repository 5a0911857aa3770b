/**
 * Turns Ajv's schema errors into one OpenAI-style 400: `param` names the
 * field as OpenAI does (`messages[0].role`, `temperature`) and the message
 * says what to send instead.
 *
 * Ajv stops at the first failing keyword (`allErrors: false`), but a failing
 * union (`anyOf`) still reports every branch's error plus its own. The most
 * useful one is picked: the deepest field wins (a branch whose type matched
 * and failed further in); at equal depth, an error from a branch of the right
 * type (`maximum`, `enum`, ...) beats the type mismatches of the other
 * branches, and the union's own error (listing the accepted types) is the
 * fallback.
 */
import { invalidRequest, type GatewayError } from "@switchboard/protocol";

/** The parts of an Ajv `ErrorObject` used here (with Ajv's `verbose: true`). */
export interface SchemaError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  schema?: unknown;
  parentSchema?: Record<string, unknown>;
  data?: unknown;
}

type JsonSchema = Record<string, unknown>;

const UNION_KEYWORDS = new Set(["anyOf", "oneOf"]);

/** The 400 for a request body that failed schema validation. */
export function schemaValidationError(errors: readonly SchemaError[]): GatewayError {
  const error = pickError(errors);
  if (error === undefined) return invalidRequest("The request body is invalid.");
  const path = effectivePath(error);
  const param = toParam(path);
  return invalidRequest(describe(error, param), param === "" ? null : param);
}

function pickError(errors: readonly SchemaError[]): SchemaError | undefined {
  let best: SchemaError | undefined;
  let bestDepth = -1;
  let bestRank = -1;
  for (const error of errors) {
    const depth = effectivePath(error).length;
    const rank = UNION_KEYWORDS.has(error.keyword) ? 1 : error.keyword === "type" ? 0 : 2;
    // Later errors win ties of equal rank: a union's own error comes after its branches'.
    if (depth > bestDepth || (depth === bestDepth && rank >= bestRank)) {
      best = error;
      bestDepth = depth;
      bestRank = rank;
    }
  }
  return best;
}

/** JSON pointer segments of the field at fault (a missing property included). */
function effectivePath(error: SchemaError): string[] {
  const segments = error.instancePath === "" ? [] : error.instancePath.slice(1).split("/").map(unescapePointer);
  if (error.keyword === "required" && typeof error.params.missingProperty === "string") segments.push(error.params.missingProperty);
  if (error.keyword === "discriminator" && typeof error.params.tag === "string") segments.push(error.params.tag);
  return segments;
}

function unescapePointer(segment: string): string {
  return segment.replaceAll("~1", "/").replaceAll("~0", "~");
}

/** `["messages", "0", "role"]` → `messages[0].role`. */
function toParam(segments: string[]): string {
  let param = "";
  for (const segment of segments) {
    if (/^\d+$/.test(segment)) param += `[${segment}]`;
    else param += param === "" ? segment : `.${segment}`;
  }
  return param;
}

function describe(error: SchemaError, param: string): string {
  const subject = param === "" ? "the request body" : `'${param}'`;
  const params = error.params;
  switch (error.keyword) {
    case "required":
      return `Missing required parameter: '${param}'.`;
    case "type":
    case "anyOf":
    case "oneOf": {
      if (param === "") return "The request body must be a JSON object.";
      const expected = expectedOf(error);
      return `Invalid type for ${subject}: expected ${expected}, but got ${kindOf(error.data)} instead.`;
    }
    case "discriminator": {
      if (params.tagValue === undefined) return `Missing required parameter: '${param}'.`;
      const allowed = discriminatorValues(error.parentSchema, String(params.tag));
      if (typeof params.tagValue !== "string") return `Invalid type for ${subject}: expected a string, but got ${kindOf(params.tagValue)} instead.`;
      return `Invalid value for ${subject}: '${params.tagValue}'. Supported values are: ${listOf(allowed)}.`;
    }
    case "enum":
    case "const": {
      const allowed = error.keyword === "enum" ? (params.allowedValues as unknown[]) : [params.allowedValue];
      return `Invalid value for ${subject}: ${JSON.stringify(error.data)}. Supported values are: ${listOf(allowed)}.`;
    }
    case "maximum":
    case "exclusiveMaximum":
      return `Invalid ${subject}: number above maximum value. Expected a value ${params.comparison} ${params.limit}, but got ${String(error.data)} instead.`;
    case "minimum":
    case "exclusiveMinimum":
      return `Invalid ${subject}: number below minimum value. Expected a value ${params.comparison} ${params.limit}, but got ${String(error.data)} instead.`;
    case "minItems":
      return Array.isArray(error.data) && error.data.length === 0
        ? `Invalid ${subject}: empty array. Expected an array with minimum length ${params.limit}, but got an empty array instead.`
        : `Invalid ${subject}: array too short. Expected an array with minimum length ${params.limit}.`;
    case "maxItems":
      return `Invalid ${subject}: array too long. Expected an array with maximum length ${params.limit}, but got an array with length ${Array.isArray(error.data) ? error.data.length : "more"} instead.`;
    case "minLength":
      return `Invalid ${subject}: string too short. Expected a string with minimum length ${params.limit}.`;
    case "maxLength":
      return `Invalid ${subject}: string too long. Expected a string with maximum length ${params.limit}.`;
    case "pattern":
      return `Invalid ${subject}: the value does not match the pattern ${params.pattern}.`;
    default:
      return `Invalid ${subject}: ${error.message ?? "the value is not allowed"}.`;
  }
}

/** What a failed `type` check or union expected, in words: "a string, an array of strings or null". */
function expectedOf(error: SchemaError): string {
  if (error.keyword === "type") return describeSchema(error.parentSchema ?? { type: error.schema });
  const branches = Array.isArray(error.schema) ? (error.schema as JsonSchema[]) : [];
  const words = [...new Set(branches.map(describeSchema))];
  return words.length === 0 ? "another type" : joinWords(words, "or");
}

function describeSchema(schema: JsonSchema): string {
  if (Array.isArray(schema.anyOf)) return joinWords([...new Set((schema.anyOf as JsonSchema[]).map(describeSchema))], "or");
  if (Array.isArray(schema.enum)) return `one of ${listOf(schema.enum as unknown[])}`;
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  switch (schema.type) {
    case "string":
      return "a string";
    case "number":
      return "a number";
    case "integer":
      return "an integer";
    case "boolean":
      return "a boolean";
    case "null":
      return "null";
    case "object":
      return "an object";
    case "array": {
      const items = schema.items as JsonSchema | undefined;
      const itemWord = items ? describeSchema(items) : "";
      const plural = { "a string": "strings", "an integer": "integers", "a number": "numbers", "an object": "objects" }[itemWord];
      return plural ? `an array of ${plural}` : "an array";
    }
    default:
      return "a valid value";
  }
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (Number.isInteger(value)) return "an integer";
  switch (typeof value) {
    case "string":
      return "a string";
    case "number":
      return "a number";
    case "boolean":
      return "a boolean";
    case "object":
      return "an object";
    default:
      return "nothing";
  }
}

function discriminatorValues(parentSchema: JsonSchema | undefined, tag: string): unknown[] {
  const variants = (parentSchema?.oneOf ?? []) as JsonSchema[];
  return variants.flatMap((variant) => {
    const property = (variant.properties as Record<string, JsonSchema> | undefined)?.[tag];
    if (!property) return [];
    if (Array.isArray(property.enum)) return property.enum as unknown[];
    return property.const === undefined ? [] : [property.const];
  });
}

function listOf(values: unknown[]): string {
  return joinWords(
    values.map((value) => (typeof value === "string" ? `'${value}'` : JSON.stringify(value))),
    "and",
  );
}

function joinWords(words: string[], conjunction: "and" | "or"): string {
  if (words.length <= 1) return words[0] ?? "";
  return `${words.slice(0, -1).join(", ")} ${conjunction} ${words.at(-1)}`;
}

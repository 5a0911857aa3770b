/**
 * JSON Schema → GBNF (llama.cpp grammar) for `response_format: json_schema`
 * and forced tool calls.
 *
 * Why our own converter rather than node-llama-cpp's `createGrammarForJsonSchema`:
 * that one silently ignores keywords it does not know (`anyOf` becomes `null`,
 * `minimum` is dropped) and its integers admit exponent forms, so its output
 * can fail the very schema it was built from. Here every grammar accepts only
 * a subset of what the schema accepts — output that completes always parses
 * with `JSON.parse` and validates — and anything we cannot enforce is refused
 * with {@link UnsupportedSchemaError} instead of being generated unconstrained.
 *
 * Output is compact JSON (no insignificant whitespace): fewer tokens, and no
 * whitespace loops for a weak model to fall into.
 */

/** A schema (or part of one) that the grammar cannot enforce; the message names the place. */
export class UnsupportedSchemaError extends Error {
  readonly path: string;
  constructor(message: string, path: string) {
    super(`${message} (at ${path === "" || path.startsWith("/") ? `#${path}` : path})`);
    this.name = "UnsupportedSchemaError";
    this.path = path;
  }
}

/**
 * Caps for parts of a schema that set no bound of their own. An unbounded
 * string or array can otherwise run past `max_tokens` and leave the JSON
 * truncated; these keep a complete answer within reach (a smaller valid
 * subset of what the schema allows).
 */
export interface JsonGrammarLimits {
  /** Longest string where the schema gives no (or a larger) `maxLength`. */
  maxStringLength: number;
  /** Most array items (and map entries) where the schema gives no (or a larger) bound. */
  maxArrayItems: number;
}

/**
 * Limits that let a value of `schema` close within `maxTokens`. Counting one
 * token per character (byte-level vocabularies; BPE models get headroom),
 * the budget is shared between the schema's unbounded strings; arrays get
 * one item per 64 tokens. Free-form parts (`{}`, maps, `json_object`) count
 * as one string: a model that writes one long value can, one that fills
 * every slot may still reach `max_tokens` (an honest `length`).
 */
export function limitsForSchema(schema: unknown, maxTokens: number): JsonGrammarLimits {
  const maxArrayItems = clamp(Math.floor(maxTokens / 64), 1, 32);
  const slots = Math.max(1, stringSlots(schema, schema, maxArrayItems, new Set()));
  return { maxStringLength: clamp(Math.floor((maxTokens * 0.8) / slots), 8, 1000), maxArrayItems };
}

/** How many budget-capped strings a value of `node` can hold (see {@link limitsForSchema}). */
function stringSlots(node: unknown, root: unknown, items: number, seen: Set<unknown>): number {
  if (!isObject(node)) return 1;
  if (typeof node.$ref === "string") {
    let target: unknown;
    try {
      target = resolvePointer(root, node.$ref, "");
    } catch {
      return 1;
    }
    if (seen.has(target)) return 1;
    return stringSlots(target, root, items, new Set([...seen, target]));
  }
  if (Array.isArray(node.allOf)) {
    try {
      return stringSlots(mergeAllOf(node, root, ""), root, items, seen);
    } catch {
      return 1;
    }
  }
  const alternatives = node.anyOf ?? node.oneOf;
  if (Array.isArray(alternatives)) return Math.max(0, ...alternatives.map((item) => stringSlots(item, root, items, seen)));
  if (node.enum !== undefined || node.const !== undefined) return 0;
  const types = node.type === undefined ? undefined : Array.isArray(node.type) ? node.type : [node.type];
  const has = (type: string) => types === undefined || types.includes(type);
  let slots = 0;
  if (has("string") && node.format === undefined && !(typeof node.maxLength === "number" && node.maxLength <= 16)) slots = 1;
  if (has("array") && (node.items !== undefined || node.prefixItems !== undefined)) {
    const prefix = Array.isArray(node.prefixItems) ? node.prefixItems : Array.isArray(node.items) ? node.items : [];
    const rest = Array.isArray(node.items) ? node.additionalItems : node.items;
    const count = Math.min(typeof node.maxItems === "number" ? node.maxItems : Infinity, items);
    const restSlots = rest === undefined || rest === false || rest === true ? 0 : stringSlots(rest, root, items, seen) * count;
    slots = Math.max(slots, prefix.reduce((sum: number, item) => sum + stringSlots(item, root, items, seen), 0) + restSlots);
  }
  if (has("object") && isObject(node.properties)) {
    const properties = Object.values(node.properties);
    slots = Math.max(slots, properties.reduce((sum: number, item) => sum + stringSlots(item, root, items, seen), 0));
  }
  return Math.max(slots, types === undefined || has("object") || has("array") ? 1 : 0);
}

type Schema = Record<string, unknown>;
type JsonType = "object" | "array" | "string" | "number" | "integer" | "boolean" | "null";

const allTypes: readonly JsonType[] = ["object", "array", "string", "number", "integer", "boolean", "null"];

/** Keywords that constrain nothing we generate; ignored wherever they appear. */
const annotationKeywords = new Set([
  "$schema",
  "$id",
  "$anchor",
  "$comment",
  "$vocabulary",
  "$defs",
  "definitions",
  "title",
  "description",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
  "contentMediaType",
  "contentEncoding",
  "discriminator",
  "strict",
  "propertyOrdering",
]);

/** Keywords the converter understands (the rest are refused). */
const handledKeywords = new Set([
  "type",
  "enum",
  "const",
  "nullable",
  "anyOf",
  "oneOf",
  "allOf",
  "$ref",
  "properties",
  "required",
  "additionalProperties",
  "minProperties",
  "maxProperties",
  "unevaluatedProperties",
  "items",
  "prefixItems",
  "additionalItems",
  "unevaluatedItems",
  "minItems",
  "maxItems",
  "uniqueItems",
  "minLength",
  "maxLength",
  "format",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
]);

// Largest integer JSON.parse reads exactly; bounds beyond it are clamped (zod `.int()` sends ±(2^53 − 1)).
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);
// Unbounded numbers get at most 15 integer digits: always exact, never an exponent.
const defaultMagnitude = 10n ** 15n - 1n;
// Levels of containers allowed where a schema says "any value" (inside them, scalars only).
const anyValueDepth = 1;
// Keys the grammar writes for maps and free-form objects.
const maxKeyLength = 16;

const primitiveRules: Record<string, string> = {
  char: String.raw`[^"\\\x7F\x00-\x1F] | "\\" ["\\/bfnrt]`,
  boolean: `"true" | "false"`,
  null: `"null"`,
  integer: `"0" | "-"? [1-9] [0-9]{0,14}`,
  fraction: `"." [0-9]{1,6}`,
  number: `"-"? ("0" | [1-9] [0-9]{0,14}) fraction?`,
};

/**
 * Converts a JSON Schema to a GBNF grammar whose root matches one JSON value.
 * Throws {@link UnsupportedSchemaError} for schemas it cannot enforce.
 */
export function jsonSchemaToGbnf(schema: unknown, limits: JsonGrammarLimits): string {
  const builder = new GrammarBuilder(schema, limits);
  const root = builder.valueFor(schema, "");
  return builder.render(root);
}

/**
 * A grammar for exactly one tool call, `{"name":"<one of the tools>","arguments":<its parameters>}`.
 * Tools without parameters take `{}`.
 */
export function toolCallGbnf(
  tools: readonly { name: string; parameters?: Record<string, unknown> }[],
  limits: JsonGrammarLimits,
): string {
  if (tools.length === 0) throw new UnsupportedSchemaError("no tools to call", "tools");
  const builder = new GrammarBuilder(undefined, limits);
  const alternatives = tools.map((tool, index) => {
    const path = `tools[${index}].function.parameters`;
    builder.setRoot(tool.parameters);
    const argumentsRule = tool.parameters === undefined ? `"{}"` : builder.valueFor(tool.parameters, path);
    const head = literal(`{"name":${JSON.stringify(tool.name)},"arguments":`);
    return builder.rule(`${head} ${argumentsRule} "}"`);
  });
  return builder.render(builder.rule(alternatives.join(" | ")));
}

class GrammarBuilder {
  #root: unknown;
  readonly #limits: JsonGrammarLimits;
  readonly #rules = new Map<string, string>(); // name → body
  readonly #names = new Map<string, string>(); // body → name
  #refCount = 0;
  readonly #primitivesUsed = new Set<string>();
  #refRoots = new Map<unknown, string>();

  constructor(root: unknown, limits: JsonGrammarLimits) {
    this.#root = root;
    this.#limits = {
      maxStringLength: Math.max(0, Math.floor(limits.maxStringLength)),
      maxArrayItems: Math.max(0, Math.floor(limits.maxArrayItems)),
    };
  }

  /** Tool grammars resolve `$ref`s against each tool's own parameters. */
  setRoot(root: unknown): void {
    this.#root = root;
    this.#refRoots = new Map();
  }

  render(rootRule: string): string {
    const lines = [`root ::= ${rootRule}`];
    for (const name of this.#primitivesUsed) lines.push(`${name} ::= ${primitiveRules[name]}`);
    for (const [name, body] of this.#rules) lines.push(`${name} ::= ${body}`);
    return lines.join("\n") + "\n";
  }

  /** A named rule for a body, shared between identical bodies. */
  rule(body: string): string {
    const existing = this.#names.get(body);
    if (existing) return existing;
    const name = `r${this.#rules.size + 1}`;
    this.#rules.set(name, body);
    this.#names.set(body, name);
    return name;
  }

  /** `item` repeated between min and max times, each repetition in its own rule, split below llama.cpp's limit. */
  repeat(item: string, min: number, max: number): string {
    if (max <= 0) return "";
    const unit = /^[A-Za-z0-9-]+$/.test(item) ? item : this.rule(item);
    const parts: string[] = [];
    let required = min;
    while (required > maxRepetition) {
      parts.push(this.rule(`${unit}{${maxRepetition}}`));
      required -= maxRepetition;
    }
    if (required > 0) parts.push(this.rule(`${unit}{${required}}`));
    const optional = this.optionalRepeat(unit, max - min);
    if (optional) parts.push(optional);
    return parts.join(" ");
  }

  /** Zero to `count` units; past the limit, a full block and the rest, or fewer than a block. */
  optionalRepeat(unit: string, count: number): string {
    if (count <= 0) return "";
    if (count <= maxRepetition) return this.rule(`${unit}{0,${count}}`);
    const block = this.rule(`${unit}{${maxRepetition}}`);
    return this.rule(`${block} ${this.optionalRepeat(unit, count - maxRepetition)} | ${unit}{0,${maxRepetition - 1}}`);
  }

  primitive(name: keyof typeof primitiveRules): string {
    this.#primitivesUsed.add(name);
    if (name === "number") this.#primitivesUsed.add("fraction");
    return name;
  }

  /** The rule (or inline expression) for any value matching `schema`. */
  valueFor(schema: unknown, path: string): string {
    if (schema === true || (isObject(schema) && Object.keys(schema).every((key) => annotationKeywords.has(key) || key.startsWith("x-"))))
      return this.anyValue();
    if (schema === false) throw new UnsupportedSchemaError("a `false` schema matches nothing", path);
    if (!isObject(schema)) throw new UnsupportedSchemaError("a schema must be an object or a boolean", path);

    for (const key of Object.keys(schema)) {
      if (annotationKeywords.has(key) || handledKeywords.has(key) || key.startsWith("x-")) continue;
      throw new UnsupportedSchemaError(`the keyword '${key}' is not supported in structured output`, path);
    }

    if (schema.$ref !== undefined) return this.refFor(schema, path);
    if (schema.allOf !== undefined) return this.valueFor(mergeAllOf(schema, this.#root, path), path);

    const nullable = schema.nullable === true;
    const alternatives = schema.anyOf ?? schema.oneOf;
    if (alternatives !== undefined) {
      const keyword = schema.anyOf !== undefined ? "anyOf" : "oneOf";
      if (!Array.isArray(alternatives) || alternatives.length === 0)
        throw new UnsupportedSchemaError(`'${keyword}' must be a non-empty array`, path);
      const siblings = Object.keys(schema).filter((key) => !annotationKeywords.has(key) && key !== keyword && key !== "nullable" && !key.startsWith("x-"));
      if (siblings.length > 0)
        throw new UnsupportedSchemaError(`'${keyword}' next to '${siblings.join("', '")}' is not supported; move them into each alternative`, path);
      const parts = alternatives.map((alternative, index) => this.valueFor(alternative, `${path}/${keyword}/${index}`));
      if (nullable) parts.push(this.primitive("null"));
      return this.rule(unique(parts).join(" | "));
    }

    if (schema.const !== undefined) return this.literalValues([schema.const], schema, path);
    if (schema.enum !== undefined) {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0)
        throw new UnsupportedSchemaError("'enum' must be a non-empty array", path);
      return this.literalValues(schema.enum, schema, path);
    }

    const types = this.typesOf(schema, path);
    const parts = types.map((type) => this.typedValue(type, schema, path));
    if (nullable && !types.includes("null")) parts.push(this.primitive("null"));
    return parts.length === 1 ? parts[0]! : this.rule(unique(parts).join(" | "));
  }

  typesOf(schema: Schema, path: string): JsonType[] {
    const type = schema.type;
    if (type === undefined) {
      // No type: infer it from the keywords present, or allow anything.
      if (schema.properties !== undefined || schema.required !== undefined || schema.additionalProperties !== undefined) return ["object"];
      if (schema.items !== undefined || schema.prefixItems !== undefined) return ["array"];
      if (schema.minLength !== undefined || schema.maxLength !== undefined || schema.format !== undefined) return ["string"];
      if (schema.minimum !== undefined || schema.maximum !== undefined) return ["number"];
      return [...allTypes].filter((candidate) => candidate !== "integer");
    }
    const list = Array.isArray(type) ? type : [type];
    if (list.length === 0) throw new UnsupportedSchemaError("'type' must not be empty", path);
    for (const entry of list)
      if (!allTypes.includes(entry as JsonType)) throw new UnsupportedSchemaError(`unknown type '${String(entry)}'`, path);
    // "number" already covers "integer".
    const types = unique(list as JsonType[]);
    return types.includes("number") ? types.filter((entry) => entry !== "integer") : types;
  }

  typedValue(type: JsonType, schema: Schema, path: string): string {
    switch (type) {
      case "null":
        return this.primitive("null");
      case "boolean":
        return this.primitive("boolean");
      case "string":
        return this.stringValue(schema, path);
      case "integer":
        return this.integerValue(schema, path);
      case "number":
        return this.numberValue(schema, path);
      case "array":
        return this.arrayValue(schema, path);
      case "object":
        return this.objectValue(schema, path);
    }
  }

  literalValues(values: unknown[], schema: Schema, path: string): string {
    const types = schema.type === undefined ? undefined : this.typesOf(schema, path);
    const kept = values.filter((value) => types === undefined || types.some((type) => matchesType(value, type)));
    if (kept.length === 0) throw new UnsupportedSchemaError("no 'enum'/'const' value matches 'type'", path);
    const parts = kept.map((value) => literal(JSON.stringify(value)));
    if (schema.nullable === true && !kept.includes(null)) parts.push(this.primitive("null"));
    return this.rule(unique(parts).join(" | "));
  }

  stringValue(schema: Schema, path: string): string {
    if (schema.format !== undefined) {
      if (schema.minLength !== undefined || schema.maxLength !== undefined)
        throw new UnsupportedSchemaError("'format' together with a length bound is not supported", path);
      return this.formatValue(String(schema.format), path);
    }
    const minLength = nonNegativeInteger(schema.minLength, "minLength", path) ?? 0;
    const maxLength = nonNegativeInteger(schema.maxLength, "maxLength", path);
    if (maxLength !== undefined && maxLength < minLength) throw new UnsupportedSchemaError("'maxLength' is below 'minLength'", path);
    const cap = Math.max(minLength, Math.min(maxLength ?? Infinity, this.#limits.maxStringLength));
    const char = this.primitive("char");
    return this.rule(`"\\"" ${this.repeat(char, minLength, cap)} "\\""`);
  }

  formatValue(format: string, path: string): string {
    const two = (first: string, second: string) => `${first} ${second}`;
    // Each form is a subset of what ajv-formats accepts in its full mode (days up to 28, always a "Z" zone).
    const date = `[0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | "1" [0-9] | "2" [0-8])`;
    const time = `([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] "Z"`;
    const hex = "[0-9a-f]";
    const byte = `("25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9]? [0-9])`;
    const label = `[a-z0-9]{1,20}`;
    const forms: Record<string, string> = {
      date,
      time,
      "date-time": two(date, `"T" ${time}`),
      uuid: `${hex}{8} "-" ${hex}{4} "-" ${hex}{4} "-" ${hex}{4} "-" ${hex}{12}`,
      email: `${label} ("." ${label})? "@" ${label} "." [a-z]{2,6}`,
      ipv4: `${byte} "." ${byte} "." ${byte} "." ${byte}`,
      uri: `"https://" ${label} "." [a-z]{2,6} ("/" [a-zA-Z0-9_-]{1,20}){0,3}`,
    };
    const body = forms[format];
    if (!body) throw new UnsupportedSchemaError(`string format '${format}' is not supported`, path);
    return this.rule(`"\\"" ${body} "\\""`);
  }

  integerValue(schema: Schema, path: string): string {
    const multipleOf = schema.multipleOf;
    if (multipleOf !== undefined && multipleOf !== 1) throw new UnsupportedSchemaError("'multipleOf' is not supported", path);
    const { low, high } = integerBounds(schema, path, true);
    if (low === -defaultMagnitude && high === defaultMagnitude) return this.primitive("integer");
    return this.rule(this.signedRange(low, high, false));
  }

  numberValue(schema: Schema, path: string): string {
    if (schema.multipleOf !== undefined) throw new UnsupportedSchemaError("'multipleOf' is not supported", path);
    const { low, high } = integerBounds(schema, path, false);
    if (low === -defaultMagnitude && high === defaultMagnitude) return this.primitive("number");
    return this.rule(this.signedRange(low, high, true));
  }

  /**
   * Numbers in [low, high] (integers). With fractions, an integer part may take
   * a fraction only where adding it cannot cross a bound.
   */
  signedRange(low: bigint, high: bigint, fractional: boolean): string {
    const parts: string[] = [];
    const fraction = fractional ? this.primitive("fraction") : "";
    if (high >= 0n) {
      const start = low > 0n ? low : 0n;
      parts.push(this.rule(unsignedRange(start, high)));
      if (fractional && high - 1n >= start) parts.push(`${this.rule(unsignedRange(start, high - 1n))} ${fraction}`);
    }
    if (low < 0n) {
      const top = -low;
      const bottom = high < 0n ? -high : 1n;
      parts.push(`"-" ${this.rule(unsignedRange(bottom, top))}`);
      const fractionBottom = high < 0n ? -high : 0n;
      if (fractional && top - 1n >= fractionBottom) parts.push(`"-" ${this.rule(unsignedRange(fractionBottom, top - 1n))} ${fraction}`);
    }
    return parts.join(" | ");
  }

  arrayValue(schema: Schema, path: string): string {
    if (schema.unevaluatedItems !== undefined && schema.unevaluatedItems !== false && schema.unevaluatedItems !== true)
      throw new UnsupportedSchemaError("'unevaluatedItems' with a schema is not supported", path);
    const minItems = nonNegativeInteger(schema.minItems, "minItems", path) ?? 0;
    let maxItems = nonNegativeInteger(schema.maxItems, "maxItems", path);
    if (maxItems !== undefined && maxItems < minItems) throw new UnsupportedSchemaError("'maxItems' is below 'minItems'", path);
    if (schema.uniqueItems === true) {
      // At most one item is always unique; more would need a check the grammar cannot make.
      if (minItems > 1) throw new UnsupportedSchemaError("'uniqueItems' with 'minItems' above 1 is not supported", path);
      maxItems = Math.min(maxItems ?? 1, 1);
    }
    // Tuples: 2020-12 `prefixItems`, or draft-07 `items: [...]` with `additionalItems`.
    let prefix: unknown[] = [];
    let rest: unknown = schema.items;
    if (Array.isArray(schema.prefixItems)) prefix = schema.prefixItems;
    else if (Array.isArray(schema.items)) {
      prefix = schema.items;
      rest = schema.additionalItems;
    }
    const cap = Math.max(minItems, Math.min(maxItems ?? Infinity, prefix.length + this.#limits.maxArrayItems));
    const prefixCount = Math.min(prefix.length, cap);
    if (prefixCount < Math.min(prefix.length, minItems)) throw new UnsupportedSchemaError("array bounds cannot be met", path);
    const items = prefix.slice(0, prefixCount).map((item, index) => this.valueFor(item, `${path}/prefixItems/${index}`));
    const extraMax = rest === false ? 0 : cap - prefixCount;
    const extraMin = Math.max(0, minItems - prefixCount);
    if (extraMin > extraMax) throw new UnsupportedSchemaError("array bounds cannot be met with 'items: false'", path);
    if (items.length === 0) {
      if (extraMax === 0) return this.rule(`"[]"`);
      const item = this.valueFor(rest ?? true, `${path}/items`);
      if (extraMin === 0) return this.rule(`"[" (${item} ${this.repeat(`"," ${item}`, 0, extraMax - 1)})? "]"`);
      return this.rule(`"[" ${item} ${this.repeat(`"," ${item}`, extraMin - 1, extraMax - 1)} "]"`);
    }
    let body = `"[" ${items.join(` "," `)}`;
    if (extraMax > 0) {
      const item = this.valueFor(rest ?? true, `${path}/items`);
      body += ` ${this.repeat(`"," ${item}`, extraMin, extraMax)}`;
    }
    return this.rule(`${body} "]"`);
  }

  objectValue(schema: Schema, path: string): string {
    const properties = schema.properties ?? {};
    if (!isObject(properties)) throw new UnsupportedSchemaError("'properties' must be an object", path);
    const required = schema.required ?? [];
    if (!Array.isArray(required) || required.some((name) => typeof name !== "string"))
      throw new UnsupportedSchemaError("'required' must be an array of names", path);
    const additional = schema.additionalProperties ?? schema.unevaluatedProperties;
    if (schema.unevaluatedProperties !== undefined && schema.unevaluatedProperties !== false && schema.unevaluatedProperties !== true)
      throw new UnsupportedSchemaError("'unevaluatedProperties' with a schema is not supported", path);
    const minProperties = nonNegativeInteger(schema.minProperties, "minProperties", path) ?? 0;
    const maxProperties = nonNegativeInteger(schema.maxProperties, "maxProperties", path);

    const names = Object.keys(properties);
    // Required names the schema does not describe take the additionalProperties schema.
    for (const name of required as string[]) {
      if (names.includes(name)) continue;
      if (additional === false) throw new UnsupportedSchemaError(`required property '${name}' is not allowed by 'additionalProperties: false'`, path);
      names.push(name);
    }
    const schemaOf = (name: string): unknown => (Object.hasOwn(properties, name) ? properties[name] : (additional ?? true));

    if (names.length === 0) {
      // A map (`z.record`): entries of the additionalProperties schema, or none when it is false.
      if (additional === false) {
        if (minProperties > 0) throw new UnsupportedSchemaError("'minProperties' cannot be met with no properties allowed", path);
        return this.rule(`"{}"`);
      }
      const cap = Math.max(minProperties, Math.min(maxProperties ?? Infinity, this.#limits.maxArrayItems));
      if (cap === 0) return this.rule(`"{}"`);
      const key = this.stringValue({ maxLength: Math.min(maxKeyLength, this.#limits.maxStringLength) }, path);
      const entry = this.rule(`${key} ":" ${this.valueFor(additional ?? true, `${path}/additionalProperties`)}`);
      if (minProperties === 0) return this.rule(`"{" (${entry} ${this.repeat(`"," ${entry}`, 0, cap - 1)})? "}"`);
      return this.rule(`"{" ${entry} ${this.repeat(`"," ${entry}`, minProperties - 1, cap - 1)} "}"`);
    }

    const requiredNames = new Set(required as string[]);
    const requiredCount = names.filter((name) => requiredNames.has(name)).length;
    if (maxProperties !== undefined && maxProperties < requiredCount)
      throw new UnsupportedSchemaError("'maxProperties' is below the number of required properties", path);
    // Optional properties are left out when they could break maxProperties.
    const emitted = maxProperties !== undefined && maxProperties < names.length ? names.filter((name) => requiredNames.has(name)) : names;
    // minProperties above the required count: make enough optional properties required, in order.
    const forced = new Set(requiredNames);
    let missing = minProperties - requiredCount;
    for (const name of emitted) {
      if (missing <= 0) break;
      if (!forced.has(name)) {
        forced.add(name);
        missing--;
      }
    }
    if (missing > 0) throw new UnsupportedSchemaError("'minProperties' cannot be met", path);
    const entries = emitted.map((name) => ({
      forced: forced.has(name),
      rule: `${literal(JSON.stringify(name) + ":")} ${this.valueFor(schemaOf(name), `${path}/properties/${escapePointer(name)}`)}`,
    }));

    if (entries.some((entry) => entry.forced)) {
      // Declared order; optional entries before the first required one carry a trailing comma.
      const firstForced = entries.findIndex((entry) => entry.forced);
      const pieces = entries.map((entry, index) => {
        if (entry.forced) return index === firstForced ? entry.rule : `"," ${entry.rule}`;
        return index < firstForced ? `(${entry.rule} ",")?` : `("," ${entry.rule})?`;
      });
      return this.rule(`"{" ${pieces.join(" ")} "}"`);
    }
    // All optional: pick the first entry present, then any of the later ones.
    const tails = entries.map((entry, index) => {
      const later = entries.slice(index + 1).map((other) => `("," ${other.rule})?`);
      return [entry.rule, ...later].join(" ");
    });
    return this.rule(`"{" (${tails.map((tail) => `(${tail})`).join(" | ")})? "}"`);
  }

  /** `$ref` to a local JSON pointer; each target becomes one named rule, so recursion works. */
  refFor(schema: Schema, path: string): string {
    const ref = schema.$ref;
    if (typeof ref !== "string" || !ref.startsWith("#"))
      throw new UnsupportedSchemaError(`only local '$ref's ("#/...") are supported`, path);
    const siblings = Object.keys(schema).filter((key) => key !== "$ref" && !annotationKeywords.has(key) && !key.startsWith("x-"));
    if (siblings.length > 0) throw new UnsupportedSchemaError(`'$ref' next to '${siblings.join("', '")}' is not supported`, path);
    const target = resolvePointer(this.#root, ref, path);
    const known = this.#refRoots.get(target);
    if (known) return known;
    // Reserve the name before converting the target, so a recursive reference finds it.
    const name = `ref${++this.#refCount}`;
    this.#refRoots.set(target, name);
    this.#rules.set(name, "");
    const body = this.valueFor(target, ref);
    this.#rules.set(name, body);
    return name;
  }

  /**
   * Any JSON value, with the same caps; nesting stops at {@link anyValueDepth}
   * levels (deeper values are scalars) so a weak model cannot nest forever.
   */
  anyValue(depth = 0): string {
    const name = `anyvalue${depth}`;
    if (this.#rules.has(name)) return name;
    this.#rules.set(name, "");
    const key = this.stringValue({ maxLength: Math.min(maxKeyLength, this.#limits.maxStringLength) }, "");
    const scalars = [this.stringValue({}, ""), this.primitive("number"), this.primitive("boolean"), this.primitive("null")];
    if (depth >= anyValueDepth) {
      this.#rules.set(name, scalars.join(" | "));
      return name;
    }
    const inner = this.anyValue(depth + 1);
    const items = Math.max(0, this.#limits.maxArrayItems - 1);
    const entry = `${key} ":" ${inner}`;
    const object = this.rule(`"{" (${entry} ${this.repeat(`"," ${entry}`, 0, items)})? "}"`);
    const array = this.rule(`"[" (${inner} ${this.repeat(`"," ${inner}`, 0, items)})? "]"`);
    this.#rules.set(name, [object, array, ...scalars].join(" | "));
    return name;
  }
}

/**
 * Merges `allOf` into one schema. Only object parts merge safely (union of
 * properties and of required names); a single part is used as it is.
 */
export function mergeAllOf(schema: Schema, root: unknown, path: string): Schema {
  const parts = schema.allOf;
  if (!Array.isArray(parts) || parts.length === 0) throw new UnsupportedSchemaError("'allOf' must be a non-empty array", path);
  const { allOf: _ignored, ...rest } = schema;
  const resolved = parts.map((part, index) => {
    let current: unknown = part;
    for (let depth = 0; isObject(current) && typeof current.$ref === "string" && depth < 16; depth++)
      current = resolvePointer(root, current.$ref, `${path}/allOf/${index}`);
    if (!isObject(current)) throw new UnsupportedSchemaError("'allOf' parts must be schemas", `${path}/allOf/${index}`);
    return current;
  });
  if (resolved.length === 1 && Object.keys(rest).every((key) => annotationKeywords.has(key))) return resolved[0]!;
  // Only object parts merge safely: union of properties and of required names.
  const merged: Schema = { type: "object", properties: {}, required: [] as string[] };
  for (const part of [rest, ...resolved]) {
    for (const key of Object.keys(part)) {
      if (annotationKeywords.has(key) || key.startsWith("x-")) continue;
      if (key === "type" && part.type === "object") continue;
      if (key === "properties" && isObject(part.properties)) {
        for (const [name, value] of Object.entries(part.properties)) {
          if (Object.hasOwn(merged.properties as Schema, name))
            throw new UnsupportedSchemaError(`'allOf' parts both define '${name}'`, path);
          (merged.properties as Schema)[name] = value;
        }
        continue;
      }
      if (key === "required" && Array.isArray(part.required)) {
        (merged.required as string[]).push(...(part.required as string[]));
        continue;
      }
      if (key === "additionalProperties" && part.additionalProperties === false) continue;
      throw new UnsupportedSchemaError(`'allOf' is supported only for object schemas (found '${key}')`, path);
    }
  }
  // A closed part (additionalProperties: false) rejects the other parts' properties.
  const names = Object.keys(merged.properties as Schema);
  for (const part of [rest, ...resolved]) {
    if (part.additionalProperties !== false) continue;
    const own = isObject(part.properties) ? Object.keys(part.properties) : [];
    const foreign = names.filter((name) => !own.includes(name));
    if (foreign.length > 0)
      throw new UnsupportedSchemaError(`an 'allOf' part with 'additionalProperties: false' forbids '${foreign.join("', '")}'`, path);
  }
  merged.required = unique(merged.required as string[]);
  return merged;
}

/** Bounds of an integer or number schema, as integers within the safe range. */
function integerBounds(schema: Schema, path: string, integer: boolean): { low: bigint; high: bigint } {
  const read = (key: string): number | undefined => {
    const value = schema[key];
    if (value === undefined) return undefined;
    if (typeof value !== "number" || !Number.isFinite(value)) throw new UnsupportedSchemaError(`'${key}' must be a number`, path);
    return value;
  };
  const minimum = read("minimum");
  const maximum = read("maximum");
  // Draft-04 booleans are not supported; numbers (draft-06+) are.
  const exclusiveMinimum = read("exclusiveMinimum");
  const exclusiveMaximum = read("exclusiveMaximum");
  let low = -Infinity;
  let high = Infinity;
  // OpenAPI-style integer formats bound the range as validators with format support check it.
  if (integer && schema.format === "int32") [low, high] = [-(2 ** 31), 2 ** 31 - 1];
  if (integer && schema.format === "uint32") [low, high] = [0, 2 ** 32 - 1];
  if (minimum !== undefined) low = Math.max(low, Math.ceil(minimum));
  if (exclusiveMinimum !== undefined) low = Math.max(low, Math.floor(exclusiveMinimum) + 1);
  if (maximum !== undefined) high = Math.min(high, Math.floor(maximum));
  if (exclusiveMaximum !== undefined) high = Math.min(high, Math.ceil(exclusiveMaximum) - 1);
  const unbounded = low === -Infinity && high === Infinity;
  const limit = unbounded ? defaultMagnitude : maxSafe;
  const lowBig = low === -Infinity ? -limit : bigMax(BigInt(low), -maxSafe);
  const highBig = high === Infinity ? limit : bigMin(BigInt(high), maxSafe);
  if (lowBig > highBig) {
    throw new UnsupportedSchemaError(
      integer ? "the integer bounds leave no value" : "numeric bounds without an integer between them are not supported",
      path,
    );
  }
  return { low: lowBig, high: highBig };
}

/** A GBNF expression for the decimal integers in [low, high] (non-negative, no leading zeros). */
export function unsignedRange(low: bigint, high: bigint): string {
  const parts: string[] = [];
  let start = low;
  while (start <= high) {
    const digits = start.toString().length;
    const lastOfLength = 10n ** BigInt(digits) - 1n;
    const end = high < lastOfLength ? high : lastOfLength;
    parts.push(sameLengthRange(start.toString(), end.toString()));
    start = end + 1n;
  }
  return parts.length === 1 ? parts[0]! : parts.map((part) => `(${part})`).join(" | ");
}

/** Digit strings of one length between `low` and `high` inclusive. */
function sameLengthRange(low: string, high: string): string {
  if (low === high) return literal(low);
  if (low.length === 1) return `[${low}-${high}]`;
  const lowFirst = low[0]!;
  const highFirst = high[0]!;
  const restLength = low.length - 1;
  if (lowFirst === highFirst) return `${literal(lowFirst)} (${sameLengthRange(low.slice(1), high.slice(1))})`;
  const parts: string[] = [];
  const lowRest = low.slice(1);
  const highRest = high.slice(1);
  const allNines = "9".repeat(restLength);
  const allZeros = "0".repeat(restLength);
  // The first digit's own partial ranges, then whole ranges for the digits between.
  let middleStart = Number(lowFirst) + 1;
  let middleEnd = Number(highFirst) - 1;
  if (lowRest === allZeros) middleStart--;
  else parts.push(`${literal(lowFirst)} (${sameLengthRange(lowRest, allNines)})`);
  if (highRest === allNines) middleEnd++;
  if (middleStart <= middleEnd) {
    const first = middleStart === middleEnd ? literal(String(middleStart)) : `[${middleStart}-${middleEnd}]`;
    parts.push(`${first} [0-9]{${restLength}}`);
  }
  if (highRest !== allNines) parts.push(`${literal(highFirst)} (${sameLengthRange(allZeros, highRest)})`);
  return parts.map((part) => `(${part})`).join(" | ");
}

/** Resolves a local `$ref` (`#` or a JSON pointer `#/...`) against the root schema. */
export function resolvePointer(root: unknown, ref: string, path: string): unknown {
  if (ref === "#") return root;
  if (!ref.startsWith("#/")) throw new UnsupportedSchemaError(`'$ref' '${ref}' is not a JSON pointer`, path);
  let current: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    if (!isObject(current) && !Array.isArray(current)) throw new UnsupportedSchemaError(`'$ref' '${ref}' does not resolve`, path);
    current = (current as Record<string, unknown>)[key];
    if (current === undefined) throw new UnsupportedSchemaError(`'$ref' '${ref}' does not resolve`, path);
  }
  return current;
}

/**
 * llama.cpp refuses repetitions of 2000 or more, counting the rules a
 * repeated group creates; we stay well below and give every repetition its
 * own rule.
 */
const maxRepetition = 1000;

/** A GBNF string literal for `text`. */
function literal(text: string): string {
  return `"${text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n").replaceAll("\r", "\\r").replaceAll("\t", "\\t")}"`;
}

function matchesType(value: unknown, type: JsonType): boolean {
  switch (type) {
    case "null":
      return value === null;
    case "boolean":
      return typeof value === "boolean";
    case "string":
      return typeof value === "string";
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number";
    case "array":
      return Array.isArray(value);
    case "object":
      return isObject(value);
  }
}

function nonNegativeInteger(value: unknown, key: string, path: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0)
    throw new UnsupportedSchemaError(`'${key}' must be a non-negative integer`, path);
  return value;
}

function isObject(value: unknown): value is Schema {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function escapePointer(name: string): string {
  return name.replaceAll("~", "~0").replaceAll("/", "~1");
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function bigMin(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function bigMax(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

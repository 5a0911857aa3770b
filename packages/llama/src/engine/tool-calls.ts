/**
 * Tool calling. Two paths:
 * - `auto`: node-llama-cpp's function calling through the model's chat
 *   wrapper (its native call syntax); the model decides whether to call.
 * - `required` / a named function: a grammar that admits exactly one
 *   `{"name": ..., "arguments": ...}` object, streamed back as tool-call deltas.
 */
import { randomBytes } from "node:crypto";
import type { ChatModelFunctions, GbnfJsonSchema } from "node-llama-cpp";
import type { JobEvent, JobTool } from "@switchboard/protocol";
import { UnsupportedSchemaError, mergeAllOf, resolvePointer } from "./json-schema-grammar.js";

/** An OpenAI-style tool call id: `call_` and 24 random base62 characters. */
export function newToolCallId(): string {
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  let id = "call_";
  for (const byte of randomBytes(24)) id += alphabet[byte % 62];
  return id;
}

/** System text for forced calls: the tools, and the one answer shape the grammar allows. */
export function forcedToolCallInstructions(tools: readonly JobTool[]): string {
  const lines = [
    "You must call exactly one of the following functions.",
    'Answer with only a JSON object of the form {"name": "<function name>", "arguments": {<arguments>}}.',
    "",
    "Functions:",
  ];
  for (const tool of tools) {
    lines.push(`- ${tool.name}${tool.description ? `: ${tool.description}` : ""}`);
    lines.push(`  arguments (JSON Schema): ${JSON.stringify(tool.parameters ?? { type: "object", properties: {} })}`);
  }
  return lines.join("\n");
}

/**
 * Tools as node-llama-cpp function definitions. Parameter schemas are
 * translated to the subset its grammar builder reads (`oneOf` for `anyOf`,
 * `$defs` references, no annotations); callers validate them with
 * `jsonSchemaToGbnf` first so unsupported schemas are refused.
 */
export function toChatModelFunctions(tools: readonly JobTool[]): ChatModelFunctions {
  const functions: Record<string, { description?: string; params?: GbnfJsonSchema }> = {};
  for (const tool of tools) {
    const entry: { description?: string; params?: GbnfJsonSchema } = {};
    if (tool.description) entry.description = tool.description;
    if (tool.parameters !== undefined) entry.params = toGbnfJsonSchema(tool.parameters);
    functions[tool.name] = entry;
  }
  return functions;
}

type Schema = Record<string, unknown>;

const basicTypes = new Set(["string", "number", "integer", "boolean", "null"]);
const anyJson: Schema = {
  oneOf: [{ type: ["string", "number", "boolean", "null"] }, { type: "object", additionalProperties: true }, { type: "array" }],
};

/**
 * Translates a JSON Schema to node-llama-cpp's `GbnfJsonSchema`. Numeric
 * bounds and most string formats have no equivalent there and are dropped, so
 * `auto` tool calls can stray from them; forced calls use our own grammar.
 */
export function toGbnfJsonSchema(schema: unknown): GbnfJsonSchema {
  const defs: Record<string, Schema> = {};
  const names = new Map<unknown, string>();

  const translate = (node: unknown, path: string): Schema => {
    if (node === true || node === undefined) return anyJson;
    if (typeof node !== "object" || node === null || Array.isArray(node))
      throw new UnsupportedSchemaError("a schema must be an object", path);
    const source = node as Schema;
    if (typeof source.$ref === "string") {
      const target = resolvePointer(schema, source.$ref, path);
      let name = names.get(target);
      if (!name) {
        name = `d${names.size + 1}`;
        names.set(target, name);
        defs[name] = {};
        defs[name] = translate(target, source.$ref);
      }
      return { $ref: `#/$defs/${name}` };
    }
    if (source.allOf !== undefined) return translate(mergeAllOf(source, schema, path), path);
    const nullable = source.nullable === true;
    const withNull = (result: Schema): Schema => (nullable ? { oneOf: [result, { type: "null" }] } : result);
    const alternatives = source.anyOf ?? source.oneOf;
    if (Array.isArray(alternatives)) return withNull({ oneOf: alternatives.map((item, index) => translate(item, `${path}/anyOf/${index}`)) });
    if (source.const !== undefined) return withNull({ const: source.const });
    if (Array.isArray(source.enum)) return withNull({ enum: source.enum });

    let types: string[];
    if (source.type === undefined) {
      if (source.properties !== undefined || source.additionalProperties !== undefined) types = ["object"];
      else if (source.items !== undefined || source.prefixItems !== undefined) types = ["array"];
      else return withNull(anyJson);
    } else types = Array.isArray(source.type) ? (source.type as string[]) : [source.type as string];
    if (nullable && !types.includes("null")) types = [...types, "null"];

    const basic = types.filter((type) => basicTypes.has(type) && !(type === "string" && hasStringKeywords(source)));
    const parts: Schema[] = [];
    if (basic.length > 0) parts.push({ type: basic.length === 1 ? basic[0] : basic });
    if (types.includes("string") && hasStringKeywords(source)) parts.push(translateString(source));
    if (types.includes("object")) parts.push(translateObject(source, path));
    if (types.includes("array")) parts.push(translateArray(source, path));
    return parts.length === 1 ? parts[0]! : { oneOf: parts };
  };

  const translateString = (source: Schema): Schema => {
    if (source.format === "date-time" || source.format === "date" || source.format === "time") return { type: "string", format: source.format };
    const result: Schema = { type: "string" };
    if (typeof source.minLength === "number") result.minLength = source.minLength;
    if (typeof source.maxLength === "number") result.maxLength = source.maxLength;
    return result;
  };

  const translateObject = (source: Schema, path: string): Schema => {
    const result: Schema = { type: "object" };
    const properties = (source.properties ?? {}) as Schema;
    const translated: Schema = {};
    for (const [name, value] of Object.entries(properties)) translated[name] = translate(value, `${path}/properties/${name}`);
    if (Object.keys(translated).length > 0) result.properties = translated;
    const additional = source.additionalProperties;
    if (additional === true || (additional === undefined && Object.keys(translated).length === 0)) result.additionalProperties = true;
    else if (typeof additional === "object" && additional !== null) result.additionalProperties = translate(additional, `${path}/additionalProperties`);
    return result;
  };

  const translateArray = (source: Schema, path: string): Schema => {
    const result: Schema = { type: "array" };
    if (Array.isArray(source.prefixItems)) result.prefixItems = source.prefixItems.map((item, index) => translate(item, `${path}/prefixItems/${index}`));
    if (source.items !== undefined && source.items !== false && !Array.isArray(source.items)) result.items = translate(source.items, `${path}/items`);
    if (typeof source.minItems === "number") result.minItems = source.minItems;
    if (typeof source.maxItems === "number") result.maxItems = source.maxItems;
    return result;
  };

  const root = translate(schema, "");
  if (Object.keys(defs).length === 0) return root as GbnfJsonSchema;
  // node-llama-cpp reads `$defs` from an object, array, oneOf or $ref node; wrap anything else.
  return ("oneOf" in root || "$ref" in root || root.type === "object" || root.type === "array"
    ? { ...root, $defs: defs }
    : { oneOf: [root], $defs: defs }) as GbnfJsonSchema;
}

function hasStringKeywords(source: Schema): boolean {
  return source.minLength !== undefined || source.maxLength !== undefined || source.format !== undefined;
}

/**
 * Turns the streamed text of a forced call, `{"name":"f","arguments":{...}}`
 * (compact, as our grammar writes it), into tool-call deltas: the first delta
 * once the name is known, then argument text as it arrives. The last
 * character is held back until the end, since it may be the wrapper's `}`.
 */
export class ForcedToolCallStream {
  readonly #index: number;
  readonly #id = newToolCallId();
  #text = "";
  #name: string | undefined;
  #argumentsStart = 0;
  #sent = 0;

  constructor(choiceIndex: number) {
    this.#index = choiceIndex;
  }

  /** Whether a call has started (its name was generated). */
  get started(): boolean {
    return this.#name !== undefined;
  }

  push(chunk: string): JobEvent[] {
    this.#text += chunk;
    if (this.#name === undefined) {
      const header = /^\{"name":("(?:[^"\\]|\\.)*"),"arguments":/.exec(this.#text);
      if (!header) return [];
      this.#name = JSON.parse(header[1]!) as string;
      this.#argumentsStart = this.#sent = header[0].length;
      return [this.#delta(this.#text.slice(this.#sent, this.#text.length - 1), true)];
    }
    return this.#text.length - 1 > this.#sent ? [this.#delta(this.#text.slice(this.#sent, this.#text.length - 1), false)] : [];
  }

  /** Flushes the rest; `complete` says the grammar finished, so the final `}` is the wrapper's. */
  finish(complete: boolean): JobEvent[] {
    if (this.#name === undefined) return [];
    const end = complete ? this.#text.length - 1 : this.#text.length;
    return end > this.#sent ? [this.#delta(this.#text.slice(this.#sent, end), false)] : [];
  }

  /** The whole arguments text generated so far. */
  get argumentsText(): string {
    return this.#text.slice(this.#argumentsStart, this.#text.length - 1);
  }

  #delta(text: string, first: boolean): JobEvent {
    this.#sent += text.length;
    if (first) return { type: "tool-call-delta", index: this.#index, toolCallIndex: 0, id: this.#id, name: this.#name!, argumentsDelta: text };
    return { type: "tool-call-delta", index: this.#index, toolCallIndex: 0, argumentsDelta: text };
  }
}

import { describe, expect, it } from "vitest";
import { UnsupportedSchemaError, jsonSchemaToGbnf, limitsForSchema, toolCallGbnf, unsignedRange } from "./json-schema-grammar.js";

const limits = { maxStringLength: 64, maxArrayItems: 4 };

/** The GBNF that unsignedRange writes uses only literals, classes, groups, `|` and `{n}`: it reads as a regex. */
function rangeRegex(low: bigint, high: bigint): RegExp {
  const source = unsignedRange(low, high).replace(/"(\d+)"/g, "$1").replaceAll(" ", "");
  return new RegExp(`^(?:${source})$`);
}

describe("unsignedRange", () => {
  it("matches exactly the integers of small ranges, without leading zeros", () => {
    const ranges: [number, number][] = [[0, 0], [0, 9], [3, 117], [10, 99], [19, 21], [0, 1000], [123, 456], [99, 101], [1, 1]];
    for (const [low, high] of ranges) {
      const regex = rangeRegex(BigInt(low), BigInt(high));
      for (let value = 0; value <= 1100; value++) expect(regex.test(String(value)), `${value} in [${low}, ${high}]`).toBe(value >= low && value <= high);
      expect(regex.test("007")).toBe(false);
    }
  });

  it("handles the ±2^53 bounds zod's .int() sends", () => {
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    const regex = rangeRegex(0n, max);
    for (const text of ["0", "7", "9007199254740991", "9007199254740990", "8999999999999999", "1000000000000000"]) expect(regex.test(text), text).toBe(true);
    for (const text of ["9007199254740992", "9007199254741000", "9999999999999999", "10000000000000000", "01"]) expect(regex.test(text), text).toBe(false);
  });
});

describe("jsonSchemaToGbnf", () => {
  it("accepts schemas as the AI SDK and LangChain send them", () => {
    const schema = {
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      properties: {
        name: { type: "string", description: "who" },
        age: { type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 },
        mood: { type: "string", enum: ["happy", "sad"] },
        tags: { type: "array", items: { type: "string" } },
        address: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
        note: { anyOf: [{ type: "string" }, { type: "null" }] },
      },
      required: ["name", "age", "mood", "tags", "address", "note"],
      additionalProperties: false,
    };
    const grammar = jsonSchemaToGbnf(schema, limits);
    expect(grammar).toMatch(/^root ::= /);
    // Property names appear as literals, in order.
    expect(grammar.indexOf('\\"name\\":')).toBeLessThan(grammar.indexOf('\\"age\\":'));
  });

  it("never lets numbers take an exponent", () => {
    const grammar = jsonSchemaToGbnf({ type: "object", properties: { n: { type: "number" }, i: { type: "integer" } } }, limits);
    expect(grammar).not.toMatch(/\[eE\]/);
  });

  it("shares the token budget between the schema's unbounded strings", () => {
    const one = limitsForSchema({ type: "object", properties: { summary: { type: "string" } } }, 1000);
    const three = limitsForSchema({ type: "object", properties: { a: { type: "string" }, b: { type: "string" }, c: { type: "string" } } }, 1000);
    const list = limitsForSchema({ type: "array", items: { type: "string" } }, 1000);
    expect(one).toEqual({ maxStringLength: 800, maxArrayItems: 15 });
    expect(three.maxStringLength).toBe(266);
    expect(list.maxStringLength).toBe(53);
    // Bounded and enumerated strings take no share.
    expect(limitsForSchema({ type: "object", properties: { s: { type: "string" }, e: { enum: ["x"] }, d: { type: "string", format: "date" } } }, 1000)).toEqual(one);
    const grammar = jsonSchemaToGbnf({ type: "array", items: { type: "string" } }, limitsForSchema({ type: "array", items: { type: "string" } }, 64));
    // 64 tokens: one item of at most 51 characters.
    expect(grammar).toMatch(/\{0,51\}/);
    expect(grammar).not.toContain('","');
  });

  it("resolves local $refs, recursive ones included", () => {
    const grammar = jsonSchemaToGbnf(
      {
        definitions: { node: { type: "object", properties: { value: { type: "integer" }, next: { anyOf: [{ $ref: "#/definitions/node" }, { type: "null" }] } }, required: ["value", "next"] } },
        $ref: "#/definitions/node",
      },
      limits,
    );
    expect(grammar).toMatch(/ref1 ::= /);
  });

  it.each([
    [{ type: "string", pattern: "^a+$" }, "pattern"],
    [{ type: "object", patternProperties: { "^x": { type: "string" } } }, "patternProperties"],
    [{ not: { type: "string" } }, "not"],
    [{ type: "string", format: "hostname" }, "hostname"],
    [{ type: "integer", multipleOf: 5 }, "multipleOf"],
    [{ type: "number", minimum: 0.2, maximum: 0.8 }, "integer between"],
    [{ $ref: "https://example.com/schema.json" }, "local"],
    [{ type: "object", properties: { a: { type: "integer", minimum: 5, maximum: 1 } } }, "no value"],
    [{ type: "object", required: ["x"], additionalProperties: false }, "'x'"],
    [{ allOf: [{ type: "string" }, { minLength: 2 }] }, "allOf"],
    [{ type: "blob" }, "unknown type"],
    [false, "matches nothing"],
  ])("refuses what it cannot enforce: %j", (schema, fragment) => {
    expect(() => jsonSchemaToGbnf(schema, limits)).toThrow(UnsupportedSchemaError);
    expect(() => jsonSchemaToGbnf(schema, limits)).toThrow(fragment);
  });

  it("names where in the schema the problem is", () => {
    expect(() => jsonSchemaToGbnf({ type: "object", properties: { inner: { type: "string", pattern: "x" } } }, limits)).toThrow("#/properties/inner");
  });
});

describe("toolCallGbnf", () => {
  it("admits one call of any listed tool, with {} for tools without parameters", () => {
    const grammar = toolCallGbnf(
      [
        { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
        { name: "ping" },
      ],
      limits,
    );
    expect(grammar).toContain('{\\"name\\":\\"get_weather\\",\\"arguments\\":');
    expect(grammar).toContain('{\\"name\\":\\"ping\\",\\"arguments\\":" "{}"');
  });
});

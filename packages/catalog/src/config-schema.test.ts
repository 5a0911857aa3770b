import { readFile } from "node:fs/promises";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { configJsonSchema, renderConfigJsonSchema } from "./config-schema.js";
import { DEFAULT_CONFIG_FILE } from "./default-config.js";

const committedPath = new URL("../config.schema.json", import.meta.url);

describe("config.schema.json", () => {
  it("is exactly what scripts/write-schema.ts generates (run it after changing config-schema.ts)", async () => {
    const committed = await readFile(committedPath, "utf8");
    expect(committed).toBe(renderConfigJsonSchema());
  });

  it("describes every property", () => {
    const undocumented: string[] = [];
    const walk = (schema: Record<string, unknown>, at: string) => {
      const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const [key, child] of Object.entries(properties)) {
        if (typeof child.description !== "string" || child.description.length === 0) undocumented.push(`${at}.${key}`);
        walk(child, `${at}.${key}`);
      }
      for (const child of (schema.oneOf ?? []) as Record<string, unknown>[]) walk(child, at);
      if (typeof schema.items === "object" && schema.items !== null) walk(schema.items as Record<string, unknown>, `${at}[]`);
    };
    walk(configJsonSchema(), "config");
    expect(undocumented).toEqual([]);
  });

  it("is a standalone draft-07 schema that accepts the built-in default config and rejects unknown keys", () => {
    // A plain Ajv, as an editor or CI step would use it (no discriminator support needed).
    const validate = new Ajv({ strict: false }).compile(configJsonSchema());
    expect(validate(DEFAULT_CONFIG_FILE)).toBe(true);
    expect(validate({ ...DEFAULT_CONFIG_FILE, modelz: [] })).toBe(false);
  });
});

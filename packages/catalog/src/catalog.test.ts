import { describe, expect, it } from "vitest";
import { Catalog } from "./catalog.js";
import { parseConfig } from "./load-config.js";

const config = parseConfig(
  {
    defaultModel: "b",
    models: [
      { id: "a", aliases: ["alpha"], backend: "llama", source: "generated:tiny" },
      { id: "b", aliases: ["beta", "vendor/b:q4"], backend: "llama", source: "generated:25m" },
    ],
  },
  { env: {}, baseDir: "/" },
);

describe("Catalog", () => {
  const catalog = new Catalog(config);

  it("resolves ids and aliases by exact match", () => {
    expect(catalog.resolve("a")?.id).toBe("a");
    expect(catalog.resolve("alpha")?.id).toBe("a");
    expect(catalog.resolve("vendor/b:q4")?.id).toBe("b");
    expect(catalog.resolve("A")).toBeUndefined();
    expect(catalog.resolve("alph")).toBeUndefined();
    expect(catalog.resolve("../a")).toBeUndefined();
  });

  it("resolves `default` to the default model", () => {
    expect(catalog.defaultModel.id).toBe("b");
    expect(catalog.resolve("default")?.id).toBe("b");
  });

  it("lists models in configuration order", () => {
    expect(catalog.list().map((model) => model.id)).toEqual(["a", "b"]);
  });

  it("works on the built-in default config", () => {
    const builtIn = new Catalog(parseConfig(undefined, { env: {}, baseDir: "/" }));
    expect(builtIn.resolve("test")?.id).toBe("switchboard-test-tiny");
    expect(builtIn.resolve("default")?.id).toBe("qwen2.5-0.5b-instruct");
  });
});
